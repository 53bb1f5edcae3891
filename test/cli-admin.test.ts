/**
 * The admin commands against a real schema: list (filters, pages, JSON), retry and cancel by
 * id and by filter, pause, resume and rate-limit as `rhythm status` shows them, and the usage
 * errors that stop a command before it connects.
 *
 * Most commands run in this process (runInProcess: runCli with its own streams), as a process
 * each costs seconds on a loaded machine; each command also runs at least once as the shipped
 * executable (runCli).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, Worker, type Execution } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import { runCli, runInProcess, killAll, removeScratch } from './fixtures/cli-tasks/harness/cli.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Rhythm;
let conn: string[];
let running: Promise<void>;
/** Whether the 'flaky' task fails (the test "fixes the bug" before retrying). */
let flakyFails = true;

beforeAll(async () => {
  db = await createTestDatabase('rhythm_cli_admin');
  conn = ['--database-url', db.url, '--schema', 'ca'];
  r = await Rhythm.init({ databaseUrl: db.url, schema: 'ca' });
  const w = new Worker(r, { queue: 'work', concurrency: 4 });
  w.task('ok', async (p: unknown) => ({ echo: p }));
  w.task('flaky', async (_p, ctx) => {
    if (flakyFails) throw new Error(`bug on attempt ${ctx.attempt}`);
    return { fixedOnAttempt: ctx.attempt };
  });
  running = w.start();
});

afterAll(async () => {
  await killAll();
  await r?.shutdown({ timeoutMs: 1_000 });
  await running;
  await db?.drop();
  removeScratch();
});

interface Page {
  items: Execution[];
  nextCursor: string | null;
}

async function listJson(args: string[]): Promise<Page> {
  const res = await runInProcess(['list', ...conn, '--json', ...args]);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as Page;
}

describe('rhythm list', () => {
  it('filters by queue, name, status and since; pages with --cursor; prints a table or JSON', async () => {
    const ready: string[] = [];
    for (let i = 0; i < 5; i++) ready.push(await r.enqueue('report', i, { queue: 'idle' }));
    const later = [
      await r.enqueue('digest', 0, { queue: 'idle', delayMs: 3_600_000 }),
      await r.enqueue('digest', 1, { queue: 'idle', delayMs: 3_600_000 }),
    ];
    const elsewhere = await r.enqueue('report', 9, { queue: 'idle-too' });

    const third = (await r.get(ready[2]!))!;
    const [byName, scheduled, both, since, sinceDuration] = await Promise.all([
      listJson(['--queue', 'idle', '--name', 'report']),
      listJson(['--queue', 'idle', '--status', 'scheduled']),
      listJson(['--queue', 'idle', '--status', 'queued,scheduled']),
      listJson(['--queue', 'idle', '--name', 'report', '--since', third.createdAt.toISOString()]),
      listJson(['--queue', 'idle', '--since', '1h']),
    ]);
    expect(byName.items.map((e) => e.id)).toEqual([...ready].reverse());
    expect(byName.items.every((e) => e.status === 'queued' && e.queue === 'idle')).toBe(true);
    expect(byName.nextCursor).toBeNull();

    expect(scheduled.items.map((e) => e.id)).toEqual([...later].reverse());
    expect(both.items).toHaveLength(7);
    expect(both.items.map((e) => e.id)).not.toContain(elsewhere);

    // Created at or after the third one: never the first, always the last two.
    expect(since.items.map((e) => e.id)).toEqual(expect.arrayContaining([ready[4], ready[3], ready[2]]));
    expect(since.items.map((e) => e.id)).not.toContain(ready[0]);
    expect(sinceDuration.items).toHaveLength(7);

    // Pages of two, following nextCursor, give every execution once, newest first.
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const page: Page = await listJson(['--queue', 'idle', '--name', 'report', '--limit', '2', ...(cursor ? ['--cursor', cursor] : [])]);
      seen.push(...page.items.map((e) => e.id));
      cursor = page.nextCursor;
      if (cursor === null) break;
    }
    expect(seen).toEqual([...ready].reverse());

    // For people: a header, one line per execution, and the cursor of the next page.
    const text = await runCli(['list', ...conn, '--queue', 'idle', '--name', 'report', '--limit', '2']);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+QUEUE\s+NAME\s+STATUS\s+ATTEMPTS\s+CREATED\s+FINISHED\s+ERROR$/);
    expect(lines[1]).toMatch(new RegExp(`^${ready[4]}\\s+idle\\s+report\\s+queued\\s+0/3\\s`));
    expect(lines).toHaveLength(4);
    const more = /^more: --cursor (\S+)$/.exec(lines[3]!);
    expect(more).not.toBeNull();
    const next = await listJson(['--queue', 'idle', '--name', 'report', '--limit', '2', '--cursor', more![1]!]);
    expect(next.items.map((e) => e.id)).toEqual([ready[2], ready[1]]);

    const none = await runInProcess(['list', ...conn, '--queue', 'no-such-queue']);
    expect(none.code).toBe(0);
    expect(none.stdout.trim()).toBe('(no executions match)');
    await r.cancel({ queue: 'idle' });
    await r.cancel([elsewhere]);
  });
});

