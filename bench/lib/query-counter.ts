/**
 * Counts the statements Rhythm sends, on the client side: while active, every query on a
 * pg connection whose application_name is Rhythm's ("rhythm", "rhythm-lease", ...) is
 * counted, SELECTs apart. It sees every statement whatever the server is (no extension
 * needed), and nothing of the bench's own connections ("rhythm-bench*").
 */
import pg from 'pg';

export interface QueryCount {
  statements: number;
  selects: number;
}

type QueryFn = (this: pg.Client, ...args: unknown[]) => unknown;

let active = false;

/** Starts counting; the returned function stops and returns the counts. One at a time. */
export function countRhythmQueries(): () => QueryCount {
  if (active) throw new Error('countRhythmQueries: already counting');
  active = true;
  const proto = pg.Client.prototype as unknown as { query: QueryFn };
  const original = proto.query;
  const count: QueryCount = { statements: 0, selects: 0 };
  proto.query = function (this: pg.Client, ...args: unknown[]) {
    const app = (this as unknown as { connectionParameters?: { application_name?: string } }).connectionParameters?.application_name ?? '';
    if (app.startsWith('rhythm') && !app.startsWith('rhythm-bench')) {
      const q = args[0];
      const text = typeof q === 'string' ? q : (q as { text?: unknown } | undefined)?.text;
      if (typeof text === 'string') {
        count.statements++;
        if (/^\s*select\b/i.test(text)) count.selects++;
      }
    }
    return original.apply(this, args);
  };
  return () => {
    proto.query = original;
    active = false;
    return { ...count };
  };
}
