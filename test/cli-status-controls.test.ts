/**
 * `rhythm status` (a process of its own) shows the controls in force, as every other process
 * sees them: a paused queue, a rate-limited queue with the starts it has left, and a group
 * running as many executions as its limit allows on a worker in this test's process. The
 * --json reports are read in this process (runInProcess: runCli with its own streams).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Rhythm, Worker } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import { deferred } from './helpers.js';
import { runCli, runInProcess, killAll, removeScratch } from './fixtures/cli-tasks/harness/cli.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Rhythm;
let conn: string[];
let running: Promise<void>;
const release = deferred();
const started = deferred<string>();

beforeAll(async () => {
  db = await createTestDatabase('rhythm_cli_status_controls');
  conn = ['--database-url', db.url, '--schema', 'sc'];
  r = await Rhythm.init({ databaseUrl: db.url, schema: 'sc' });
  const w = new Worker(r, { queue: 'tenants', groupConcurrency: 1, pollIntervalMs: 200 }).task('hold', async (_p, ctx) => {
    started.resolve(ctx.id);
    await release.promise;
    return 'released';
  });
  running = w.start();
});

afterAll(async () => {
  release.resolve();
  await killAll();
  await r?.shutdown({ timeoutMs: 1_000 });
  await running;
  await db?.drop();
  removeScratch();
});

it('shows paused and rate-limited queues and the groups at their limit, in text and JSON', async () => {
  const first = await r.enqueue('hold', 1, { queue: 'tenants', group: 'acme' });
  const second = await r.enqueue('hold', 2, { queue: 'tenants', group: 'acme' });
  expect(await started.promise).toBe(first);
  await r.pause('emails');
  await r.setRateLimit('reports', { max: 30, intervalMs: 60_000 });

  const [json, text] = await Promise.all([runInProcess(['status', ...conn, '--json']), runCli(['status', ...conn])]);
  expect(json.code, json.stderr).toBe(0);
  const report = JSON.parse(json.stdout);
  expect(report.controls.groupsAtLimit).toEqual([{ queue: 'tenants', group: 'acme', running: 1, limit: 1 }]);
  expect(report.controls.queues).toEqual([
    expect.objectContaining({ queue: 'emails', paused: true, rateLimit: null }),
    expect.objectContaining({ queue: 'reports', paused: false, rateLimit: { max: 30, intervalMs: 60_000 }, availableStarts: 30 }),
  ]);

  expect(text.code, text.stderr).toBe(0);
  const lines = text.stdout.split('\n');
  expect(lines.find((l) => l.startsWith('emails'))).toMatch(/^emails\s+paused since \S+\s+-\s+-$/);
  expect(lines.find((l) => l.startsWith('reports'))).toMatch(/^reports\s+running\s+30 per 1m\s+30$/);
  const groups = lines.indexOf('Groups at their limit:');
  expect(groups).toBeGreaterThan(-1);
  expect(lines[groups + 1]).toMatch(/^QUEUE\s+GROUP\s+RUNNING\s+LIMIT$/);
  expect(lines[groups + 2]).toMatch(/^tenants\s+acme\s+1\s+1$/);

  // The second of the group waits for the slot until the first gives it back.
  expect((await r.get(second))!.status).toBe('queued');
  release.resolve();
  expect((await r.waitMany([first, second], { timeoutMs: 20_000 })).map((e) => e.status)).toEqual(['completed', 'completed']);
  const after = JSON.parse((await runInProcess(['status', ...conn, '--json'])).stdout);
  expect(after.controls.groupsAtLimit).toEqual([]);
});