describe('rhythm retry', () => {
  it('runs a failed execution again by id, then others by filter; refuses what is not failed or cancelled', async () => {
    flakyFails = true;
    const ids = [
      await r.enqueue('flaky', 1, { queue: 'work', maxAttempts: 1 }),
      await r.enqueue('flaky', 2, { queue: 'work', maxAttempts: 1 }),
      await r.enqueue('flaky', 3, { queue: 'work', maxAttempts: 1 }),
    ];
    expect((await r.waitMany(ids, { timeoutMs: 20_000 })).map((e) => e.status)).toEqual(['failed', 'failed', 'failed']);
    flakyFails = false;

    const one = await runCli(['retry', ...conn, ids[0]!, '--json']);
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout)).toEqual({ retried: [ids[0]], skipped: [] });
    const retried = await r.wait(ids[0]!, { timeoutMs: 20_000 });
    expect(retried).toMatchObject({ status: 'completed', result: { fixedOnAttempt: 2 } });

    const byFilter = await runInProcess(['retry', ...conn, '--queue', 'work', '--name', 'flaky']);
    expect(byFilter.code, byFilter.stderr).toBe(0);
    expect(byFilter.stdout.trim().split('\n')).toEqual([`retried execution ${ids[1]}`, `retried execution ${ids[2]}`]);
    const rest = await r.waitMany([ids[1]!, ids[2]!], { timeoutMs: 20_000 });
    expect(rest.map((e) => e.status)).toEqual(['completed', 'completed']);

    // Nothing failed is left: the filter selects nothing, which is no error.
    const nothing = await runInProcess(['retry', ...conn, '--queue', 'work', '--status', 'failed']);
    expect(nothing.code, nothing.stderr).toBe(0);
    expect(nothing.stdout.trim()).toBe('nothing to retry');

    // A completed execution is left alone and named; a missing one is an error.
    const completed = await runInProcess(['retry', ...conn, ids[0]!, '987654321']);
    expect(completed.code).toBe(1);
    expect(completed.stdout).toContain(`execution ${ids[0]} is completed`);
    expect(completed.stderr).toContain('no execution with id 987654321');
    expect((await r.get(ids[0]!))!.status).toBe('completed');
  });
});

describe('rhythm cancel', () => {
  it('cancels by filter, leaving what the filter does not select', async () => {
    const doomed = [await r.enqueue('x', 1, { queue: 'doomed' }), await r.enqueue('x', 2, { queue: 'doomed', delayMs: 3_600_000 })];
    const spared = await r.enqueue('y', 3, { queue: 'doomed' });
    const res = await runCli(['cancel', ...conn, '--queue', 'doomed', '--name', 'x']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim().split('\n')).toEqual(doomed.map((id) => `cancelled execution ${id}`));
    expect((await Promise.all(doomed.map((id) => r.get(id)))).map((e) => e!.status)).toEqual(['cancelled', 'cancelled']);
    expect((await r.get(spared))!.status).toBe('queued');

    const json = await runInProcess(['cancel', ...conn, '--queue', 'doomed', '--status', 'queued', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ cancelled: [spared], skipped: [] });
  });
});

