/**
 * With no database configured (no flag, no RHYTHM_DATABASE_URL/DATABASE_URL, no config file),
 * the commands use the embedded Postgres on the local data folder, as `npm start` does:
 * started on first use, its data kept across runs, stopped again by the process that started it.
 * The enqueue runs in this process (runInProcess: runCli with its own streams), between two
 * commands run as processes of their own.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runCli, runInProcess, killAll, removeScratch, newDir } from './fixtures/cli-tasks/harness/cli.js';
import { MIGRATION_FILES } from './support/migrations.js';

afterEach(killAll);
afterAll(removeScratch);

describe('no database configured', () => {
  it('uses the embedded Postgres on the data folder, keeps its data, and stops it after each command', { timeout: 120_000 }, async () => {
    const dataDir = path.join(newDir('embedded'), 'pgdata');
    const env = { RHYTHM_DATA_DIR: dataDir };

    const migrate = await runCli(['migrate', '--log-level', 'info'], { env });
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(migrate.stdout.trim()).toBe(`schema rhythm: applied ${MIGRATION_FILES.join(', ')}`);
    const config = migrate.logs.find((l) => l.msg === 'effective configuration')!.config as Record<
      string,
      { value: unknown; source: string }
    >;
    expect(config.databaseUrl).toEqual({ value: '(none: embedded Postgres)', source: 'default' });
    expect(config.dataDir).toEqual({ value: dataDir, source: 'env RHYTHM_DATA_DIR' });
    expect(migrate.logs.find((l) => l.msg === 'embedded Postgres ready')).toMatchObject({ dataDir, startedHere: true });
    // The server this command started is stopped again.
    expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);

    const enqueue = await runInProcess(['enqueue', 'echo', '{"kept": true}'], { env });
    expect(enqueue.code, enqueue.stderr).toBe(0);
    const id = enqueue.stdout.trim();

    // A later run finds the same data.
    const get = await runCli(['get', id, '--json', '--data-dir', dataDir]);
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ id, name: 'echo', status: 'queued', payload: { kept: true } });
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  });
});
