/**
 * Workflows on the runtime, end to end on a real Postgres: the order workflow of
 * docs/workflows.md (parallel tasks, a task on another queue, a signal racing a timer, a child
 * workflow, a failed task caught and compensated), signals sent before the wait, cascading
 * cancellation, many workflows at once, and the errors bad input gets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Rhythm, Worker, FlowSyntaxError, RhythmValidationError, RhythmError } from 'rhythm';
import { workflowDetails } from '../src/sql/workflow-details.js';
import { count, deferred, freshRhythm, until, type TestDatabase } from './helpers.js';

const FLOWS = new URL('./fixtures/workflows/', import.meta.url);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rhythm-flows-'));
/** Writes a .flow file for one test and returns its path. */
function flow(name: string, source: string): string {
  const file = path.join(tmp, `${name}.flow`);
  writeFileSync(file, source);
  return file;
}

let db: TestDatabase;
let r: Rhythm;
let io: Worker;
let payments: Worker;
let cpu: Worker;
let running: Promise<unknown>;
const runs = new Map<string, number>();
const ran = (name: string) => runs.set(name, (runs.get(name) ?? 0) + 1);
/** Tasks that block until released (by key), to hold a workflow at a known point. */
const gates = new Map<string, { promise: Promise<void>; resolve: () => void }>();
const gate = (key: string) => {
  let g = gates.get(key);
  if (!g) gates.set(key, (g = deferred()));
  return g;
};
const aborted: string[] = [];
let flakyFails = true;

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  await r.startInternalWorker({ tickMs: 50 });
  io = new Worker(r, { queue: 'default', pollIntervalMs: 200 });
  io.task('reserve', (p: { sku: string; qty: number }) => {
    ran('reserve');
    return { sku: p.sku, held: p.qty };
  });
  io.task('release', (p) => {
    ran('release');
    return { released: p.reserved.length, reason: p.reason };
  });
  io.task('label', (p: { orderId: number }) => {
    ran('label');
    if (p.orderId === 13) return { fail: true };
    return { tracking: `T-${p.orderId}` };
  });
  io.task('echo', (p) => {
    ran('echo');
    return p;
  });
  io.task('flaky', () => {
    ran('flaky');
    if (flakyFails) throw new Error('flaky is down');
    return { up: true };
  });
  io.task('boom', () => {
    ran('boom');
    throw new Error('boom went the task');
  });
  io.task('hold', async (p: { key: string }, ctx) => {
    ran('hold');
    const g = gate(p.key);
    await Promise.race([
      g.promise,
      new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => {
          aborted.push(p.key);
          reject(ctx.signal.reason);
        }),
      ),
    ]);
    return { key: p.key };
  });
  io.workflows(FLOWS);
  io.workflow(
    'sequence',
    flow(
      'sequence',
      `
    let total = 0;
    for (const n of Inputs.numbers) {
      const r = await Task.run("echo", { n });
      total += r.n;
    }
    return { total, at: Context.executionId };
  `,
    ),
  );
  io.workflow(
    'fanout',
    flow(
      'fanout',
      `
    const results = await Promise.all(Inputs.map(i => Task.run("echo", { i })));
    return results.map(r => r.i).reduce((a, b) => a + b, 0);
  `,
    ),
  );
  io.workflow(
    'inbox',
    flow(
      'inbox',
      `
    const a = await Signal.next("msg");
    const b = await Signal.next("msg");
    const c = await Signal.next("other");
    return [a, b, c];
  `,
    ),
  );
  io.workflow(
    'retryable',
    flow(
      'retryable',
      `
    const before = await Task.run("echo", { step: 1 });
    const r = await Task.run("flaky", {}, { maxAttempts: 1 });
    return { before: before.step, r };
  `,
    ),
  );
  io.workflow(
    'backlog',
    flow(
      'backlog',
      `
    const x = await Signal.next("wanted");
    return x;
  `,
    ),
  );
  io.workflow(
    'parent',
    flow(
      'parent',
      `
    const h = Task.run("hold", { key: Inputs.key });
    const child = Workflow.run("waiter", {});
    try {
      await Promise.all([h, child]);
      return "finished";
    } catch (e) {
      return { caught: e.name, message: e.message };
    }
  `,
    ),
  );
  io.workflow(
    'waiter',
    flow(
      'waiter',
      `
    const s = await Signal.next("never");
    return s;
  `,
    ),
  );
  io.workflow(
    'catch-child',
    flow(
      'catch-child',
      `
    try {
      await Workflow.run("ship", { orderId: 13 });
      return "shipped";
    } catch (e) {
      return { name: e.name, message: e.message, workflow: e.workflow, child: typeof e.executionId };
    }
  `,
    ),
  );
  io.workflow(
    'unknown-child',
    flow(
      'unknown-child',
      `
    try { await Workflow.run("no-such-flow", {}); } catch (e) { return e.name + ": " + e.message; }
  `,
    ),
  );
  io.workflow(
    'uncaught',
    flow(
      'uncaught',
      `
    await Task.run("boom", {}, { maxAttempts: 2 });
    return "never";
  `,
    ),
  );
  io.workflow(
    'endless',
    flow(
      'endless',
      `
    let n = 0;
    while (true) { n++; }
  `,
    ),
  );
  io.workflow(
    'threaded',
    flow(
      'threaded',
      `
    const seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const results = await Promise.all(seeds.map(i => Task.run("sha256-chain", { seed: "s" + i, rounds: 5 }, { queue: "cpu" })));
    return results.map(r => r.digest.length);
  `,
    ),
  );
  cpu = new Worker(r, { queue: 'cpu', threads: 2 });
  cpu.task('sha256-chain', new URL('../tasks/sha256-chain.ts', import.meta.url));
  payments = new Worker(r, { queue: 'payments', pollIntervalMs: 200 });
  payments.task('charge', (p: { orderId: number; amount: number }) => {
    ran('charge');
    if (p.amount < 0) throw new Error(`card declined for order ${p.orderId}`);
    return { id: `ch_${p.orderId}` };
  });
  running = Promise.all([io.start(), payments.start(), cpu.start()]);
});

