/**
 * Payloads and results are stored as jsonb. JSON.stringify alone would silently turn a
 * function or NaN into null or drop it; we refuse such values with an error naming the key.
 * The check is a plain walk before JSON.stringify (a replacer function costs a call into JS
 * per key, which showed in enqueueMany profiles); the key path is built only on error.
 */
import { RhythmValidationError } from './errors.js';

/** A \u0000 escape that is not itself an escaped backslash followed by "u0000". */
const NUL_ESCAPE = /(?<!\\)(?:\\\\)*\\u0000/;
/** JSON.stringify escapes only lone surrogates (pairs stay raw), which jsonb refuses. */
const LONE_SURROGATE_ESCAPE = /(?<!\\)(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/;

/**
 * Deepest nesting of arrays and objects accepted. Postgres' jsonb parser and JSON.parse in the
 * handler recurse per level; far deeper input fails there with a stack-depth error instead.
 */
export const MAX_JSON_DEPTH = 1_000;

class NotJson {
  readonly path: string[] = [];
  constructor(readonly problem: string) {}
}

export function encodeJson(value: unknown, what: string): string {
  if (value === undefined) {
    throw new RhythmValidationError(`${what} is undefined; it must be a JSON value (use null for "nothing")`);
  }
  if (typeof value === 'object' && value !== null) {
    try {
      check(value, new Set(), 0);
    } catch (err) {
      if (!(err instanceof NotJson)) throw err;
      const at = err.path.reverse();
      // A path thousands of levels deep would drown the message.
      const shown = at.length > 12 ? `${at.slice(0, 6).join('')}...${at.slice(-3).join('')}` : at.join('');
      throw new RhythmValidationError(`${what}${shown} ${err.problem}`);
    }
  } else {
    const problem = primitiveProblem(value);
    if (problem) throw new RhythmValidationError(`${what} ${problem}`);
  }
  const text = JSON.stringify(value);
  // Postgres jsonb cannot store the NUL character.
  // Rare, so found in the output text; only then do we walk again to name the key.
  if (text.includes('\\u0000') && NUL_ESCAPE.test(text)) {
    const at = pathOfString(value, (s) => s.includes('\u0000')) ?? '';
    throw new RhythmValidationError(`${what}${at} contains a NUL character (\\u0000), which Postgres jsonb cannot store`);
  }
  if (text.includes('\\ud') && LONE_SURROGATE_ESCAPE.test(text)) {
    const at = pathOfString(value, (s) => !s.isWellFormed()) ?? '';
    throw new RhythmValidationError(
      `${what}${at} contains a lone UTF-16 surrogate (half of a character pair), which is not valid Unicode and Postgres jsonb cannot store`,
    );
  }
  return text;
}

/** The path (".a[2].b") of the first string, key or value, that matches; "" for the value itself. */
function pathOfString(v: unknown, bad: (s: string) => boolean): string | undefined {
  if (typeof v === 'string') return bad(v) ? '' : undefined;
  if (typeof v !== 'object' || v === null) return undefined;
  const obj = v as Record<string, unknown>;
  if (typeof obj.toJSON === 'function') return pathOfString(obj.toJSON(), bad);
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) {
      const p = pathOfString(obj[i], bad);
      if (p !== undefined) return `[${i}]${p}`;
    }
    return undefined;
  }
  for (const key in obj) {
    if (!Object.hasOwn(obj, key)) continue;
    if (bad(key)) return ` key ${JSON.stringify(key)}`;
    const p = pathOfString(obj[key], bad);
    if (p !== undefined) return `.${key}${p}`;
  }
  return undefined;
}

function primitiveProblem(v: unknown): string | undefined {
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? undefined : `is ${v}, which is not JSON`;
    case 'function':
      return 'is a function, which is not JSON';
    case 'bigint':
      return 'is a BigInt, which is not JSON (convert it to a string or number)';
    case 'symbol':
      return 'is a Symbol, which is not JSON';
  }
  // string, boolean, null; undefined inside objects is dropped and inside arrays becomes null,
  // both conventional JSON.
  return undefined;
}

function check(v: unknown, seen: Set<object>, depth: number): void {
  if (typeof v !== 'object' || v === null) {
    const problem = primitiveProblem(v);
    if (problem) throw new NotJson(problem);
    return;
  }
  const obj = v as Record<string, unknown>;
  if (typeof obj.toJSON === 'function') {
    check(obj.toJSON(), seen, depth);
    return;
  }
  if (seen.has(obj)) throw new NotJson('contains a cycle (an object that contains itself), which is not JSON');
  if (depth >= MAX_JSON_DEPTH) throw new NotJson(`is nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`);
  seen.add(obj);
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) {
      try {
        check(obj[i], seen, depth + 1);
      } catch (err) {
        if (err instanceof NotJson) err.path.push(`[${i}]`);
        throw err;
      }
    }
  } else {
    for (const key in obj) {
      if (!Object.hasOwn(obj, key)) continue;
      try {
        check(obj[key], seen, depth + 1);
      } catch (err) {
        if (err instanceof NotJson) err.path.push(`.${key}`);
        throw err;
      }
    }
  }
  seen.delete(obj);
}
