/**
 * Structured logs through pino. Level from RHYTHM_LOG_LEVEL (default "info").
 * Connection strings are only ever logged through maskUrl.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(): Logger {
  return pino({ name: 'rhythm', level: process.env.RHYTHM_LOG_LEVEL ?? 'info' });
}

/** Query parameters of a connection string that can hold a secret (password, sslpassword, ...). */
const SECRET_PARAM = /pass|pwd|secret|token|credential|^(api_?)?key$/i;

/**
 * A connection string fit for a log: the password of the user info and every parameter that
 * can hold a secret (`password`, `sslpassword`, ...) replaced by ***; paths such as `sslkey`
 * stay readable. A string that is not a URL is not shown at all: it may be one secret whole.
 */
export function maskUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '<unparseable url>';
  }
  if (u.password) u.password = '***';
  let masked = false;
  for (const key of new Set(u.searchParams.keys())) {
    if (SECRET_PARAM.test(key)) {
      u.searchParams.set(key, '***');
      masked = true;
    }
  }
  const text = u.toString();
  return masked ? text.replace(/=%2A%2A%2A/g, '=***') : text;
}
