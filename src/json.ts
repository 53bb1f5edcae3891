/**
 * Payloads and results are stored as jsonb. JSON.stringify alone would silently turn a
 * function or NaN into null or drop it; we refuse such values with an error naming the key.
 */
import { RhythmValidationError } from './errors.js';

/** A \u0000 escape that is not itself an escaped backslash followed by "u0000". */
const NUL_ESCAPE = /(?<!\\)(?:\\\\)*\\u0000/;

export function encodeJson(value: unknown, what: string): string {
  if (value === undefined) {
    throw new RhythmValidationError(`${what} is undefined; it must be a JSON value (use null for "nothing")`);
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(value, function (key, v) {
      const where = key === '' ? what : `${what} key ${JSON.stringify(key)}`;
      switch (typeof v) {
        case 'function':
          throw new RhythmValidationError(`${where} is a function, which is not JSON`);
        case 'bigint':
          throw new RhythmValidationError(`${where} is a BigInt, which is not JSON (convert it to a string or number)`);
        case 'symbol':
          throw new RhythmValidationError(`${where} is a Symbol, which is not JSON`);
        case 'number':
          if (!Number.isFinite(v)) throw new RhythmValidationError(`${where} is ${v}, which is not JSON`);
          break;
      }
      return v;
    });
  } catch (err) {
    if (err instanceof RhythmValidationError) throw err;
    throw new RhythmValidationError(`${what} is not JSON: ${(err as Error).message}`);
  }
  if (text === undefined) throw new RhythmValidationError(`${what} is not a JSON value`);
  // Postgres jsonb cannot store the NUL character.
  if (NUL_ESCAPE.test(text)) throw new RhythmValidationError(`${what} contains a NUL character (\\u0000), which Postgres jsonb cannot store`);
  return text;
}