afterAll(async () => {
  for (const g of gates.values()) g.resolve();
  await r?.shutdown();
  await running;
  await db?.drop();
});

const items = [
  { sku: 'a', qty: 1 },
  { sku: 'b', qty: 2 },
  { sku: 'c', qty: 3 },
];

/** The children of a workflow, by call sequence. */
async function children(id: string): Promise<{ seq: number; kind: string; name: string; status: string }[]> {
  const res = await r.pool.query(
    `SELECT parent_seq AS seq, kind, name, status FROM ${r.names.executions} WHERE parent_id = $1 ORDER BY parent_seq`,
    [id],
  );
  return res.rows;
}

/** Waits until the workflow is parked waiting for a signal of this name. */
async function waitingForSignal(id: string, name: string): Promise<void> {
  await until(`workflow ${id} to wait for signal ${name}`, async () => {
    const res = await r.pool.query(
      `SELECT 1 FROM ${r.names.workflows} w JOIN ${r.names.executions} e ON e.id = w.execution_id
       WHERE w.execution_id = $1 AND $2 = ANY (w.wait_signals) AND e.status = 'scheduled'`,
      [id, name],
    );
    return res.rowCount === 1;
  });
}

describe('the order workflow', () => {
  it('reserves in parallel, charges on another queue, waits for approval, ships through a child workflow', async () => {
    const id = await r.startWorkflow('order', { id: 7, items, total: 30 }, { queue: 'default' });
    await waitingForSignal(id, 'approve');
    await r.signal(id, 'approve', { by: 'ana' });
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done).toMatchObject({
      kind: 'workflow',
      name: 'order',
      status: 'completed',
      result: { status: 'shipped', charge: 'ch_7', approvedBy: 'ana' },
    });
    const kids = await children(id);
    expect(kids).toEqual([
      { seq: 1, kind: 'task', name: 'reserve', status: 'completed' },
      { seq: 2, kind: 'task', name: 'reserve', status: 'completed' },
      { seq: 3, kind: 'task', name: 'reserve', status: 'completed' },
      { seq: 4, kind: 'task', name: 'charge', status: 'completed' },
      // seq 5 and 6 are the signal and the timer: calls, not children.
      { seq: 7, kind: 'workflow', name: 'ship', status: 'completed' },
    ]);
    const charge = await r.pool.query(`SELECT queue FROM ${r.names.executions} WHERE parent_id = $1 AND name = 'charge'`, [id]);
    expect(charge.rows[0].queue).toBe('payments');
    // The timer that lost the race left no scheduled row behind, and nothing is left queued.
    expect(await count(r, r.names.scheduledQueue, 'execution_id = $1', [id])).toBe(0);
    expect(await count(r, r.names.workQueue, 'execution_id = $1', [id])).toBe(0);
    expect(await count(r, r.names.workflowSignals, 'execution_id = $1', [id])).toBe(0);
    // The saved state is dropped once the workflow finished.
    const st = await r.pool.query(`SELECT state FROM ${r.names.workflows} WHERE execution_id = $1`, [id]);
    expect(st.rows[0].state).toBeNull();
  });

  it('cancels the order when the approval timer wins the race', async () => {
    const id = await r.startWorkflow('order', { id: 8, items, total: 30, approvalSeconds: 0.3 });
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.status).toBe('completed');
    expect(done.result).toEqual({ status: 'cancelled', reason: 'not approved within an hour' });
    const kids = await children(id);
    expect(kids.map((k) => k.name)).toEqual(['reserve', 'reserve', 'reserve', 'charge', 'release']);
    // No earlier than due: the workflow finished at least 300 ms after the charge did.
    const times = await r.pool.query(
      `SELECT extract(epoch FROM (SELECT finished_at FROM ${r.names.executions} WHERE id = $1)
                                - (SELECT finished_at FROM ${r.names.executions} WHERE parent_id = $1 AND name = 'charge')) * 1000 AS gap_ms`,
      [id],
    );
    expect(Number(times.rows[0].gap_ms)).toBeGreaterThanOrEqual(300);
  });

  it('takes a signal sent before the workflow waits for it', async () => {
    const id = await r.startWorkflow('order', { id: 9, items, total: 30 });
    await r.signal(id, 'approve', { by: 'early' });
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.result).toEqual({ status: 'shipped', charge: 'ch_9', approvedBy: 'early' });
  });

  it('catches a task that failed after its retries and compensates', async () => {
    const before = runs.get('charge') ?? 0;
    const id = await r.startWorkflow('order', { id: 10, items, total: -1 });
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.result).toEqual({ status: 'cancelled', reason: 'card declined for order 10' });
    expect((runs.get('charge') ?? 0) - before).toBe(3); // the default maxAttempts, then it threw into the script
    const kids = await children(id);
    expect(kids.map((k) => `${k.name}:${k.status}`)).toEqual([
      'reserve:completed',
      'reserve:completed',
      'reserve:completed',
      'charge:failed',
      'release:completed',
    ]);
  });

  it('throws a failed child workflow into the parent', async () => {
    const id = await r.startWorkflow('catch-child', {});
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.result).toEqual({ name: 'Error', message: 'no label for order 13', workflow: 'ship', child: 'string' });
  });
});

