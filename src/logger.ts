/**
 * Structured logs through pino: for people (pino-pretty) when they go to a terminal, JSON
 * lines otherwise, or as the log format setting says. Level and format default to the
 * RHYTHM_LOG_LEVEL and RHYTHM_LOG_FORMAT settings. Connection strings are only ever logged
 * through maskUrl.
 */
import { createRequire } from 'node:module';
import type { Logger, DestinationStream, pino as Pino } from 'pino';
import { environmentOrDefault } from './config/resolve.js';
import type { LogFormat, LogLevel } from './config/settings.js';

export type { Logger };

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** 1: stdout (the library's default), 2: stderr (the command line's: stdout holds its answers). */
  fd?: 1 | 2;
  /** Writes here instead of to `fd` (a command run inside another program's process). */
  destination?: DestinationStream;
}

/** Writes are synchronous: nothing is lost when the process exits right after logging. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? environmentOrDefault('logLevel');
  const format = options.format ?? environmentOrDefault('logFormat');
  const fd = options.fd ?? 1;
  const terminal = options.destination === undefined && (fd === 1 ? process.stdout : process.stderr).isTTY === true;
  const pretty = format === 'pretty' || (format === 'auto' && terminal);
  // Loaded with the first logger, not at import: a command that stops at a usage error needs neither.
  const load = createRequire(import.meta.url);
  const pino = load('pino') as typeof Pino;
  const stream = pretty
    ? (load('pino-pretty') as (o: Record<string, unknown>) => DestinationStream)({
        destination: options.destination ?? fd,
        sync: true,
        colorize: terminal,
        ignore: 'pid,hostname',
        translateTime: 'SYS:HH:MM:ss.l',
      })
    : (options.destination ?? pino.destination({ dest: fd, sync: true }));
  return pino({ name: 'rhythm', level }, stream);
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
