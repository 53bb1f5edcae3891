/**
 * The order workflow exactly as README.md and docs/workflows.md print it (the two must stay
 * the same script), run end to end: parallel reservations, a charge on another queue, the
 * approval race of Signal.next and Timer.delay, a child workflow, and the catch that
 * compensates a declined charge or a failed child. Only the timer's 3600 s is made 0.3 s, in a
 * copy, for the case where the timer wins. Then `npm run demo:workflows` (the built demo) runs
 * against this test's database (a schema of its own) and prints its three orders.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { type Rhythm, Worker } from 'rhythm';
import { freshRhythm, type TestDatabase } from './helpers.js';
import { cliEnv } from './fixtures/cli-tasks/harness/cli.js';

const root = new URL('../', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, root), 'utf8');

/** The first ```js block after `heading` in a Markdown file. */
function exampleAfter(markdown: string, heading: string): string {
  const from = markdown.indexOf(`\n${heading}\n`);
  expect(from, heading).toBeGreaterThan(-1);
  const block = /```js\n([\s\S]*?)```/.exec(markdown.slice(from));
  expect(block, `a js block after ${heading}`).not.toBeNull();
  return block![1]!;
}

const README_EXAMPLE = exampleAfter(read('README.md'), '## Workflows');
const DOCS_EXAMPLE = exampleAfter(read('docs/workflows.md'), '## Example');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rhythm-readme-flow-'));

let db: TestDatabase;
let r: Rhythm;
let running: Promise<unknown>;
const items = [
  { sku: 'tea', qty: 2 },
  { sku: 'mug', qty: 1 },
  { sku: 'pot', qty: 1 },
];

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  await r.startInternalWorker({ tickMs: 50 });
  const asPrinted = path.join(tmp, 'order.flow');
  writeFileSync(asPrinted, README_EXAMPLE);
  const shortTimer = README_EXAMPLE.replace('Timer.delay(3600)', 'Timer.delay(0.3)');
  expect(shortTimer).not.toBe(README_EXAMPLE);
  const quick = path.join(tmp, 'order-quick.flow');
  writeFileSync(quick, shortTimer);

  const io = new Worker(r, { queue: 'default', pollIntervalMs: 200 });
  io.task('reserve', (p: { sku: string; qty: number }) => ({ sku: p.sku, held: p.qty }));
  io.task('release', (p: { reserved: { sku: string }[]; reason: string }) => ({ released: p.reserved.map((x) => x.sku) }));
  io.task('label', (p: { orderId: number }) => {
    if (p.orderId === 13) throw new Error('no label for order 13');
    return { tracking: `T-${p.orderId}` };
  });
  io.workflow('order', asPrinted)
    .workflow('order-quick', quick)
    .workflow('ship', fileURLToPath(new URL('workflows/ship.flow', root)));
  const payments = new Worker(r, { queue: 'payments', pollIntervalMs: 200 });
  payments.task('charge', (p: { orderId: number; amount: number }) => {
    if (p.amount > 1_000) throw new Error(`card declined: ${p.amount}`);
    return { id: `ch_${p.orderId}` };
  });
  running = Promise.all([io.start(), payments.start()]);
});

afterAll(async () => {
  await r?.shutdown({ timeoutMs: 1_000 });
  await running;
  await db?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

async function children(id: string): Promise<string[]> {
  const res = await r.pool.query(`SELECT kind, name, queue, status FROM ${r.names.executions} WHERE parent_id = $1 ORDER BY parent_seq`, [
    id,
  ]);
  return res.rows.map((c) => `${c.kind === 'workflow' ? 'workflow ' : ''}${c.name}@${c.queue}:${c.status}`);
}

describe('the README workflow example', () => {
  it('is the same script in README.md and docs/workflows.md', () => {
    expect(README_EXAMPLE).toBe(DOCS_EXAMPLE);
    expect(README_EXAMPLE).toContain('Promise.race([Signal.next("approve"), Timer.delay(3600)])');
  });

  it('ships an order approved by a signal, through the child workflow', async () => {
    const id = await r.startWorkflow('order', { id: 7, items, total: 30 }, { queue: 'default' });
    await r.signal(id, 'approve', { by: 'ana' });
    const done = await r.wait(id, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ status: 'completed', result: { status: 'shipped', charge: 'ch_7' } });
    expect(await children(id)).toEqual([
      'reserve@default:completed',
      'reserve@default:completed',
      'reserve@default:completed',
      'charge@payments:completed',
      'workflow ship@default:completed',
    ]);
  });

  it('releases the reservations when the timer wins the race', async () => {
    const id = await r.startWorkflow('order-quick', { id: 8, items, total: 30 });
    const done = await r.wait(id, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ status: 'completed', result: { status: 'cancelled', reason: 'not approved within an hour' } });
    const kids = await children(id);
    expect(kids.at(-1)).toBe('release@default:completed');
    expect(kids).not.toContain('workflow ship@default:completed');
  });

  it('compensates a declined charge (thrown at its await after the retries)', async () => {
    const id = await r.startWorkflow('order', { id: 9, items, total: 5_000 });
    const done = await r.wait(id, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ status: 'completed', result: { status: 'cancelled', reason: 'card declined: 5000' } });
    expect((await children(id)).slice(3)).toEqual(['charge@payments:failed', 'release@default:completed']);
  });

  it('compensates a failed child workflow', async () => {
    const id = await r.startWorkflow('order', { id: 13, items, total: 30 });
    await r.signal(id, 'approve', { by: 'ana' });
    const done = await r.wait(id, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ status: 'completed', result: { status: 'cancelled', reason: 'no label for order 13' } });
    expect((await children(id)).slice(3)).toEqual([
      'charge@payments:completed',
      'workflow ship@default:failed',
      'release@default:completed',
    ]);
  });
});

describe('npm run demo:workflows', () => {
  it('runs its three orders to the outcomes it announces', { timeout: 120_000 }, async () => {
    const script = fileURLToPath(new URL('dist/src/demo/workflows.js', root));
    const child = spawn(process.execPath, [script], {
      env: cliEnv({ RHYTHM_DATABASE_URL: db.url, RHYTHM_SCHEMA: 'demo', RHYTHM_LOG_LEVEL: 'warn' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, `${out}\n${err}`).toBe(0);
    const results = new Map(
      [...out.matchAll(/^order \d+ \((.+)\): (\w+) (.*)$/gm)].map((m) => [m[1], { status: m[2], result: JSON.parse(m[3]!) }]),
    );
    expect(Object.fromEntries(results)).toEqual({
      approved: { status: 'completed', result: { status: 'shipped', charge: 'ch_7', approvedBy: 'ana' } },
      'not approved in 2 s': { status: 'completed', result: { status: 'cancelled', reason: 'not approved in time' } },
      'card declined': { status: 'completed', result: { status: 'cancelled', reason: 'card declined: 5000 is over the limit' } },
    });
    expect(out).toMatch(/children: reserve completed, reserve completed, charge completed, workflow ship completed/);
  });
});
