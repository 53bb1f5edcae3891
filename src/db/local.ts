/**
 * Where a process's database comes from: the configured URL (flag/option, then the
 * environment: RHYTHM_DATABASE_URL, then DATABASE_URL) or, when none is set, the embedded
 * server on the local data folder (RHYTHM_DATA_DIR, default ./.rhythm/pgdata), which keeps
 * its data across runs. A second process finds the server already running there and shares it.
 */
import { environmentOrDefault } from '../config/resolve.js';
import type { EmbeddedServer } from './embedded.js';

export interface LocalDatabase {
  url: string;
  /** Set when we use the embedded server; stop() it at exit (a no-op if another process owns it). */
  embedded?: EmbeddedServer;
}

export function defaultDataDir(): string {
  return environmentOrDefault('dataDir');
}

export function configuredDatabaseUrl(explicit?: string): string | undefined {
  return explicit ?? environmentOrDefault('databaseUrl');
}

export async function openDatabase(options: { databaseUrl?: string; dataDir?: string } = {}): Promise<LocalDatabase> {
  const url = configuredDatabaseUrl(options.databaseUrl);
  if (url) return { url };
  // (pg and the server's binaries are loaded only when a server is started.)
  const { startEmbeddedPostgres } = await import('./embedded.js');
  const embedded = await startEmbeddedPostgres({ dataDir: options.dataDir ?? defaultDataDir() });
  return { url: embedded.url, embedded };
}
