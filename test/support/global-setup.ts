/**
 * One Postgres server for the whole test run: DATABASE_URL / RHYTHM_DATABASE_URL if set,
 * else an embedded server on a fresh temporary data folder, stopped (and removed) at the end.
 * Each test file then creates its own database on it (see db.ts). vitest runs this once per
 * project (the config has two): the projects share one server, stopped when the last ends.
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

interface Shared {
  url: Promise<string>;
  users: number;
  stop(): Promise<void>;
}

// On globalThis: each project may load this module on its own, in the same main process.
const KEY = Symbol.for('rhythm.test.postgres');
const holder = globalThis as unknown as Record<symbol, Shared | undefined>;

function start(): Shared {
  const external = process.env.RHYTHM_DATABASE_URL ?? process.env.DATABASE_URL;
  if (external) return { url: Promise.resolve(external), users: 0, stop: async () => {} };
  const dataRoot = mkdtempSync(path.join(tmpdir(), 'rhythm-test-'));
  chmodSync(dataRoot, 0o755); // the server runs as the postgres user when we are root
  const server: Promise<EmbeddedServer> = startEmbeddedPostgres({
    dataDir: path.join(dataRoot, 'pgdata'),
    // Throwaway data: trade crash safety for speed.
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: 300 },
  });
  return {
    url: server.then((s) => s.url),
    users: 0,
    async stop() {
      await (await server.catch(() => undefined))?.stop();
      rmSync(dataRoot, { recursive: true, force: true });
    },
  };
}

export async function setup(project: TestProject): Promise<void> {
  const shared = (holder[KEY] ??= start());
  shared.users++;
  project.provide('databaseUrl', await shared.url);
}

export async function teardown(): Promise<void> {
  const shared = holder[KEY];
  if (!shared || --shared.users > 0) return;
  holder[KEY] = undefined;
  await shared.stop();
}
