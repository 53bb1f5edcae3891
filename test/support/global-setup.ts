/**
 * One Postgres server for the whole test run: DATABASE_URL / RHYTHM_DATABASE_URL if set,
 * else an embedded server on a fresh temporary data folder, stopped (and removed) at the end.
 * Each test file then creates its own database on it (see db.ts).
 */
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

let server: EmbeddedServer | undefined;
let dataRoot: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  const external = process.env.RHYTHM_DATABASE_URL ?? process.env.DATABASE_URL;
  if (external) {
    project.provide('databaseUrl', external);
    return;
  }
  dataRoot = mkdtempSync(path.join(tmpdir(), 'rhythm-test-'));
  chmodSync(dataRoot, 0o755); // the server runs as the postgres user when we are root
  server = await startEmbeddedPostgres({
    dataDir: path.join(dataRoot, 'pgdata'),
    // Throwaway data: trade crash safety for speed.
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: 300 },
  });
  project.provide('databaseUrl', server.url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
}
