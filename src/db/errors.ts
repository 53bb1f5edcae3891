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
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(e?.message ?? '');
}

/** SQLSTATE classes 22 (data exception), 23 (integrity constraint) and 54 (program limit exceeded). */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  return /^(22|23|54)/.test(code);
}
