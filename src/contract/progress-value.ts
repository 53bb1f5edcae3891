/**
 * Checks a ctx.progress() value where the handler runs (main thread or task thread), so a
 * value that is not JSON, or too large to rewrite several times a second, throws in the
 * handler that passed it, with a message naming the problem.
 */
import { encodeJson } from '../json.js';
import { RhythmValidationError } from '../errors.js';

/** Most characters of one progress value's JSON. */
export const MAX_PROGRESS_CHARS = 64 * 1024;

export function encodeProgress(value: unknown): string {
  const json = encodeJson(value, 'progress');
  if (json.length > MAX_PROGRESS_CHARS) {
    throw new RhythmValidationError(
      `progress is ${json.length.toLocaleString('en-US')} characters of JSON, more than the limit of ${MAX_PROGRESS_CHARS.toLocaleString('en-US')}: report counts or a short summary, and return large data as the result`,
    );
  }
  return json;
}