describe('workflow semantics on the runtime', () => {
  it('runs sequential tasks, one activation per await', async () => {
    const id = await r.startWorkflow('sequence', { numbers: [1, 2, 3, 4] });
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.result).toEqual({ total: 10, at: id });
    const w = await r.pool.query(`SELECT activations FROM ${r.names.workflows} WHERE execution_id = $1`, [id]);
    expect(w.rows[0].activations).toBe(5);
  });

  it('fans out with Promise.all and wakes once when the last child settles', async () => {
    const id = await r.startWorkflow(
      'fanout',
      Array.from({ length: 10 }, (_, i) => i),
    );
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.result).toBe(45);
    const w = await r.pool.query(`SELECT activations FROM ${r.names.workflows} WHERE execution_id = $1`, [id]);
    expect(w.rows[0].activations).toBeLessThanOrEqual(3);
  });

  it('delivers signals first in, first out, including those sent before the wait', async () => {
    const id = await r.startWorkflow('inbox', null);
    await r.signal(id, 'msg', 1);
    await r.signal(id, 'other', 'x');
    await r.signal(id, 'msg', 2);
    await r.signal(id, 'msg', 3);
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.result).toEqual([1, 2, 'x']);
    // The third "msg" was never taken: it stays until the workflow's history is pruned.
    const left = await r.pool.query(`SELECT payload FROM ${r.names.workflowSignals} WHERE execution_id = $1`, [id]);
    expect(left.rows).toEqual([{ payload: 3 }]);
  });

  it('finds the signal it waits for behind a backlog of others', async () => {
    const id = await r.startWorkflow('backlog', null);
    for (let i = 0; i < 150; i++) await r.signal(id, 'noise', i);
    await r.signal(id, 'wanted', 'yes');
    expect((await r.wait(id, { timeoutMs: 20_000 })).result).toBe('yes');
  });

  it('fails the workflow with an uncaught error from a failed task', async () => {
    const id = await r.startWorkflow('uncaught', {});
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ name: 'Error', message: 'boom went the task', task: 'boom' });
    expect((done.error as { location?: string }).location).toMatch(/^uncaught\.flow:2:/);
  });

  it('resumes a failed workflow with retry, from its last await, once its failed child was retried', async () => {
    const id = await r.startWorkflow('retryable', null);
    const failedRun = await r.wait(id, { timeoutMs: 20_000 });
    expect(failedRun.status).toBe('failed');
    expect(failedRun.error!.message).toBe('flaky is down');
    const child = (await r.pool.query(`SELECT id FROM ${r.names.executions} WHERE parent_id = $1 AND name = 'flaky'`, [id])).rows[0].id;
    flakyFails = false;
    const echoes = runs.get('echo');
    expect((await r.retry([child])).retried).toEqual([child]);
    expect((await r.wait(child, { timeoutMs: 20_000 })).status).toBe('completed');
    expect((await r.retry([id])).retried).toEqual([id]);
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done).toMatchObject({ status: 'completed', result: { before: 1, r: { up: true } } });
    expect(runs.get('echo')).toBe(echoes); // the first step did not run again
  });

  it('fails a child started with an unknown workflow name at its await', async () => {
    const id = await r.startWorkflow('unknown-child', {});
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.result).toMatch(/^UnknownWorkflowError: no worker has registered a workflow named "no-such-flow"/);
  });

  it('fans out 10 tasks to a thread pool on another queue', async () => {
    const id = await r.startWorkflow('threaded', null);
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.result).toEqual(Array(10).fill(64));
  });

  it('fails a workflow that loops without awaiting, at the step budget', async () => {
    const id = await r.startWorkflow('endless', null);
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ name: 'FlowStepLimitError' });
    expect(done.error!.message).toMatch(/ran 100000 steps without awaiting/);
  });

  it('runs 100 workflows at once', async () => {
    const ids = await Promise.all(Array.from({ length: 100 }, (_, i) => r.startWorkflow('fanout', [i, i, i])));
    const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 30_000 })));
    expect(done.map((d) => d.result)).toEqual(Array.from({ length: 100 }, (_, i) => 3 * i));
    expect(await count(r, r.names.executions, 'parent_id = ANY($1::bigint[])', [ids])).toBe(300);
  });
});

