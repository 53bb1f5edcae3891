/** Classifies database errors: a lost connection is worth retrying; a refused statement is not. */

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH']);

export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  const code = e?.code ?? '';
  if (CONNECTION_CODES.has(code)) return true;
  // SQLSTATE classes 08 (connection exception), 57P (operator intervention: shutdown), 53 (resources).
  if (/^(08|57P|53)/.test(code)) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(e?.message ?? '');
}
