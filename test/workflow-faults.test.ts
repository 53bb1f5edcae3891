/**
 * Workflows through crashes, restarts, stale workers and edited files: a worker process
 * SIGKILLed between two awaits and inside an activation before its commit, another worker
 * finishing the workflow with no child created twice and no finished step run again; a timer
 * surviving a full stop and restart; a stale worker's commit refused; a running workflow
 * keeping its source version while the file changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Rhythm, Worker } from 'rhythm';
import { claimTasks } from '../src/sql/claim.js';
import { recoverExpired } from '../src/sql/recover.js';
import { promoteDue } from '../src/sql/promote.js';
import { commitActivations } from '../src/sql/workflow-activation.js';
import { inTransaction } from '../src/db/transaction.js';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { installProbes, pollUntil, spawnWorker } from './fixtures/fault/harness.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rhythm-flow-faults-'));
function flow(name: string, source: string): string {
  const file = path.join(tmp, `${name}.flow`);
  writeFileSync(file, source);
  return file;
}

const STEPS = flow(
  'steps',
  `
  const x = Math.random();
  const out = [];
  for (let i = 0; i < 4; i++) {
    const r = await Task.run("record", { i, x, ms: 150 });
    out.push(r.by);
  }
  return { out, x };
`,
);
const TWO = flow(
  'two',
  `
  const a = await Task.run("record", { i: 0 });
  const b = await Task.run("record", { i: 1 });
  return [a.by, b.by];
`,
);

let db: TestDatabaseHandle;
let r: Rhythm;

beforeAll(async () => {
  db = await createMigratedTestDatabase('rhythm_flow_faults');
  r = await Rhythm.init({ databaseUrl: db.url, retryBackoff: { baseMs: 20, maxMs: 200 } });
  await installProbes(r.pool, r.names);
  // Registered on a worker of this instance (never started), so startWorkflow knows the names
  // before the worker processes have stored their sources.
  new Worker(r, { queue: 'wf' }).workflow('steps', STEPS).workflow('two', TWO);
});
afterAll(async () => {
  await r?.shutdown();
  await db?.drop();
});

const url = (app: string) => `${db.url}?application_name=${app}`;

/** The victim's database sessions are gone (a statement it sent before dying has finished). */
async function sessionsGone(app: string): Promise<void> {
  await pollUntil(
    async () => (await r.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [app])).rows[0].n === 0,
    `the ${app} sessions to end`,
    10_000,
    20,
  );
}

/** A worker in this process serving the same tasks and workflows, with the internal worker. */
async function survivor(flows: Record<string, string>): Promise<{ app: Rhythm; done: Promise<unknown> }> {
  const app = await Rhythm.init({ databaseUrl: url('survivor'), retryBackoff: { baseMs: 20, maxMs: 200 } });
  await app.startInternalWorker({ tickMs: 100 });
  const w = new Worker(app, { queue: 'wf', visibilityTimeoutMs: 1_000, workerId: 'survivor', pollIntervalMs: 200 });
  w.task('record', async (p: { ms?: number }, ctx) => {
    if (p.ms) await new Promise((res) => setTimeout(res, p.ms));
    await app.pool.query('INSERT INTO public.fault_runs (execution_id, attempt, pid, by) VALUES ($1, $2, $3, $4)', [
      ctx.id,
      ctx.attempt,
      process.pid,
      'survivor',
    ]);
    return { by: 'survivor' };
  });
  for (const [name, file] of Object.entries(flows)) w.workflow(name, file);
  return { app, done: w.start() };
}

/** Runs of the record task per child seq of a workflow. */
async function runsBySeq(id: string): Promise<Record<number, number>> {
  const res = await r.pool.query(
    `SELECT e.parent_seq AS seq, count(f.*)::int AS runs FROM ${r.names.executions} e
     LEFT JOIN public.fault_runs f ON f.execution_id = e.id WHERE e.parent_id = $1 GROUP BY 1 ORDER BY 1`,
    [id],
  );
  return Object.fromEntries(res.rows.map((row) => [row.seq, row.runs]));
}