describe('cancellation', () => {
  it('cancels a workflow, its running task and its child workflow', async () => {
    const id = await r.startWorkflow('parent', { key: 'cascade' });
    await until('the task and the child to start', async () => (await children(id)).length === 2 && gates.has('cascade'));
    const childId = (await r.pool.query(`SELECT id FROM ${r.names.executions} WHERE parent_id = $1 AND parent_seq = 2`, [id])).rows[0].id;
    await waitingForSignal(childId, 'never');
    const [task, child] = await children(id);
    expect(task!.status).toBe('queued');
    expect(child!.status).toBe('scheduled');
    // Where it waits, as an inspection (the CLI's get) shows it.
    const details = await workflowDetails(r.pool, r.names, id);
    expect(details!.waitingOn).toMatchObject({ mode: 'all', children: [1, 2], signals: [], wakeAt: null, pending: 2 });
    expect(
      details!.children.map((c: { seq: number; kind: string; name: string; status: string }) => `${c.seq} ${c.kind} ${c.name} ${c.status}`),
    ).toEqual(['1 task hold running', '2 workflow waiter scheduled']);
    expect((await workflowDetails(r.pool, r.names, childId))!.waitingOn.signals).toEqual(['never']);
    expect(await workflowDetails(r.pool, r.names, await r.enqueue('echo', 1))).toBeNull();

    expect(await r.cancel(id)).toBe(true);
    const [wf, c] = await Promise.all([r.wait(id), r.wait(childId)]);
    expect(wf.status).toBe('cancelled');
    expect(c.status).toBe('cancelled');
    expect((await children(id)).map((k) => k.status)).toEqual(['cancelled', 'cancelled']);
    await until('the running task to see its abort', () => aborted.includes('cascade'));
    expect(await r.cancel(id)).toBe(false);
  });

  it('wakes a parent whose child was cancelled on its own: the await throws', async () => {
    const id = await r.startWorkflow('parent', { key: 'child-only' });
    await until('the task and the child to start', async () => (await children(id)).length === 2);
    const childId = (await r.pool.query(`SELECT id FROM ${r.names.executions} WHERE parent_id = $1 AND parent_seq = 2`, [id])).rows[0].id;
    expect(await r.cancel(childId)).toBe(true);
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done.result).toEqual({ caught: 'CancelledError', message: "workflow 'waiter' was cancelled" });
    gate('child-only').resolve();
  });
});

