/**
 * `rhythm status` against known table contents, plus get, cancel, migrate and the graceful
 * hand-back of a running task when a worker gets SIGTERM.
 *
 * Some commands run in this process (runInProcess: runCli with its own streams), as a process
 * each costs seconds on a loaded machine; each command also runs as the shipped executable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import { MIGRATION_FILES } from './support/migrations.js';
import { spawnCli, runCli, runInProcess, killAll, removeScratch, TASKS_DIR, type CliProcess } from './fixtures/cli-tasks/harness/cli.js';

interface QueueFigures {
  queue: string;
  queued: number;
  scheduled: number;
  running: number;
  failed: number;
  completed: number;
  oldestWaitingMs: number | null;
}

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Rhythm;
let worker: CliProcess;
const ids = { echo: [] as string[], fail: [] as string[], later: [] as string[], idle: [] as string[], block: [] as string[] };
let conn: string[];

beforeAll(async () => {
  db = await createTestDatabase('rhythm_cli_status');
  conn = ['--database-url', db.url, '--schema', 'st'];
  r = await Rhythm.init({ databaseUrl: db.url, schema: 'st' });
  worker = spawnCli([
    'worker',
    ...conn,
    '--tasks',
    TASKS_DIR,
    '--only',
    'block,echo,fail',
    '--queue',
    'work:0',
    '--shutdown-timeout',
    '200ms',
    '--log-level',
    'info',
  ]);
  await worker.waitForLog('worker started', (e) => e.queue === 'work');

  for (let i = 0; i < 3; i++) ids.echo.push(await r.enqueue('echo', i, { queue: 'work' }));
  for (let i = 0; i < 2; i++) ids.fail.push(await r.enqueue('fail', i, { queue: 'work', maxAttempts: 1 }));
  const finished = await Promise.all([...ids.echo, ...ids.fail].map((id) => r.wait(id, { timeoutMs: 20_000 })));
  expect(finished.map((e) => e.status)).toEqual(['completed', 'completed', 'completed', 'failed', 'failed']);
  for (let i = 0; i < 2; i++) ids.later.push(await r.enqueue('echo', i, { queue: 'later', delayMs: 3_600_000 }));
  for (let i = 0; i < 4; i++) ids.idle.push(await r.enqueue('echo', i, { queue: 'idle' }));
  for (let i = 0; i < 2; i++) ids.block.push(await r.enqueue('block', i, { queue: 'work' }));
  // Both blocking tasks are running once their handlers said so.
  await Promise.all(ids.block.map((id) => worker.waitForLine('stdout', (l) => l === `BLOCK_STARTED ${id}`)));
}, 60_000);

afterAll(async () => {
  await killAll();
  await r?.shutdown();
  await db?.drop();
  removeScratch();
});

/** Per-queue figures computed straight from the tables. */
async function figuresFromTables(): Promise<Map<string, Omit<QueueFigures, 'oldestWaitingMs'> & { oldestWaitingMs: number | null }>> {
  const n = r.names;
  const { rows } = await r.pool.query(`
    WITH e AS (
      SELECT e.queue, e.status, e.run_at, e.finished_at,
             EXISTS (SELECT 1 FROM ${n.workQueue} w WHERE w.execution_id = e.id AND w.claimed_until IS NOT NULL) AS claimed
      FROM ${n.executions} e
    )
    SELECT queue,
           count(*) FILTER (WHERE status = 'queued' AND NOT claimed)::int AS queued,
           count(*) FILTER (WHERE status = 'scheduled')::int AS scheduled,
           count(*) FILTER (WHERE status IN ('queued', 'running') AND claimed)::int AS running,
           count(*) FILTER (WHERE status = 'failed' AND finished_at > now() - interval '1 hour')::int AS failed,
           count(*) FILTER (WHERE status = 'completed' AND finished_at > now() - interval '1 hour')::int AS completed,
           (extract(epoch FROM now() - min(run_at) FILTER (WHERE status = 'queued' AND NOT claimed)) * 1000)::float8 AS oldest_waiting_ms
    FROM e GROUP BY queue ORDER BY queue`);
  return new Map(
    rows.map((x) => [
      x.queue,
      {
        queue: x.queue,
        queued: x.queued,
        scheduled: x.scheduled,
        running: x.running,
        failed: x.failed,
        completed: x.completed,
        oldestWaitingMs: x.oldest_waiting_ms,
      },
    ]),
  );
}

