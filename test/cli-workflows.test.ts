/**
 * The workflow commands against a real schema, with the workflows served by workers in this
 * test's process: `rhythm start-workflow` (inputs as JSON or on stdin, --queue, --wait),
 * `rhythm signal`, and `rhythm get` showing a workflow's children and where it waits
 * (children, the signal name, the timer's due time), in text and JSON. Bad input exits 2
 * naming the problem; signalling a finished workflow exits 1. Most commands run in this
 * process (runInProcess: runCli with its own streams); each also runs at least once as the
 * shipped executable, a process of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, Worker, type Execution, type WorkflowDetails } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import { runCli, runInProcess, killAll, removeScratch } from './fixtures/cli-tasks/harness/cli.js';

const FLOWS = new URL('./fixtures/workflows/', import.meta.url);
const items = [
  { sku: 'tea', qty: 2 },
  { sku: 'mug', qty: 1 },
];

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Rhythm;
let conn: string[];
let running: Promise<unknown>;

beforeAll(async () => {
  db = await createTestDatabase('rhythm_cli_workflows');
  conn = ['--database-url', db.url, '--schema', 'cw'];
  r = await Rhythm.init({ databaseUrl: db.url, schema: 'cw', retryBackoff: { baseMs: 20, maxMs: 100 } });
  await r.startInternalWorker({ tickMs: 50 });
  const io = new Worker(r, { queue: 'default', pollIntervalMs: 200 });
  io.task('reserve', (p: { sku: string; qty: number }) => ({ sku: p.sku, held: p.qty }));
  io.task('release', (p: { reserved: unknown[] }) => ({ released: p.reserved.length }));
  io.task('label', (p: { orderId: number }) => ({ tracking: `T-${p.orderId}` }));
  io.task('plain', () => 'done');
  io.workflows(FLOWS);
  const orders = new Worker(r, { queue: 'orders', pollIntervalMs: 200 });
  orders.task('reserve', (p: { sku: string; qty: number }) => ({ sku: p.sku, held: p.qty }));
  orders.task('release', (p: { reserved: unknown[] }) => ({ released: p.reserved.length }));
  orders.task('label', (p: { orderId: number }) => ({ tracking: `T-${p.orderId}` }));
  orders.workflows(FLOWS);
  const payments = new Worker(r, { queue: 'payments', pollIntervalMs: 200 });
  payments.task('charge', (p: { orderId: number; amount: number }) => {
    if (p.amount < 0) throw new Error(`card declined for order ${p.orderId}`);
    return { id: `ch_${p.orderId}` };
  });
  // Runs the workflows of its queue, but none of their tasks: they wait in the queue.
  const flowsOnly = new Worker(r, { queue: 'flows-only', pollIntervalMs: 200 });
  flowsOnly.workflows(FLOWS);
  running = Promise.all([io.start(), orders.start(), payments.start(), flowsOnly.start()]);
});

afterAll(async () => {
  await killAll();
  await r?.shutdown({ timeoutMs: 1_000 });
  await running;
  await db?.drop();
  removeScratch();
});

type Shown = Execution & { workflow?: WorkflowDetails };

async function getJson(id: string): Promise<Shown> {
  const res = await runInProcess(['get', ...conn, id, '--json']);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as Shown;
}

describe('rhythm start-workflow, signal and get', () => {
  it('starts an order, shows its children and the signal and timer it waits for, and signals it to completion', async () => {
    const started = await runCli(['start-workflow', ...conn, 'order', JSON.stringify({ id: 7, items, total: 30 }), '--queue', 'orders']);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    expect(id).toMatch(/^\d+$/);

    // The race of Signal.next("approve") and Timer.delay(3600), once the charge is done.
    await expect
      .poll(
        async () => {
          const e = await getJson(id);
          return e.status === 'scheduled' && e.workflow!.waitingOn.signals.length > 0;
        },
        { timeout: 20_000 },
      )
      .toBe(true);
    const waiting = await getJson(id);
    expect(waiting).toMatchObject({ kind: 'workflow', name: 'order', queue: 'orders' });
    const w = waiting.workflow!;
    expect(w.children.map((c) => `${c.seq}:${c.kind}:${c.name}:${c.queue}:${c.status}`)).toEqual([
      '1:task:reserve:orders:completed',
      '2:task:reserve:orders:completed',
      '3:task:charge:payments:completed',
    ]);
    expect(w.waitingOn).toMatchObject({ mode: 'any', children: [], signals: ['approve'] });
    const due = Date.parse(String(w.waitingOn.wakeAt));
    expect(due - Date.parse(String(waiting.createdAt))).toBeGreaterThan(3_500_000);

    const text = await runCli(['get', ...conn, id]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^kind\s+workflow$/m);
    expect(text.stdout).toMatch(/^children\s*$/m);
    expect(text.stdout).toMatch(/^\s+SEQ\s+ID\s+KIND\s+NAME\s+QUEUE\s+STATUS$/m);
    expect(text.stdout).toMatch(new RegExp(`^\\s+3\\s+${w.children[2]!.id}\\s+task\\s+charge\\s+payments\\s+completed$`, 'm'));
    expect(text.stdout).toContain(`waits for the first of: signal "approve"; timer due ${new Date(due).toISOString()}`);

    const sent = await runCli(['signal', ...conn, id, 'approve', '-'], { stdin: '{"by": "cli"}' });
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout.trim()).toBe(`sent signal "approve" to workflow ${id}`);
    const done = await r.wait(id, { timeoutMs: 20_000 });
    expect(done).toMatchObject({ status: 'completed', result: { status: 'shipped', charge: 'ch_7', approvedBy: 'cli' } });

    const after = await getJson(id);
    expect(after.workflow!.children.at(-1)).toMatchObject({ seq: 6, kind: 'workflow', name: 'ship', queue: 'orders', status: 'completed' });
    const finished = await runInProcess(['get', ...conn, id]);
    expect(finished.stdout).toMatch(/^waits for\s+-$/m);
  });

  it('shows a workflow waiting for its children, and the signals it has not taken yet', async () => {
    const id = await r.startWorkflow('order', { id: 8, items, total: 30 }, { queue: 'flows-only' });
    await runInProcess(['signal', ...conn, id, 'approve', '{"by": "early"}']);
    await expect.poll(async () => (await getJson(id)).workflow!.waitingOn.children, { timeout: 20_000 }).toEqual([1, 2]);
    const shown = await getJson(id);
    expect(shown.status).toBe('scheduled');
    expect(shown.workflow!.waitingOn).toMatchObject({ mode: 'all', signals: [], wakeAt: null, pending: 2 });
    expect(shown.workflow!.signals.map((s) => s.name)).toEqual(['approve']);
    const [a, b] = shown.workflow!.children;
    const text = await runInProcess(['get', ...conn, id]);
    expect(text.stdout).toContain(`waits for all of: task reserve (id ${a!.id}, queued); task reserve (id ${b!.id}, queued)`);
    expect(text.stdout).toMatch(/^signals\s+not taken yet: "approve" \(sent \S+\)$/m);
    await r.cancel(id);
  });

  it('--wait prints the finished workflow; the timer wins the race when no approval comes', async () => {
    const [res, failed] = await Promise.all([
      runInProcess(['start-workflow', ...conn, 'order', '-', '--wait', '--json', '--wait-timeout', '30s'], {
        stdin: JSON.stringify({ id: 9, items, total: 30, approvalSeconds: 0.2 }),
      }),
      runInProcess(['start-workflow', ...conn, 'order', JSON.stringify({ id: 10, items, total: -1 }), '--wait']),
    ]);
    expect(res.code, res.stderr).toBe(0);
    const e = JSON.parse(res.stdout) as Execution;
    expect(e).toMatchObject({
      kind: 'workflow',
      status: 'completed',
      result: { status: 'cancelled', reason: 'not approved within an hour' },
    });
    expect(e.queue).toBe('default');

    expect(failed.code, failed.stderr).toBe(0); // the declined card is caught and compensated
    expect(failed.stdout).toMatch(/^status\s+completed$/m);
    expect(failed.stdout).toContain('card declined for order 10');
  });

  it('bad input exits 2 naming the problem; a finished workflow cannot be signalled (exit 1)', async () => {
    const task = await r.enqueue('plain', null);
    const finished = await r.startWorkflow('order', { id: 11, items, total: -1 });
    await r.waitMany([task, finished], { timeoutMs: 20_000 });
    const cases: [string[], number, RegExp][] = [
      [['start-workflow', ...conn, 'no-such-flow'], 2, /unknown workflow "no-such-flow": no worker has registered it/],
      [['start-workflow', ...conn, 'order', '{"id": 1,'], 2, /the inputs.*(JSON|position|line)/i],
      [['start-workflow', ...conn], 2, /missing the workflow name: rhythm start-workflow <name> \[inputs-json\]/],
      [['start-workflow', ...conn, 'order', '{}', '--queue', 'bad queue!'], 2, /--queue.*"bad queue!"/],
      [['start-workflow', ...conn, 'order', '{}', '--wait-timeout', '1s'], 2, /--wait-timeout goes with --wait/],
      [['signal', ...conn, task, 'approve'], 2, new RegExp(`cannot signal execution ${task}: it is a task`)],
      [['signal', ...conn, '999999', 'approve'], 2, /cannot signal execution 999999: there is no such execution/],
      [['signal', ...conn, finished, 'approve'], 1, new RegExp(`cannot signal workflow ${finished}: it is already completed`)],
      [['signal', ...conn, finished], 2, /missing the signal name: rhythm signal <id> <name> \[payload-json\]/],
      [['signal', ...conn, 'abc', 'approve'], 2, /invalid execution id "abc"/],
      [['signal', ...conn, finished, 'approve', 'nope'], 2, /the payload/],
    ];
    const results = await Promise.all(cases.map(([args]) => runInProcess(args)));
    cases.forEach(([args, code, message], j) => {
      expect(results[j]!.code, `${args.join(' ')}\n${results[j]!.stderr}`).toBe(code);
      expect(results[j]!.stderr).toMatch(message);
    });
    // A task's get has no workflow part.
    const [plain, plainJson] = await Promise.all([runInProcess(['get', ...conn, task]), runInProcess(['get', ...conn, task, '--json'])]);
    expect(plain.stdout).not.toMatch(/^children/m);
    expect(JSON.parse(plainJson.stdout)).not.toHaveProperty('workflow');
  });
});
