/**
 * Script values leaving the script as JSON: task payloads, workflow inputs and results, and
 * JSON.stringify. A payload is copied at the call (the script may change the object afterwards,
 * the child must get what was passed) and checked the way enqueue checks payloads, but the
 * error is a script TypeError at the call's place, naming the key: NaN, a pending handle, a
 * cycle, or a string Postgres jsonb cannot store.
 */
import type { Machine } from './interpreter.js';
import { Closure, Combinator, ErrorValue, Handle, describe } from './values.js';

class NotJson {
  readonly path: string[] = [];
  constructor(readonly problem: string) {}
}

/** A JSON-safe deep copy of `v` (undefined at the top becomes null), or a TypeError naming the key. */
export function jsonCopy(m: Machine, v: unknown, what: string, at: number): unknown {
  if (v === undefined) return null;
  try {
    return copy(v, new Set());
  } catch (err) {
    if (!(err instanceof NotJson)) throw err;
    m.fail('TypeError', at, `${what}${err.path.reverse().join('')} ${err.problem}`);
  }
}

function copy(v: unknown, seen: Set<unknown>): unknown {
  switch (typeof v) {
    case 'string':
      if (v.includes('\u0000')) throw new NotJson('contains a NUL character (\\u0000), which Postgres jsonb cannot store');
      if (!v.isWellFormed()) throw new NotJson('contains a lone UTF-16 surrogate (half of a character pair), which is not valid Unicode');
      return v;
    case 'number':
      if (!Number.isFinite(v)) throw new NotJson(`is ${v}, which is not JSON`);
      return v === 0 ? 0 : v;
    case 'boolean':
      return v;
    case 'undefined':
      return undefined;
  }
  if (v === null) return null;
  if (v instanceof Handle || v instanceof Combinator) throw new NotJson(`is ${describe(v)}; await it first`);
  if (v instanceof Closure) return undefined;
  if (seen.has(v)) throw new NotJson('contains a cycle (an object that contains itself), which is not JSON');
  seen.add(v);
  let out: unknown;
  if (Array.isArray(v)) {
    const a = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) {
      try {
        const x = copy(v[i], seen);
        a[i] = x === undefined ? null : x;
      } catch (err) {
        if (err instanceof NotJson) err.path.push(`[${i}]`);
        throw err;
      }
    }
    out = a;
  } else {
    const o: Record<string, unknown> = {};
    const src = v as Record<string, unknown>;
    for (const key of Object.keys(src)) {
      let x: unknown;
      try {
        x = copy(src[key], seen);
      } catch (err) {
        if (err instanceof NotJson) err.path.push(/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);
        throw err;
      }
      if (x === undefined) continue;
      if (key === '__proto__') Object.defineProperty(o, key, { value: x, writable: true, enumerable: true, configurable: true });
      else o[key] = x;
    }
    out = o;
  }
  seen.delete(v);
  return out;
}

/** JSON.stringify for script values: errors serialize their fields, pending handles are refused. */
export function jsonText(m: Machine, v: unknown, indent: unknown, at: number): string | undefined {
  const space = typeof indent === 'number' || typeof indent === 'string' ? indent : undefined;
  return JSON.stringify(
    v,
    (_key, x: unknown) => {
      if (x instanceof Handle || x instanceof Combinator)
        m.fail('TypeError', at, `JSON.stringify cannot serialize ${describe(x)}; await it first`);
      if (x instanceof ErrorValue) return { ...x };
      if (x instanceof Closure) return undefined;
      return x;
    },
    space,
  );
}