describe('rhythm status', () => {
  it('--json figures match the table contents', async () => {
    const res = await runInProcess(['status', ...conn, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as { schema: string; windowMs: number; queues: QueueFigures[] };
    const tables = await figuresFromTables();
    expect(report.schema).toBe('st');
    expect(report.windowMs).toBe(3_600_000);
    expect(report.queues.map((q) => q.queue)).toEqual([...tables.keys()]);
    for (const q of report.queues) {
      const t = tables.get(q.queue)!;
      const { queued, scheduled, running, failed, completed } = q;
      expect({ queue: q.queue, queued, scheduled, running, failed, completed }, q.queue).toEqual({ ...t, oldestWaitingMs: undefined });
      if (t.oldestWaitingMs === null) {
        expect(q.oldestWaitingMs).toBeNull();
      } else {
        // Read a moment apart: the table figure is the later one.
        expect(q.oldestWaitingMs).toBeGreaterThan(0);
        expect(q.oldestWaitingMs!).toBeLessThanOrEqual(t.oldestWaitingMs + 1);
        expect(t.oldestWaitingMs - q.oldestWaitingMs!).toBeLessThan(5_000);
      }
    }
    // And what this test put there.
    const by = Object.fromEntries(report.queues.map((q) => [q.queue, q]));
    expect(by.work).toMatchObject({ queued: 0, scheduled: 0, running: 2, failed: 2, completed: 3, oldestWaitingMs: null });
    expect(by.later).toMatchObject({ queued: 0, scheduled: 2, running: 0, failed: 0, completed: 0 });
    expect(by.idle).toMatchObject({ queued: 4, scheduled: 0, running: 0, failed: 0, completed: 0 });

    // A window that ends before anything finished counts no failures or completions.
    const narrow = await runInProcess(['status', ...conn, '--json', '--window', '1ms']);
    const narrowBy = Object.fromEntries(JSON.parse(narrow.stdout).queues.map((q: QueueFigures) => [q.queue, q]));
    expect(narrowBy.work).toMatchObject({ running: 2, failed: 0, completed: 0 });
  });

  it('prints a table for people', async () => {
    const res = await runCli(['status', ...conn]);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines[1]).toMatch(/^QUEUE\s+TASK\s+QUEUED\s+SCHEDULED\s+RUNNING\s+FAILED\s+COMPLETED\s+CANCELLED\s+OLDEST WAITING$/);
    expect(lines.find((l) => /^idle\s+\*/.test(l))).toMatch(/^idle\s+\*\s+4\s+0\s+0\s+0\s+0\s+0\s+\d/);
    // The queue's row, then one per task name in it.
    const work = lines.filter((l) => l.startsWith('work'));
    expect(work[0]).toMatch(/^work\s+\*\s+0\s+0\s+2\s+2\s+3\s+0\s+-$/);
    expect(work.slice(1).map((l) => l.split(/\s+/).slice(1, 8).join(' '))).toEqual([
      'block 0 0 2 0 0 0',
      'echo 0 0 0 0 3 0',
      'fail 0 0 0 2 0 0',
    ]);
  });

  it('--watch refreshes until SIGINT, one JSON document per line with --json', async () => {
    const watch = spawnCli(['status', ...conn, '--watch', '--json', '--interval', '200ms']);
    await watch.waitForLine('stdout', (l) => l.startsWith('{'));
    // A second report: the first was not the only one.
    await watch.waitForLine('stdout', () => watch.stdout.split('\n').filter((l) => l.startsWith('{')).length >= 2);
    expect(await watch.stop('SIGINT')).toEqual({ code: 0, signal: null });
    const reports = watch.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l));
    expect(reports.length).toBeGreaterThanOrEqual(2);
    for (const rep of reports) expect(rep.queues.find((q: QueueFigures) => q.queue === 'idle').queued).toBe(4);
  });

  it('refuses a schema that was never migrated (exit 1)', async () => {
    const res = await runInProcess(['status', '--database-url', db.url, '--schema', 'never_migrated']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('rhythm migrate');
  });
});

