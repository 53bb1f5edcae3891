/**
 * `npm run demo:workflows`: the order workflow of the README, end to end. Three orders: one
 * approved by a signal, one whose approval window (2 s) runs out, one whose card is declined
 * (the task fails after its retries and the workflow compensates). Uses the embedded Postgres
 * unless a database URL is configured, like `npm start`.
 */
import { pino } from 'pino';
import { Rhythm, Worker } from '../index.js';
import { openDatabase } from '../db/local.js';
import { maskUrl } from '../logger.js';
import { packageUrl } from '../package-root.js';

const FLOWS = packageUrl('workflows/');

async function main(): Promise<void> {
  const db = await openDatabase();
  console.log(db.embedded ? `Postgres: embedded server, data in ${db.embedded.dataDir}` : `Postgres: ${maskUrl(db.url)}`);
  const logger = pino({ name: 'rhythm', level: process.env.RHYTHM_LOG_LEVEL ?? 'warn' });
  const r = await Rhythm.init({ databaseUrl: db.url, logger, retryBackoff: { baseMs: 100, maxMs: 500 } });
  await r.startInternalWorker({ tickMs: 200 });

  const io = new Worker(r, { queue: 'default' });
  io.task('reserve', (p: { sku: string; qty: number }) => ({ sku: p.sku, held: p.qty }));
  io.task('release', (p: { reserved: unknown[]; reason: string }) => ({ released: p.reserved.length }));
  io.task('label', (p: { orderId: number }) => ({ tracking: `TRK-${p.orderId}` }));
  io.workflows(FLOWS); // order.flow and ship.flow, compiled now
  const payments = new Worker(r, { queue: 'payments' });
  payments.task('charge', (p: { orderId: number; amount: number }) => {
    if (p.amount > 1_000) throw new Error(`card declined: ${p.amount} is over the limit`);
    return { id: `ch_${p.orderId}` };
  });
  const workers = Promise.all([io.start(), payments.start()]);

  const items = [
    { sku: 'tea', qty: 2 },
    { sku: 'mug', qty: 1 },
  ];
  const approved = await r.startWorkflow('order', { id: 7, items, total: 30 });
  const timedOut = await r.startWorkflow('order', { id: 8, items, total: 30, approvalSeconds: 2 });
  const declined = await r.startWorkflow('order', { id: 9, items, total: 5_000 });
  await r.signal(approved, 'approve', { by: 'ana' }); // kept until the workflow waits for it

  for (const [what, id] of [
    ['approved', approved],
    ['not approved in 2 s', timedOut],
    ['card declined', declined],
  ] as const) {
    const done = await r.wait(id, { timeoutMs: 30_000 });
    // Its children: the executions created since it started whose parent it is (public list API).
    const page = await r.list({ since: done.createdAt, limit: 1_000 });
    const children = page.items.filter((c) => c.parentId === id).sort((a, b) => Number(BigInt(a.id) - BigInt(b.id)));
    console.log(`\norder ${id} (${what}): ${done.status} ${JSON.stringify(done.result)}`);
    console.log(`  children: ${children.map((c) => `${c.kind === 'workflow' ? 'workflow ' : ''}${c.name} ${c.status}`).join(', ')}`);
  }

  await r.shutdown();
  await workers;
  await db.embedded?.stop();
}

main().catch((err) => {
  console.error(`demo:workflows: ${(err as Error)?.message ?? String(err)}`);
  if (process.env.RHYTHM_DEBUG) console.error((err as Error)?.stack);
  process.exit(1);
});
