/**
 * Horizontal scaling: four `rhythm worker` processes on one queue share 10,000 tasks through
 * SKIP LOCKED claims. Each run of the task handler appends a line to a log file of its own
 * process and thread (test/fixtures/cli-tasks/record.js), so a task run twice, or never,
 * shows up as a count that is off, whatever the executions table says.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Rhythm } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import { spawnCli, killAll, removeScratch, newDir, TASKS_DIR } from './fixtures/cli-tasks/harness/cli.js';

const TASKS = 10_000;
const WORKERS = 4;

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Rhythm | undefined;
let listener: pg.Client | undefined;

beforeAll(async () => {
  db = await createTestDatabase('rhythm_cli_scale');
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await listener?.end();
  await r?.shutdown();
  await db?.drop();
  removeScratch();
});

describe('four worker processes on one queue', () => {
  it('finish 10,000 tasks, each exactly once, shared between all four', { timeout: 120_000 }, async () => {
    r = await Rhythm.init({ databaseUrl: db.url, schema: 'scale' });
    const runsDir = newDir('runs');

    const workers = Array.from({ length: WORKERS }, () =>
      spawnCli(
        [
          'worker',
          '--database-url',
          db.url,
          '--schema',
          'scale',
          '--tasks',
          TASKS_DIR,
          '--only',
          'record',
          '--queue',
          'bulk:1',
          '--pool-size',
          '4',
          '--log-level',
          'info',
        ],
        { env: { CLI_TEST_RUNS_DIR: runsDir } },
      ),
    );
    await Promise.all(workers.map((w) => w.waitForLog('worker started', (e) => e.queue === 'bulk')));

    // Completions are announced on the schema's done channel: count them as they come.
    listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    const settled = new Set<string>();
    let allSettled!: () => void;
    const everyTaskSettled = new Promise<void>((resolve) => (allSettled = resolve));
    listener.on('notification', (n) => {
      if (n.channel !== r!.names.doneChannel) return;
      for (const id of n.payload!.split(',')) settled.add(id);
      if (settled.size === TASKS) allSettled();
    });
    await listener.query(`LISTEN "${r.names.doneChannel}"`);

    const ids = await r.enqueueMany(Array.from({ length: TASKS }, (_, i) => ({ name: 'record', payload: i, options: { queue: 'bulk' } })));
    expect(ids).toHaveLength(TASKS);
    await everyTaskSettled;

    // What the handlers wrote: one line per run, in a file per process and thread.
    const runs: { id: string; attempt: string; pid: number }[] = [];
    for (const file of readdirSync(runsDir)) {
      const pid = Number(file.split('-')[0]);
      for (const line of readFileSync(path.join(runsDir, file), 'utf8').split('\n')) {
        if (line === '') continue;
        const [id, attempt] = line.split(' ');
        runs.push({ id: id!, attempt: attempt!, pid });
      }
    }
    expect(runs).toHaveLength(TASKS);
    expect(new Set(runs.map((x) => x.id)).size).toBe(TASKS);
    expect(runs.every((x) => x.attempt === '1')).toBe(true);
    expect(new Set(runs.map((x) => x.id))).toEqual(new Set(ids));
    const history = await r.pool.query<{ status: string; attempts: number; n: number }>(
      `SELECT status, attempts, count(*)::int AS n FROM ${r.names.executions} GROUP BY 1, 2`,
    );
    expect(history.rows).toEqual([{ status: 'completed', attempts: 1, n: TASKS }]);
    const leftovers = await r.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${r.names.workQueue}`);
    expect(leftovers.rows[0]!.n).toBe(0);

    // Every process took a share, and only these four ran anything.
    const perPid = new Map<number, number>();
    for (const x of runs) perPid.set(x.pid, (perPid.get(x.pid) ?? 0) + 1);
    expect([...perPid.keys()].sort()).toEqual(workers.map((w) => w.pid).sort());
    for (const n of perPid.values()) expect(n).toBeGreaterThan(0);

    const exits = await Promise.all(workers.map((w) => w.stop('SIGTERM')));
    for (const e of exits) expect(e).toEqual({ code: 0, signal: null });
  });
});