describe('a worker killed mid-workflow', () => {
  it('between two awaits: another worker finishes it, no finished step runs again, Math.random() keeps its value', async () => {
    const victim = spawnWorker({
      databaseUrl: url('victim-a'),
      name: 'victim',
      tasks: ['record'],
      workflows: { steps: STEPS },
      worker: { queue: 'wf', visibilityTimeoutMs: 1_000, workerId: 'victim-a' },
    });
    let rescue: Awaited<ReturnType<typeof survivor>> | undefined;
    try {
      await victim.waitFor((m: { evt: string }) => m.evt === 'ready', 'victim ready');
      const id = await r.startWorkflow('steps', null, { queue: 'wf' });
      // Kill once two steps are completed: the workflow waits on the third task, which the victim holds.
      await pollUntil(
        async () =>
          (await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.executions} WHERE parent_id = $1 AND status = 'completed'`, [id]))
            .rows[0].n >= 2,
        'two steps to complete',
        30_000,
        20,
      );
      await victim.kill('SIGKILL');
      await sessionsGone('victim-a');

      rescue = await survivor({ steps: STEPS });
      const done = await r.wait(id, { timeoutMs: 30_000 });
      expect(done.status).toBe('completed');
      const result = done.result as { out: string[]; x: number };
      expect(result.out.slice(0, 2)).toEqual(['victim', 'victim']);
      expect(result.out[3]).toBe('survivor');
      // The random number drawn by the victim's first activation is the one the survivor returned.
      const first = await r.pool.query(`SELECT payload FROM ${r.names.executions} WHERE parent_id = $1 AND parent_seq = 1`, [id]);
      expect(first.rows[0].payload.x).toBe(result.x);
      const runs = await runsBySeq(id);
      expect(Object.keys(runs).map(Number)).toEqual([1, 2, 3, 4]);
      expect(runs[1]).toBe(1);
      expect(runs[2]).toBe(1);
      expect(runs[4]).toBe(1);
    } finally {
      await victim.kill('SIGKILL');
      await rescue?.app.shutdown();
      await rescue?.done;
    }
  });

  it('inside an activation before its commit: the activation runs again and starts its child once', async () => {
    const id = await r.startWorkflow('two', null, { queue: 'wf' });
    // Hold the key the second activation's child will take, in a transaction left open: its
    // insert waits for us, inside the activation's transaction, until the victim is killed.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query(
      `INSERT INTO ${r.names.executions} (name, queue, status, payload, parent_id, parent_seq) VALUES ('blocker', 'nowhere', 'completed', '{}', $1, 2)`,
      [id],
    );
    const victim = spawnWorker({
      databaseUrl: url('victim-b'),
      name: 'victim',
      tasks: ['record'],
      workflows: { two: TWO },
      worker: { queue: 'wf', visibilityTimeoutMs: 1_000, workerId: 'victim-b' },
    });
    let rescue: Awaited<ReturnType<typeof survivor>> | undefined;
    try {
      const blockerPid = (await blocker.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      await pollUntil(
        async () =>
          (
            await r.pool.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'victim-b' AND $1 = ANY (pg_blocking_pids(pid))`,
              [blockerPid],
            )
          ).rows[0].n > 0,
        'the second activation to wait inside its commit',
        30_000,
        20,
      );
      // Only the insert of the second child waits for the blocker: the first step is committed.
      const first = await r.pool.query(`SELECT status FROM ${r.names.executions} WHERE parent_id = $1 AND parent_seq = 1`, [id]);
      expect(first.rows[0].status).toBe('completed');
      await victim.kill('SIGKILL');
      // Its server session notices the dead client only when it answers: once the lock is
      // released, the insert completes, its reply fails, and the transaction is rolled back.
      await blocker.query('ROLLBACK');
      await sessionsGone('victim-b');

      rescue = await survivor({ two: TWO });
      const done = await r.wait(id, { timeoutMs: 30_000 });
      expect(done.result).toEqual(['victim', 'survivor']);
      expect(await runsBySeq(id)).toEqual({ 1: 1, 2: 1 });
    } finally {
      await victim.kill('SIGKILL');
      await blocker.end();
      await rescue?.app.shutdown();
      await rescue?.done;
    }
  });
});

