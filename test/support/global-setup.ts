/**
 * One Postgres server for the whole test run: DATABASE_URL / RHYTHM_DATABASE_URL if set,
 * else an embedded server on a fresh temporary data folder, stopped (and removed) at the end.
 * Each test file then creates its own database on it (see db.ts), empty or copied from a
 * template database migrated here once (copying is cheaper than migrating in every file).
 * vitest runs this once per project (the config has two): the projects share one server and
 * template, stopped and dropped when the last project ends.
 */
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import type { TestProject } from 'vitest/node';
import { Rhythm, startEmbeddedPostgres, type EmbeddedServer } from '../../src/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    /** A database with every migration applied to the default schema, to copy (see db.ts). */
    migratedTemplate: string;
  }
}

interface Shared {
  ready: Promise<{ url: string; template: string }>;
  users: number;
  stop(): Promise<void>;
}

async function onAdmin<T>(url: string, use: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await use(c);
  } finally {
    await c.end();
  }
}

/** Creates the template database and migrates it; nothing stays connected to it after. */
async function migratedTemplate(url: string): Promise<string> {
  const name = `rhythm_template_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await onAdmin(url, (c) => c.query(`CREATE DATABASE "${name}"`));
  const u = new URL(url);
  u.pathname = `/${name}`;
  const r = await Rhythm.init({ databaseUrl: u.toString(), autoMigrate: true, logger: pino({ level: 'silent' }) });
  await r.shutdown();
  return name;
}

// On globalThis: each project may load this module on its own, in the same main process.
const KEY = Symbol.for('rhythm.test.postgres');
const holder = globalThis as unknown as Record<symbol, Shared | undefined>;

function start(): Shared {
  const external = process.env.RHYTHM_DATABASE_URL ?? process.env.DATABASE_URL;
  let server: Promise<EmbeddedServer> | undefined;
  let dataRoot: string | undefined;
  if (!external) {
    dataRoot = mkdtempSync(path.join(tmpdir(), 'rhythm-test-'));
    chmodSync(dataRoot, 0o755); // the server runs as the postgres user when we are root
    server = startEmbeddedPostgres({
      dataDir: path.join(dataRoot, 'pgdata'),
      // Throwaway data: trade crash safety for speed.
      settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: 300 },
    });
  }
  const ready = (async () => {
    const url = external ?? (await server!).url;
    return { url, template: await migratedTemplate(url) };
  })();
  return {
    ready,
    users: 0,
    async stop() {
      const done = await ready.catch(() => undefined);
      // An external server outlives the run: leave nothing on it.
      if (external && done) await onAdmin(done.url, (c) => c.query(`DROP DATABASE IF EXISTS "${done.template}" WITH (FORCE)`));
      await (await server?.catch(() => undefined))?.stop();
      if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
    },
  };
}

export async function setup(project: TestProject): Promise<void> {
  const shared = (holder[KEY] ??= start());
  shared.users++;
  const { url, template } = await shared.ready;
  project.provide('databaseUrl', url);
  project.provide('migratedTemplate', template);
}

export async function teardown(): Promise<void> {
  const shared = holder[KEY];
  if (!shared || --shared.users > 0) return;
  holder[KEY] = undefined;
  await shared.stop();
}
