/** Anything SQL modules can run a query on: the pool, or a caller's client inside its transaction. */
import type pg from 'pg';
import type { SchemaNames } from '../db/schema.js';

/**
 * The pool or a client, seen through one query signature whose rows are `Record<string,
 * unknown>` unless the caller names a row type: pg's own default is `any`, which would let a
 * misspelt column or a wrong type through unnoticed. Each statement's module declares the row
 * it selects (`db.query<Row>(...)`) and maps it to what it returns.
 */
export interface Queryable {
  query<R extends pg.QueryResultRow = Record<string, unknown>>(config: pg.QueryConfig): Promise<pg.QueryResult<R>>;
  query<R extends unknown[] = unknown[]>(config: pg.QueryArrayConfig): Promise<pg.QueryArrayResult<R>>;
}

/**
 * Builds a statement's text once per schema and names it, so each connection parses and plans
 * it once (a named prepared statement) instead of on every call.
 */
export function statement(id: string, build: (n: SchemaNames) => string): (n: SchemaNames) => { name: string; text: string } {
  const cache = new Map<string, { name: string; text: string }>();
  return (n) => {
    let s = cache.get(n.schema);
    if (!s) {
      s = { name: `rhythm_${id}_${n.schema}`, text: build(n) };
      cache.set(n.schema, s);
    }
    return s;
  };
}