describe('timers, stale workers and versions', () => {
  it('a timer survives a full stop and restart and fires no earlier than due', async () => {
    const file = flow('nap', 'const t0 = Date.now();\nawait Timer.delay(1.5);\nreturn Date.now() - t0;\n');
    const first = await Rhythm.init({ databaseUrl: db.url });
    const w1 = new Worker(first, { queue: 'nap' });
    w1.workflow('nap', file);
    const run1 = w1.start();
    const id = await first.startWorkflow('nap', null, { queue: 'nap' });
    await pollUntil(
      async () => (await r.pool.query(`SELECT 1 FROM ${r.names.scheduledQueue} WHERE execution_id = $1`, [id])).rowCount === 1,
      'the timer to be set',
    );
    await first.shutdown();
    await run1;

    const second = await Rhythm.init({ databaseUrl: db.url });
    try {
      await second.startInternalWorker({ tickMs: 100 });
      const w2 = new Worker(second, { queue: 'nap' });
      w2.workflow('nap', file);
      void w2.start();
      const done = await second.wait(id, { timeoutMs: 20_000 });
      expect(done.status).toBe('completed');
      expect(done.result).toBeGreaterThanOrEqual(1_500);
    } finally {
      await second.shutdown();
    }
  });

  it("refuses a stale worker's commit: nothing it started is created", async () => {
    const file = flow('stale', 'await Task.run("record", { i: 0 });\nreturn 1;\n');
    const app = await Rhythm.init({ databaseUrl: db.url, retryBackoff: { baseMs: 1, maxMs: 1 } });
    try {
      const w = new Worker(app, { queue: 'stale' });
      w.workflow('stale', file);
      const id = await app.startWorkflow('stale', null, { queue: 'stale' });
      const [old] = await claimTasks(app.pool, app.names, 'stale', ['stale'], 10, 'old', 1_000);
      expect(old!.id).toBe(id);
      // Its lease expires and is recovered; a second worker claims the workflow.
      await app.pool.query(`UPDATE ${app.names.workQueue} SET claimed_until = now() - interval '1 second' WHERE execution_id = $1`, [id]);
      expect((await recoverExpired(app.pool, app.names, 10, app.backoff)).map((x: { id: string }) => x.id)).toEqual([id]);
      await pollUntil(async () => (await promoteDue(app.pool, app.names, 10)) === 1, 'the retry to be due', 5_000, 5);
      const [fresh] = await claimTasks(app.pool, app.names, 'stale', ['stale'], 10, 'new', 1_000);
      expect(fresh!.leaseToken).not.toBe(old!.leaseToken);

      const write = (leaseToken: string) => ({
        id,
        leaseToken,
        flowHash: 'h',
        children: [
          {
            parentId: id,
            seq: 1,
            kind: 'task' as const,
            name: 'record',
            queue: 'stale',
            payloadJson: '{}',
            priority: 0,
            maxAttempts: 1,
            timeoutMs: null,
            leaseMs: null,
            delayMs: null,
          },
        ],
        consumed: [],
        outcome: {
          status: 'suspended' as const,
          stateJson: '{"stale": true}',
          mode: 'all' as const,
          children: [1],
          signals: [],
          wakeAt: null,
        },
      });
      const staleCommit = await inTransaction(app.pool, (c: pg.PoolClient) =>
        commitActivations(c, app.names, [write(old!.leaseToken)], app.backoff),
      );
      expect(staleCommit.written.size).toBe(0);
      expect((await app.pool.query(`SELECT count(*)::int AS n FROM ${app.names.executions} WHERE parent_id = $1`, [id])).rows[0].n).toBe(0);
      const st = await app.pool.query(`SELECT state, activations FROM ${app.names.workflows} WHERE execution_id = $1`, [id]);
      expect(st.rows[0]).toEqual({ state: null, activations: 0 });

      const freshCommit = await inTransaction(app.pool, (c: pg.PoolClient) =>
        commitActivations(c, app.names, [write(fresh!.leaseToken)], app.backoff),
      );
      expect([...freshCommit.written]).toEqual([id]);
      expect((await app.pool.query(`SELECT count(*)::int AS n FROM ${app.names.executions} WHERE parent_id = $1`, [id])).rows[0].n).toBe(1);
    } finally {
      await app.shutdown();
    }
  });

  it('resumes a running workflow on the version it started on after its file changed', async () => {
    const file = path.join(tmp, 'pinned.flow');
    writeFileSync(file, 'const s = await Signal.next("go");\nreturn "v1:" + s;\n');
    const first = await Rhythm.init({ databaseUrl: db.url });
    const w1 = new Worker(first, { queue: 'pin' });
    w1.workflow('pinned', file);
    const run1 = w1.start();
    const old = await first.startWorkflow('pinned', null, { queue: 'pin' });
    await pollUntil(
      async () =>
        (await r.pool.query(`SELECT 1 FROM ${r.names.workflows} WHERE execution_id = $1 AND 'go' = ANY (wait_signals)`, [old])).rowCount ===
        1,
      'v1 to wait',
    );
    await first.shutdown();
    await run1;

    writeFileSync(file, '// edited\nconst s = await Signal.next("go");\nreturn "v2:" + s;\n');
    const second = await Rhythm.init({ databaseUrl: db.url });
    try {
      const w2 = new Worker(second, { queue: 'pin' });
      w2.workflow('pinned', file);
      void w2.start();
      const fresh = await second.startWorkflow('pinned', null, { queue: 'pin' });
      await second.signal(old, 'go', 'a');
      await second.signal(fresh, 'go', 'b');
      expect((await second.wait(old, { timeoutMs: 20_000 })).result).toBe('v1:a');
      expect((await second.wait(fresh, { timeoutMs: 20_000 })).result).toBe('v2:b');
      const versions = await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.workflowSources} WHERE name = 'pinned'`);
      expect(versions.rows[0].n).toBe(2);
    } finally {
      await second.shutdown();
    }
  });
});
