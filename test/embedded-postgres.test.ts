/**
 * The embedded Postgres on a first start: wherever the project lives (as root, even in a
 * folder the server's `postgres` user cannot enter), with a random password kept in the data
 * folder instead of a fixed one, and a clear error (never a crash) when it cannot start.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from 'rhythm';
import { privateCopy, type PrivateCopy } from './support/private-copy.js';
import { cliEnv } from './fixtures/cli-tasks/harness/cli.js';
import { MIGRATION_FILES } from './support/migrations.js';

const isRoot = process.getuid?.() === 0;
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanups.reverse()) c();
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file, ...args], { cwd, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

async function canLogIn(url: string, password: string): Promise<boolean> {
  const u = new URL(url);
  u.password = password;
  const c = new pg.Client({ connectionString: u.toString(), connectionTimeoutMillis: 5_000 });
  try {
    await c.connect();
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '28P01') return false;
    throw err;
  } finally {
    await c.end().catch(() => undefined);
  }
}

describe.skipIf(!isRoot)('as root, from a clone in a folder only root can enter (0700)', () => {
  let copy: PrivateCopy;

  it('the CLI starts the embedded Postgres, keeps its data where the postgres user can reach it, and finds it again', {
    timeout: 120_000,
  }, async () => {
    copy = privateCopy();
    cleanups.push(() => copy.remove());
    expect(statSync(copy.home).mode & 0o777).toBe(0o700);
    const cli = path.join(copy.project, 'dist/src/cli/main.js');
    const dataDir = path.join(copy.project, '.rhythm/pgdata');

    const migrate = await run(cli, ['migrate'], copy.project);
    expect(migrate.stderr).not.toMatch(/EACCES|Unhandled|internal error/);
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(migrate.stdout.trim()).toBe(`schema rhythm: applied ${MIGRATION_FILES.join(', ')}`);

    // The data folder asked for is a link to a place the postgres user can reach.
    expect(lstatSync(dataDir).isSymbolicLink()).toBe(true);
    const real = realpathSync(dataDir);
    cleanups.push(() => rmSync(path.dirname(real), { recursive: true, force: true }));
    expect(real.startsWith('/var/lib/rhythm/data/')).toBe(true);
    expect(readFileSync(path.join(path.dirname(real), 'origin'), 'utf8').trim()).toBe(dataDir);
    expect(existsSync(path.join(real, 'PG_VERSION'))).toBe(true);
    expect(existsSync(path.join(real, 'postmaster.pid'))).toBe(false); // stopped after the command
    const pw = statSync(path.join(real, 'rhythm-password'));
    expect(pw.mode & 0o777).toBe(0o600);

    // The next runs find the same data, and a second process shares the server the first one
    // started: a long-running scheduler, and one-shot commands beside it.
    let id = '';
    const worker = spawn(process.execPath, [cli, 'scheduler', '--log-level', 'info'], {
      cwd: copy.project,
      env: cliEnv(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const workerExit = new Promise<number | null>((r) => worker.once('close', (code) => r(code)));
    try {
      let log = '';
      await new Promise<void>((resolve, reject) => {
        worker.stderr!.on('data', (d) => {
          log += d;
          if (log.includes('rhythm scheduler running')) resolve();
        });
        void workerExit.then(() => reject(new Error(`scheduler exited: ${log}`)));
      });
      const ready = JSON.parse(log.split('\n').find((l) => l.includes('embedded Postgres ready'))!);
      expect(ready.startedHere).toBe(true);
      // The server runs the binaries copied where the postgres user can reach them.
      const pid = Number(readFileSync(path.join(real, 'postmaster.pid'), 'utf8').split('\n')[0]);
      expect(readlinkSync(`/proc/${pid}/exe`)).toMatch(/^\/var\/lib\/rhythm\/postgres-[^/]+\/bin\/postgres$/);
      const enqueue = await run(cli, ['enqueue', 'echo', '{"kept":true}', '--log-level', 'info'], copy.project);
      expect(enqueue.code, enqueue.stderr).toBe(0);
      expect(enqueue.stderr).toMatch(/"startedHere":false/);
      id = enqueue.stdout.trim();
    } finally {
      worker.kill('SIGTERM');
      expect(await workerExit).toBe(0);
    }
    expect(existsSync(path.join(real, 'postmaster.pid'))).toBe(false);
    // A later run, on a server of its own again, reads what the others wrote.
    const get = await run(cli, ['get', id, '--json', '--log-level', 'info'], copy.project);
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ id, name: 'echo', status: 'queued', payload: { kept: true } });
    expect(get.stderr).toMatch(/"startedHere":true/);
  });
});

describe('access and start-up errors', () => {
  it('a new cluster gets a random password kept in its data folder (0600); a cluster made with the old fixed password gets one at its next start', {
    timeout: 60_000,
  }, async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'rhythm-embedded-'));
    chmodSync(root, 0o755);
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const dataDir = path.join(root, 'pgdata');
    let server = await startEmbeddedPostgres({ dataDir });
    try {
      const file = path.join(dataDir, 'rhythm-password');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const password = readFileSync(file, 'utf8').trim();
      expect(password).toMatch(/^[\w-]{32}$/);
      expect(new URL(server.url).password).toBe(password);
      expect(new URL(server.url).hostname).toBe('127.0.0.1');
      expect(await canLogIn(server.url, 'rhythm')).toBe(false);
      expect(await canLogIn(server.url, password)).toBe(true);

      // Make it look like a cluster of an earlier version: fixed password, no file.
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      await c.query(`ALTER ROLE postgres PASSWORD 'rhythm'`);
      await c.end();
      await server.stop();
      unlinkSync(file);

      server = await startEmbeddedPostgres({ dataDir });
      const upgraded = readFileSync(file, 'utf8').trim();
      expect(upgraded).not.toBe(password);
      expect(new URL(server.url).password).toBe(upgraded);
      expect(await canLogIn(server.url, 'rhythm')).toBe(false);
      expect(await canLogIn(server.url, upgraded)).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it('a data folder that cannot be made is a clear error, for the library and the CLI (exit 1), not a crash', {
    timeout: 30_000,
  }, async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'rhythm-embedded-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const file = path.join(root, 'a-file');
    writeFileSync(file, 'not a folder');
    await expect(startEmbeddedPostgres({ dataDir: path.join(file, 'pgdata') })).rejects.toThrow(/a-file/);
    const cli = path.join(process.cwd(), 'dist/src/cli/main.js');
    const res = await run(cli, ['status'], root, { RHYTHM_DATA_DIR: path.join(file, 'pgdata') });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^rhythm status: error: could not start the embedded Postgres: .*a-file/m);
    expect(res.stderr).not.toMatch(/internal error|Unhandled|\n\s+at /);
  });
});