describe('rhythm get and cancel', () => {
  it('shows a running execution, cancels it, and refuses what cannot be cancelled', async () => {
    const [id] = ids.block;
    const before = await runCli(['get', ...conn, id!, '--json']);
    expect(before.code, before.stderr).toBe(0);
    expect(JSON.parse(before.stdout)).toMatchObject({ id, name: 'block', queue: 'work', status: 'running', attempts: 1 });

    const cancel = await runCli(['cancel', ...conn, id!]);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout.trim()).toBe(`cancelled execution ${id}`);
    const e = await r.wait(id!, { timeoutMs: 10_000 });
    expect(e.status).toBe('cancelled');

    const after = await runInProcess(['get', ...conn, id!]);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/^status\s+cancelled$/m);
    expect(after.stdout).toMatch(/^error\s+CancelledError: /m);

    // Cancelled already: still exit 0, nothing changes.
    const again = await runInProcess(['cancel', ...conn, id!, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ cancelled: [], skipped: [{ id, status: 'cancelled' }] });

    const done = await runInProcess(['cancel', ...conn, ids.echo[0]!]);
    expect(done.code).toBe(1);
    expect(done.stdout).toContain('already completed');
    expect((await r.get(ids.echo[0]!))!.status).toBe('completed');

    const [missingGet, missingCancel] = await Promise.all([
      runInProcess(['get', ...conn, '987654321']),
      runInProcess(['cancel', ...conn, '987654321']),
    ]);
    expect(missingGet.code).toBe(1);
    expect(missingGet.stderr).toContain('no execution with id 987654321');
    expect(missingCancel.code).toBe(1);
    expect(missingCancel.stderr).toContain('no execution with id 987654321');
  });

  it('enqueues from the command line into the same tables', async () => {
    const [res, fromStdin] = await Promise.all([
      runInProcess(['enqueue', ...conn, 'echo', '{"from": "cli"}', '--queue', 'idle', '--priority=-3', '--max-attempts', '5']),
      runCli(['enqueue', ...conn, 'echo', '-', '--queue', 'idle', '--delay', '1h', '--json'], { stdin: '[1, {"two": 2}]' }),
    ]);
    expect(res.code, res.stderr).toBe(0);
    const id = res.stdout.trim();
    expect(id).toMatch(/^\d+$/);
    const e = await r.get(id);
    expect(e).toMatchObject({ name: 'echo', queue: 'idle', status: 'queued', payload: { from: 'cli' }, priority: -3, maxAttempts: 5 });

    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    const e2 = await r.get(JSON.parse(fromStdin.stdout).id);
    expect(e2).toMatchObject({ status: 'scheduled', payload: [1, { two: 2 }] });
    expect(e2!.runAt.getTime() - e2!.createdAt.getTime()).toBeGreaterThan(3_599_000);
    await r.cancel(id);
    await r.cancel(e2!.id);
  });
});

describe('rhythm migrate', () => {
  it('lists pending migrations, applies them once, then lists them applied', async () => {
    const fresh = ['--database-url', db.url, '--schema', 'fresh'];
    const pending = await runInProcess(['migrate', ...fresh, '--status']);
    expect(pending.code, pending.stderr).toBe(0);
    expect(pending.stdout).toContain(`0 applied, ${MIGRATION_FILES.length} pending`);
    for (const file of MIGRATION_FILES) expect(pending.stdout).toMatch(new RegExp(`${file.replace('.', '\\.')}\\s+pending`));

    const apply = await runCli(['migrate', ...fresh]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout.trim()).toBe(`schema fresh: applied ${MIGRATION_FILES.join(', ')}`);
    // A one-shot command at the default log level prints its answer and nothing else.
    expect(apply.stderr).toBe('');

    const again = await runInProcess(['migrate', ...fresh]);
    expect(again.stdout.trim()).toBe('schema fresh is up to date');

    const listed = await runInProcess(['migrate', ...fresh, '--status', '--json']);
    const json = JSON.parse(listed.stdout);
    expect(json.schema).toBe('fresh');
    expect(json.migrations).toEqual(
      MIGRATION_FILES.map((name) => expect.objectContaining({ id: Number(name.slice(0, 3)), name, applied: true })),
    );
    expect(Number.isNaN(Date.parse(json.migrations[0].appliedAt))).toBe(false);
  });
});

describe('graceful shutdown of a worker', () => {
  it('on SIGTERM hands a task still running after --shutdown-timeout back to the queue and exits 0', async () => {
    const id = ids.block[1]!;
    expect((await r.get(id))!.status).toBe('running');
    const exit = await worker.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    const msgs = worker.logs.map((l) => l.msg);
    // Closing the pools on a clean stop is no warning.
    expect(worker.logs.filter((l) => l.msg === 'idle database connection lost' && (l.level ?? 0) >= 40)).toEqual([]);
    expect(msgs.some((m) => typeof m === 'string' && /shutdown timeout/.test(m))).toBe(true);
    expect(msgs.at(-1)).toBe('graceful shutdown complete');
    // Back in the queue for another worker, the aborted attempt not counted.
    expect(await r.get(id)).toMatchObject({ status: 'queued', attempts: 0 });
  });
});
