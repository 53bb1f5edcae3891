/**
 * What every database command shares: the database (the configured URL, or the embedded Postgres of
 * `npm start` when none is configured) and the Rhythm on it.
 */
import type { Logger } from 'pino';
import { CliError } from './errors.js';
import type { Rhythm, ShutdownOptions } from '../rhythm.js';
import type { LocalDatabase } from '../db/local.js';
import type { Settings } from '../config/settings.js';
import { maskUrl } from '../logger.js';

export interface Session {
  r: Rhythm;
  db: LocalDatabase;
  /** Shuts Rhythm down (workers, internal worker, pool), then stops the embedded server if this process started it. */
  close(options?: ShutdownOptions): Promise<void>;
}

/** For an error that is a timeout: what it means and which flag sets the limit. */
export function timeoutHint(err: unknown): string {
  const e = err as { message?: string; code?: string } | undefined;
  return /timeout|timed out/i.test(e?.message ?? '') || e?.code === '57014'
    ? ' (the database did not answer in time; --db-timeout sets the limit)'
    : '';
}

export async function openSession(settings: Settings, log: Logger, options: { autoMigrate: boolean; poolSize?: number }): Promise<Session> {
  // Loaded here, not at the top: a usage error exits before paying for pg and the runtime.
  const [{ Rhythm }, { openDatabase }] = await Promise.all([import('../rhythm.js'), import('../db/local.js')]);
  if (settings.databaseUrl === undefined) {
    log.info({ dataDir: settings.dataDir }, 'no database configured: using the embedded Postgres on the local data folder');
  }
  let db: LocalDatabase;
  try {
    db = await openDatabase({ databaseUrl: settings.databaseUrl, dataDir: settings.dataDir });
  } catch (err) {
    throw new CliError(`could not start the embedded Postgres: ${(err as Error).message}`, { cause: err });
  }
  if (db.embedded) {
    const { dataDir, realDataDir, port, owned } = db.embedded;
    log.info({ dataDir, ...(realDataDir !== dataDir ? { realDataDir } : {}), port, startedHere: owned }, 'embedded Postgres ready');
  }
  let r: Rhythm;
  try {
    r = await Rhythm.init({
      databaseUrl: db.url,
      schema: settings.schema,
      autoMigrate: options.autoMigrate,
      poolSize: options.poolSize ?? settings.poolSize,
      leasePoolSize: settings.leasePoolSize,
      ...(settings.dbTimeout === undefined ? {} : { connectTimeoutMs: settings.dbTimeout, queryTimeoutMs: settings.dbTimeout }),
      logger: log,
    });
  } catch (err) {
    await db.embedded?.stop().catch(() => undefined);
    const e = err as Error & { code?: string };
    const what = db.embedded ? 'the embedded Postgres' : maskUrl(db.url);
    throw new CliError(`cannot use the database ${what}: ${e.message || e.code || String(err)}${timeoutHint(err)}`, { cause: err });
  }
  let closing: Promise<void> | undefined;
  return {
    r,
    db,
    close(o = {}) {
      const down = r.shutdown(o); // again while closing: a forced stop escalates
      closing ??= down.finally(() => db.embedded?.stop());
      return closing;
    },
  };
}

/**
 * Refuses a schema whose migrations are not all applied: the commands' statements need every
 * table and column, and an error naming `rhythm migrate` beats one naming a missing relation.
 */
export async function requireMigrated(r: Rhythm, hint = 'run `rhythm migrate` first'): Promise<void> {
  const migrations = await r.migrationStatus();
  const pending = migrations.filter((m) => m.appliedAt === null);
  if (pending.length === 0) return;
  const all = pending.length === migrations.length;
  throw new CliError(
    all
      ? `schema ${JSON.stringify(r.schema)} has no Rhythm tables: ${hint}`
      : `schema ${JSON.stringify(r.schema)} lacks migrations ${pending.map((m) => m.name).join(', ')}: ${hint}`,
  );
}

/** Runs `fn` on a session whose schema is migrated (or is migrated now, with autoMigrate); closes it after. */
export async function withSession<T>(
  settings: Settings,
  log: Logger,
  options: { autoMigrate: boolean; poolSize?: number },
  fn: (session: Session) => Promise<T>,
): Promise<T> {
  const session = await openSession(settings, log, options);
  try {
    await requireMigrated(session.r);
    return await fn(session);
  } finally {
    await session.close();
  }
}