describe('bad input', () => {
  it('refuses an unknown workflow name at startWorkflow', async () => {
    await expect(r.startWorkflow('nope', {})).rejects.toThrow(RhythmValidationError);
    await expect(r.startWorkflow('nope', {})).rejects.toThrow(/unknown workflow "nope": no worker has registered it/);
  });

  it('refuses inputs that are not JSON, and bad names and options', async () => {
    await expect(r.startWorkflow('order', { f: () => 1 })).rejects.toThrow(/inputs\.f .*function/);
    await expect(r.startWorkflow('order', { n: NaN })).rejects.toThrow(RhythmValidationError);
    await expect(r.startWorkflow('', {})).rejects.toThrow(/workflow name must not be empty/);
    await expect(r.startWorkflow('order', {}, { queue: 'no spaces' })).rejects.toThrow(/invalid queue name/);
    await expect(r.startWorkflow('order', {}, { retries: 2 } as never)).rejects.toThrow(/unknown startWorkflow option "retries"/);
  });

  it('refuses signals to nothing, to tasks and to finished workflows', async () => {
    await expect(r.signal('999999', 'x')).rejects.toThrow(/there is no such execution/);
    const task = await r.enqueue('echo', {});
    await expect(r.signal(task, 'x')).rejects.toThrow(/it is a task/);
    const id = await r.startWorkflow('fanout', [1]);
    await r.wait(id, { timeoutMs: 20_000 });
    await expect(r.signal(id, 'x')).rejects.toThrow(RhythmError);
    await expect(r.signal(id, 'x')).rejects.toThrow(/already completed/);
    await expect(r.signal(id, 'x', { bad: undefined, f: Symbol('s') })).rejects.toThrow(RhythmValidationError);
  });

  it('refuses a .flow file that does not compile, listing every problem', () => {
    const w = new Worker(r);
    const file = flow('bad', 'var x = 1;\nfunction f() {}\nconst y = new Date();\n');
    let err: unknown;
    try {
      w.workflow('bad', file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FlowSyntaxError);
    expect(err).toBeInstanceOf(RhythmValidationError);
    const problems = (err as FlowSyntaxError).problems;
    expect(problems.length).toBe(3);
    expect((err as Error).message.split('\n').map((l) => l.split(': ')[0])).toEqual(['bad.flow:1:1', 'bad.flow:2:1', 'bad.flow:3:11']);
  });

  it('refuses a missing file, a name used twice, and a task name reused as a workflow', () => {
    const w = new Worker(r);
    expect(() => w.workflow('x', path.join(tmp, 'missing.flow'))).toThrow(/file not found/);
    w.task('t', () => 1);
    expect(() => w.workflow('t', flow('t', 'return 1;'))).toThrow(/already registered on this worker as a task/);
    w.workflow('ok', flow('ok', 'return 1;'));
    expect(() => w.workflow('ok', flow('ok', 'return 1;'))).toThrow(/already registered/);
    expect(() => w.task('ok', () => 1)).toThrow(/already registered on this worker as a workflow/);
  });
});
