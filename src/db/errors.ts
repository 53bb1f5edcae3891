/**
 * Classifies database errors: a refusal of the data itself (bad value, constraint, too large)
 * will fail again, so it is final; anything else (lost connection, timeout, deadlock,
 * shutdown) is worth retrying.
 */

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH']);

export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  const code = e?.code ?? '';
  if (CONNECTION_CODES.has(code)) return true;
  // SQLSTATE classes 08 (connection exception), 57P (operator intervention: shutdown), 53 (resources).
  if (/^(08|57P|53)/.test(code)) return true;
  // 57014: cancelled, here by statement_timeout; "Query read timeout": no answer at all.
  if (code === '57014') return true;
  return /Connection terminated|connection timeout|timeout expired|Query read timeout|Client has encountered a connection error|not queryable/i.test(
    e?.message ?? '',
  );
}

/** The connection gave no answer within its read timeout: it is dead, and nothing more can be sent on it. */
export function isSilentConnection(err: unknown): boolean {
  return /Query read timeout/.test((err as { message?: string } | undefined)?.message ?? '');
}

/** SQLSTATE classes 22 (data exception), 23 (integrity constraint) and 54 (program limit exceeded). */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  return /^(22|23|54)/.test(code);
}
