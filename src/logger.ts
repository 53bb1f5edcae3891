/**
 * Structured logs through pino. Level from RHYTHM_LOG_LEVEL (default "info").
 * Connection strings are only ever logged through maskUrl.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(): Logger {
  return pino({ name: 'rhythm', level: process.env.RHYTHM_LOG_LEVEL ?? 'info' });
}

/** postgres://user:secret@host/db -> postgres://user:***@host/db */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