describe('rhythm pause, resume, rate-limit and status', () => {
  it('a paused queue keeps its tasks until resumed; status shows it, the rate limit and the rows per task', async () => {
    // Both controls at once: each sets its own part of the queue's controls.
    const [pause, limit] = await Promise.all([
      runCli(['pause', ...conn, 'work']),
      runCli(['rate-limit', ...conn, 'work', '--max', '5', '--interval', '2s']),
    ]);
    expect(pause.code, pause.stderr).toBe(0);
    expect(pause.stdout).toMatch(/^queue work is paused \(since \d{4}-/);
    const held = await r.enqueue('ok', 'held', { queue: 'work' });

    expect(limit.code, limit.stderr).toBe(0);
    expect(limit.stdout.trim()).toBe('queue work: at most 5 starts per 2.0s');
    const controls = await r.queueControls();
    expect(controls.queues.find((q) => q.queue === 'work')).toMatchObject({ paused: true, rateLimit: { max: 5, intervalMs: 2_000 } });

    const json = await runInProcess(['status', ...conn, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout);
    const work = report.queues.find((q: { queue: string }) => q.queue === 'work');
    expect(work).toMatchObject({ queued: 1, running: 0 });
    expect(work.tasks.map((t: { name: string }) => t.name)).toEqual(['flaky', 'ok']);
    expect(work.tasks.find((t: { name: string }) => t.name === 'ok')).toMatchObject({ queued: 1 });
    expect(work.tasks.find((t: { name: string }) => t.name === 'flaky')).toMatchObject({ queued: 0, completed: 3, failed: 0 });
    expect(report.controls.queues).toEqual([
      expect.objectContaining({ queue: 'work', paused: true, rateLimit: { max: 5, intervalMs: 2_000 } }),
    ]);
    expect(report.controls.groupsAtLimit).toEqual([]);

    const text = await runInProcess(['status', ...conn]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^work\s+ok\s+1\s+0\s+0\s+0\s+0\s+0\s+\d.*$/m);
    expect(text.stdout).toContain('Queue controls:');
    expect(text.stdout).toMatch(/^work\s+paused since \d{4}-\S+\s+5 per 2\.0s\s+\d+$/m);

    const clear = await runInProcess(['rate-limit', ...conn, 'work', '--clear']);
    expect(clear.code, clear.stderr).toBe(0);
    expect(clear.stdout.trim()).toBe('queue work has no rate limit');

    const resume = await runCli(['resume', ...conn, 'work']);
    expect(resume.code, resume.stderr).toBe(0);
    expect(resume.stdout.trim()).toBe('queue work is resumed');
    expect(await r.wait(held, { timeoutMs: 20_000 })).toMatchObject({ status: 'completed', result: { echo: 'held' } });
    expect((await r.queueControls()).queues).toEqual([]);

    const again = await runInProcess(['resume', ...conn, 'work', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ queue: 'work', resumed: false });
  });
});

describe('usage errors', () => {
  const cases: [string[], string][] = [
    [['cancel'], 'missing what to cancel'],
    [['cancel', '--status', 'completed'], 'cannot select "completed"'],
    [['cancel', '12', '--queue', 'work'], 'not both'],
    [['retry'], 'missing what to retry'],
    [['retry', '--status', 'queued'], 'cannot select "queued"'],
    [['retry', 'abc'], 'invalid execution id "abc"'],
    [['list', '--status', 'done'], 'unknown status "done"'],
    [['list', '--since', 'yesterday'], '--since must be an ISO date'],
    [['list', '--limit', '0'], '--limit must be an integer'],
    [['list', '--cursor', 'nonsense'], '--cursor: invalid cursor'],
    [['list', '--queue', 'no spaces'], '--queue: invalid queue name'],
    [['pause'], 'missing the queue name'],
    [['resume', 'bad queue!'], 'invalid queue name'],
    [['rate-limit', 'work'], 'give --max and --interval'],
    [['rate-limit', 'work', '--max', '0', '--interval', '1s'], '--max must be an integer >= 1'],
    [['rate-limit', 'work', '--max', '3', '--interval', 'soon'], '--interval must be a duration'],
    [['rate-limit', 'work', '--clear', '--max', '3'], '--clear cannot go with --max'],
  ];

  it('exit 2 with a message naming the problem, before connecting', async () => {
    // In this process (each case as a process of its own takes seconds on a shared machine);
    // the spawned command's exit code is checked once below. The database is not even
    // reachable: a usage error never needs it.
    const refused = ['--database-url', 'postgres://nobody@127.0.0.1:1/none'];
    const [results, spawned] = await Promise.all([
      Promise.all(cases.map(([args]) => runInProcess([...args, ...refused]))),
      runCli(['cancel', ...refused]),
    ]);
    cases.forEach(([args, message], i) => {
      const { code, stderr } = results[i]!;
      expect(code, `${args.join(' ')}: ${stderr}`).toBe(2);
      expect(stderr, args.join(' ')).toContain(message);
      expect(stderr, args.join(' ')).toContain(`Run 'rhythm ${args[0]} --help' for usage.`);
    });
    expect(spawned.code).toBe(2);
    expect(spawned.stderr).toContain('missing what to cancel');
  });

  it('a schema that was never migrated is a runtime error naming rhythm migrate (exit 1)', async () => {
    const res = await runCli(['list', '--database-url', db.url, '--schema', 'never_migrated']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('rhythm migrate');
  });
});
