/** Anything SQL modules can run a query on: the pool, or a caller's client inside its transaction. */
import type pg from 'pg';
import type { SchemaNames } from '../db/schema.js';

export type Queryable = pg.Pool | pg.ClientBase;

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
