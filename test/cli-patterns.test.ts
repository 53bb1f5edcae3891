/**
 * The seed's deployment patterns, as real `rhythm` processes against the test database:
 * the unified process (`rhythm start`), and a split scheduler (`rhythm scheduler`) with two
 * task-specific workers on different queues, each running only its tasks. Some one-shot
 * commands run in this process (runInProcess: runCli with its own streams), as a process each
 * costs seconds on a loaded machine; each also runs as the shipped executable.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import { spawnCli, runCli, runInProcess, killAll, removeScratch, TASKS_DIR, type CliProcess } from './fixtures/cli-tasks/harness/cli.js';

interface Ran {
  task?: string;
  echo?: unknown;
  pid: number;
  mainThread: boolean;
  queue: string;
}

let db: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  db = await createTestDatabase('rhythm_cli_patterns');
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await db?.drop();
  removeScratch();
});

const started = (p: CliProcess, queue: string) => p.waitForLog('worker started', (e) => e.queue === queue);

describe('unified process: rhythm start', () => {
  it('runs the internal worker and workers for several queues in one process, then stops gracefully on SIGTERM', async () => {
    const common = ['--database-url', db.url, '--schema', 'unified'];
    const start = spawnCli([
      'start',
      ...common,
      '--tasks',
      TASKS_DIR,
      '--queue',
      'default:1',
      '--queue',
      'io:0',
      '--tick',
      '50ms',
      '--log-level',
      'info',
    ]);
    const [cpuWorker, ioWorker] = await Promise.all([started(start, 'default'), started(start, 'io')]);
    expect(cpuWorker.threads).toBe(1);
    expect(ioWorker.threads).toBe(0);
    expect(cpuWorker.tasks).toEqual(expect.arrayContaining(['alpha', 'beta', 'echo', 'gamma', 'fail']));

    // The effective configuration, printed at startup with the password masked.
    const config = await start.waitForLog('effective configuration');
    const url = (config.config as Record<string, { value: string; source: string }>).databaseUrl!;
    expect(url.source).toBe('flag --database-url');
    expect(url.value).toContain(':***@');
    expect(start.stderr).not.toContain(`:${new URL(db.url).password}@`);

    // Four enqueues at once, each waiting for its execution.
    const [a, b, c, d] = await Promise.all([
      runCli(['enqueue', ...common, 'echo', '{"n": 1}', '--wait', '--json']),
      runInProcess(['enqueue', ...common, 'gamma', '--queue', 'io', '--wait', '--json']),
      runInProcess(['enqueue', ...common, 'echo', '"later"', '--delay', '300ms', '--wait', '--json']),
      runInProcess(['enqueue', ...common, 'fail', '--max-attempts', '1', '--wait']),
    ]);
    // A module task on the default queue's thread, through `rhythm enqueue --wait`.
    expect(a.code, a.stderr).toBe(0);
    const ea = JSON.parse(a.stdout);
    expect(ea.status).toBe('completed');
    expect(ea.result).toMatchObject({ echo: { n: 1 }, pid: start.pid, mainThread: false, queue: 'default' });

    // A module named by its `name` export, on the io queue's main thread.
    expect(b.code, b.stderr).toBe(0);
    expect(JSON.parse(b.stdout).result).toMatchObject({ task: 'gamma', pid: start.pid, mainThread: true, queue: 'io' });

    // A delayed task runs only because the internal worker (in this same process) promotes it.
    expect(c.code, c.stderr).toBe(0);
    const ec = JSON.parse(c.stdout);
    expect(ec.result.echo).toBe('later');
    expect(new Date(ec.startedAt).getTime() - new Date(ec.createdAt).getTime()).toBeGreaterThanOrEqual(300);

    // A failing task: --wait prints it and exits 1.
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/status\s+failed/);
    expect(d.stdout).toContain('fixture failure');

    const exit = await start.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(start.logs.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        'signal received: shutting down gracefully (send it again to force a fast stop)',
        'graceful shutdown complete',
      ]),
    );
  });
});

describe('split scheduler with task-specific workers', () => {
  let r: Rhythm;
  afterAll(async () => {
    await r?.shutdown();
  });

  it('runs each task only on the worker that registered it; a task nobody serves stays queued', async () => {
    const common = ['--database-url', db.url, '--schema', 'split', '--log-level', 'info'];
    // The scheduler migrates; the workers start with --no-migrate (as in a deployment where
    // only one role owns the schema).
    const migrate = await runCli(['migrate', ...common]);
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(migrate.stdout).toContain('applied 001_init.sql');

    const scheduler = spawnCli(['scheduler', ...common, '--tick', '50ms']);
    const cpu = spawnCli(['worker', ...common, '--no-migrate', '--tasks', TASKS_DIR, '--queue', 'high-cpu:2', '--only', 'alpha,echo']);
    const io = spawnCli(['worker', ...common, '--no-migrate', '--tasks', TASKS_DIR, '--queue', 'io:0', '--only', 'beta,gamma']);
    const [cpuStarted, ioStarted] = await Promise.all([
      started(cpu, 'high-cpu'),
      started(io, 'io'),
      scheduler.waitForLog('internal worker started'),
    ]);
    expect(cpuStarted.tasks).toEqual(['alpha', 'echo']);
    expect(cpuStarted.threads).toBe(2);
    expect(ioStarted.tasks).toEqual(['beta', 'gamma']);
    // Workers without --internal-worker run no scheduling of their own.
    expect(cpu.logs.some((l) => l.msg === 'internal worker started')).toBe(false);
    expect(io.logs.some((l) => l.msg === 'internal worker started')).toBe(false);

    r = await Rhythm.init({ databaseUrl: db.url, schema: 'split', autoMigrate: false });
    const served = {
      alpha: await r.enqueue('alpha', null, { queue: 'high-cpu' }),
      echo: await r.enqueue('echo', 'x', { queue: 'high-cpu' }),
      beta: await r.enqueue('beta', null, { queue: 'io' }),
      gamma: await r.enqueue('gamma', null, { queue: 'io' }),
      // Only the scheduler process can promote this one.
      delayedBeta: await r.enqueue('beta', 'delayed', { queue: 'io', delayMs: 200 }),
    };
    const unserved = {
      // The high-cpu worker serves that queue, but not this task.
      betaOnCpu: await r.enqueue('beta', null, { queue: 'high-cpu' }),
      // No worker serves this queue at all.
      otherQueue: await r.enqueue('alpha', null, { queue: 'ml-tasks' }),
    };
    const done = await Promise.all(Object.values(served).map((id) => r.wait<Ran>(id, { timeoutMs: 20_000 })));
    const [alpha, echo, beta, gamma, delayed] = done;
    for (const e of done) expect(e.status).toBe('completed');
    expect(alpha!.result).toMatchObject({ task: 'alpha', pid: cpu.pid, mainThread: false });
    expect(echo!.result).toMatchObject({ echo: 'x', pid: cpu.pid, mainThread: false });
    expect(beta!.result).toMatchObject({ task: 'beta', pid: io.pid, mainThread: true });
    expect(gamma!.result).toMatchObject({ task: 'gamma', pid: io.pid, mainThread: true });
    expect(delayed!.result).toMatchObject({ task: 'beta', pid: io.pid });
    expect(delayed!.startedAt!.getTime() - delayed!.createdAt.getTime()).toBeGreaterThanOrEqual(200);

    // Everything served is done; the others were never claimed.
    for (const id of Object.values(unserved)) {
      const e = await r.get(id);
      expect(e).toMatchObject({ status: 'queued', attempts: 0, startedAt: null });
    }
    const status = await runInProcess(['status', '--database-url', db.url, '--schema', 'split', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const byQueue = Object.fromEntries(JSON.parse(status.stdout).queues.map((q: { queue: string }) => [q.queue, q]));
    expect(byQueue['high-cpu']).toMatchObject({ queued: 1, running: 0, completed: 2 });
    expect(byQueue['ml-tasks']).toMatchObject({ queued: 1, running: 0, completed: 0 });
    expect(byQueue.io).toMatchObject({ queued: 0, running: 0, completed: 3 });

    const exits = await Promise.all([cpu.stop(), io.stop(), scheduler.stop('SIGINT')]);
    expect(exits).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
    // Still queued after the workers left.
    expect((await r.get(unserved.otherQueue))!.status).toBe('queued');
  });
});

describe('forced stop', () => {
  let r: Rhythm;
  afterAll(async () => {
    await r?.shutdown();
  });

  it('a second signal aborts in-flight tasks at once, hands them back and exits 130', async () => {
    const conn = ['--database-url', db.url, '--schema', 'forced'];
    r = await Rhythm.init({ databaseUrl: db.url, schema: 'forced' });
    // The default 30 s shutdown timeout: only the second signal can make this quick.
    const worker = spawnCli(['worker', ...conn, '--tasks', TASKS_DIR, '--only', 'block', '--queue', 'hold:1', '--log-level', 'info']);
    await started(worker, 'hold');
    const id = await r.enqueue('block', null, { queue: 'hold' });
    await worker.waitForLine('stdout', (l) => l === `BLOCK_STARTED ${id}`);

    worker.child.kill('SIGTERM');
    await worker.waitForLog(/^signal received/);
    const t0 = Date.now();
    const exit = await worker.stop('SIGINT');
    expect(exit).toEqual({ code: 130, signal: null });
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(worker.logs.map((l) => l.msg)).toContain('forced stop complete');
    expect(await r.get(id)).toMatchObject({ status: 'queued', attempts: 0 });
  });
});
