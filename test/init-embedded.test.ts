/**
 * Rhythm.init() with no database configured anywhere starts the embedded Postgres on the local
 * data folder itself (as the CLI does), runs tasks on it, and stops it at shutdown.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Rhythm, Worker } from 'rhythm-pg';

describe('Rhythm.init without a database URL', () => {
  const saved = {
    RHYTHM_DATABASE_URL: process.env.RHYTHM_DATABASE_URL,
    DATABASE_URL: process.env.DATABASE_URL,
    RHYTHM_DATA_DIR: process.env.RHYTHM_DATA_DIR,
  };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rhythm-init-'));

  beforeAll(() => {
    delete process.env.RHYTHM_DATABASE_URL;
    delete process.env.DATABASE_URL;
    process.env.RHYTHM_DATA_DIR = path.join(dir, 'pgdata');
  });

  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts the embedded Postgres, runs a task on it, and stops it at shutdown', async () => {
    const r = await Rhythm.init();
    const url = r.databaseUrl;
    expect(url).toMatch(/^postgres(ql)?:\/\//);
    const w = new Worker(r, { queue: 'init-embedded' });
    w.task('double', (n: number) => n * 2);
    const running = w.start();
    const id = await r.enqueue('double', 21, { queue: 'init-embedded' });
    const done = await r.wait(id, { timeoutMs: 30_000 });
    expect(done.status).toBe('completed');
    expect(done.result).toBe(42);
    await r.shutdown();
    await running;
    // The server this init started is gone with it.
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    await expect(client.connect()).rejects.toThrow();
  });
});
