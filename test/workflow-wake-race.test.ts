/**
 * A wake-up that arrives while an activation parks its workflow. The activation holds the
 * workflow's row lock while it commits the park; a child settling (here: cancelled) or a signal
 * sent at that moment waits for the lock, and must then wake the workflow it parked. The race
 * is staged step by step: a second connection plays the activation (locks the row, then parks
 * the workflow as a suspending activation does), and the test waits on pg_stat_activity until
 * the waker is blocked behind it, so both orders of the race are not left to chance.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Worker, type Rhythm } from 'rhythm';
import { freshRhythm, type TestDatabase } from './helpers.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rhythm-wake-race-'));
// The child runs on a queue nobody serves: it stays unfinished until the test cancels it.
writeFileSync(path.join(tmp, 'on-child.flow'), 'const x = await Task.run("child", {}, { queue: "nobody" });\nreturn x;\n');
writeFileSync(path.join(tmp, 'on-signal.flow'), 'const go = await Signal.next("go");\nreturn go;\n');

let db: TestDatabase;
let r: Rhythm;

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
});
afterAll(async () => {
  await r?.shutdown();
  await db?.drop();
});

/** Starts the workflow and runs its first activation, which parks it; no worker is left running. */
async function parkedWorkflow(name: string): Promise<string> {
  const w = new Worker(r, { queue: 'wf' });
  w.workflows(tmp);
  const running = w.start();
  const id = await r.startWorkflow(name, null, { queue: 'wf' });
  await vi.waitFor(async () => expect((await r.get(id))?.status).toBe('scheduled'), { timeout: 15_000 });
  await w.stop();
  await running;
  return id;
}

/** Plays an activation of `id`: marks it running, locks its row, and returns `park` (commits the park). */
async function activationHolding(id: string): Promise<{ park: () => Promise<void>; client: pg.Client }> {
  const n = r.names;
  await r.pool.query(`DELETE FROM ${n.scheduledQueue} WHERE execution_id = $1`, [id]);
  await r.pool.query(`UPDATE ${n.executions} SET status = 'queued' WHERE id = $1`, [id]);
  await r.pool.query(
    `INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, lease_ms, payload_bytes, attempts, lease_token, claimed_by, claimed_at, claimed_until)
     VALUES ($1, 'wf', 'x', 0, 60000, 0, 1, nextval('${n.leaseTokenSeq}'), 'stage', now(), now() + interval '1 minute')`,
    [id],
  );
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query('BEGIN');
  await client.query(`SELECT 1 FROM ${n.workflows} WHERE execution_id = $1 FOR UPDATE`, [id]);
  const park = async () => {
    await client.query(`UPDATE ${n.workflows} SET activations = activations + 1 WHERE execution_id = $1`, [id]);
    await client.query(`DELETE FROM ${n.workQueue} WHERE execution_id = $1`, [id]);
    await client.query(`UPDATE ${n.executions} SET status = 'scheduled', attempts = 0 WHERE id = $1`, [id]);
    await client.query(`INSERT INTO ${n.scheduledQueue} (execution_id, run_at) VALUES ($1, '9999-12-31T00:00:00Z')`, [id]);
    await client.query('COMMIT');
  };
  return { park, client };
}

/** Resolves once some other backend waits for a row lock (the waker, behind the activation). */
async function wakerBlocked(): Promise<void> {
  await vi.waitFor(
    async () => {
      const res = await r.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      expect(res.rows[0].n).toBeGreaterThan(0);
    },
    { timeout: 15_000 },
  );
}

async function expectWoken(id: string): Promise<void> {
  const n = r.names;
  expect((await r.get(id))?.status).toBe('queued');
  expect((await r.pool.query(`SELECT 1 FROM ${n.workQueue} WHERE execution_id = $1`, [id])).rowCount).toBe(1);
  expect((await r.pool.query(`SELECT 1 FROM ${n.scheduledQueue} WHERE execution_id = $1`, [id])).rowCount).toBe(0);
}

describe('a wake-up racing an activation that parks the workflow', () => {
  it('a child settled while the activation commits its park wakes the workflow', async () => {
    const id = await parkedWorkflow('on-child');
    const child = (await r.list({ queue: 'nobody' })).items.find((e) => e.parentId === id)!;
    expect(child.status).toBe('queued');
    const { park, client } = await activationHolding(id);
    try {
      const cancelling = r.cancel(child.id);
      await wakerBlocked();
      await park();
      expect(await cancelling).toBe(true);
      await expectWoken(id);
    } finally {
      await client.end();
    }
  });

  it('a signal sent while the activation commits its park wakes the workflow', async () => {
    const id = await parkedWorkflow('on-signal');
    const { park, client } = await activationHolding(id);
    try {
      const signalling = r.signal(id, 'go', 1);
      await wakerBlocked();
      await park();
      await signalling;
      await expectWoken(id);
    } finally {
      await client.end();
    }
  });
});
