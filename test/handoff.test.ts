/**
 * Direct hand-off: an idle worker's offer is taken by a single enqueue(), which leases the new
 * row to it and carries the task in its NOTIFY. Checked here: what takes an offer and what
 * does not (a caller's transaction, a delay, a paused queue, a group, another task name, an
 * expired offer, a payload too large for a NOTIFY), that a worker runs every handed task
 * exactly once, and that a taken offer whose NOTIFY never reached the worker is found again
 * (on its next idle poll, or at stop, when the task is handed back unrun).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Rhythm, Worker } from 'rhythm';
import { makeOffer } from '../src/sql/handoff.js';
import { count, rhythmWithWorkNotifications, until } from './helpers.js';

const env = rhythmWithWorkNotifications();
const collect = env.collect;

async function offer(queue: string, names = ['t'], ttlMs = 60_000): Promise<{ key: string; token: string }> {
  const key = randomUUID();
  const token = await makeOffer(env.r.leasePool, env.r.names, { key, queue, names, workerId: `w-${queue}`, leaseMs: 30_000, ttlMs });
  return { key, token };
}

async function leaseOf(id: string): Promise<{ attempts: number; lease_token: string | null; claimed_by: string | null; leased: boolean }> {
  const res = await env.r.pool.query(
    `SELECT attempts, lease_token, claimed_by, claimed_until IS NOT NULL AS leased FROM ${env.r.names.workQueue} WHERE execution_id = $1`,
    [id],
  );
  return res.rows[0];
}

const offersOf = (queue: string) => count(env.r, env.r.names.workerOffers, 'queue = $1', [queue]);

describe('an enqueue takes an open offer', () => {
  it('leases the new row with the offer token and NOTIFYs the claimed task', async () => {
    const o = await offer('h1');
    let id = '';
    const got = await collect(async () => {
      id = await env.r.enqueue('t', { a: 'x"y' }, { queue: 'h1', timeoutMs: 5_000 });
    });
    expect(got).toHaveLength(1);
    const note = JSON.parse(got[0]!);
    expect(note).toMatchObject({ offer: o.key, id, name: 't', leaseToken: o.token, maxAttempts: 3, timeoutMs: 5_000, leaseMs: 30_000 });
    expect(JSON.parse(note.payload)).toEqual({ a: 'x"y' });
    expect(await leaseOf(id)).toEqual({ attempts: 1, lease_token: o.token, claimed_by: 'w-h1', leased: true });
    expect(await offersOf('h1')).toBe(0);

    // Taken once: the next enqueue wakes the queue the usual way.
    let second = '';
    const plain = await collect(async () => {
      second = await env.r.enqueue('t', {}, { queue: 'h1' });
    });
    expect(plain).toEqual(['h1']);
    expect(await leaseOf(second)).toMatchObject({ attempts: 0, leased: false });
  });

  it.each([
    ['in a caller transaction', 'h-tx'],
    ['with a delay', 'h-delay'],
    ['on a paused queue', 'h-paused'],
    ['with a group', 'h-group'],
    ['of a name the offer does not serve', 'h-name'],
    ['after the offer expired', 'h-expired'],
    ['with a payload too large for a NOTIFY', 'h-large'],
  ])('not %s', async (what, queue) => {
    await offer(queue, ['t'], what.startsWith('after') ? 1 : 60_000);
    if (what.startsWith('after'))
      await until(
        'the offer to expire',
        async () => (await count(env.r, env.r.names.workerOffers, 'queue = $1 AND expires_at < now()', [queue])) === 1,
      );
    if (what.startsWith('on a paused')) await env.r.pause(queue);
    let id = '';
    const enqueue = async () => {
      if (what.startsWith('in a caller')) {
        const client = await env.r.pool.connect();
        try {
          await client.query('BEGIN');
          id = await env.r.enqueue('t', {}, { queue, client });
          await client.query('COMMIT');
        } finally {
          client.release();
        }
        return;
      }
      const name = what.startsWith('of a name') ? 'other' : 't';
      const payload = what.startsWith('with a payload') ? { s: 'x'.repeat(7_000) } : {};
      id = await env.r.enqueue(name, payload, {
        queue,
        ...(what.startsWith('with a delay') ? { delayMs: 60_000 } : {}),
        ...(what.startsWith('with a group') ? { group: 'g' } : {}),
      });
    };
    const got = await collect(enqueue);
    const status = (await env.r.pool.query(`SELECT status FROM ${env.r.names.executions} WHERE id = $1`, [id])).rows[0].status;
    if (what.startsWith('with a delay')) {
      expect(got).toEqual([]);
      expect(status).toBe('scheduled');
    } else {
      expect(got).toEqual([queue]);
      expect(await leaseOf(id)).toMatchObject({ attempts: 0, lease_token: null, leased: false });
    }
    expect(await offersOf(queue)).toBe(1);
  });
});

/** A worker on its own Rhythm whose handler records each payload it runs and returns it. */
async function startWorker(queue: string, pollIntervalMs: number, runs: number[]): Promise<{ rw: Rhythm; running: Promise<void> }> {
  const rw = await Rhythm.init({ databaseUrl: env.db.url, autoMigrate: false });
  const w = new Worker(rw, { queue, pollIntervalMs });
  w.task('t', (k: number) => {
    runs.push(k);
    return k;
  });
  return { rw, running: w.start() };
}

describe('a worker', () => {
  it('runs every handed task exactly once, and withdraws its offer at stop', async () => {
    const rw = await Rhythm.init({ databaseUrl: env.db.url, autoMigrate: false });
    const w = new Worker(rw, { queue: 'h2' });
    const runs = new Map<number, number>();
    w.task('t', (k: number) => {
      runs.set(k, (runs.get(k) ?? 0) + 1);
      return k * 2;
    });
    const running = w.start();
    const listen = await rw.listener();
    let handed = 0;
    listen.on('handoff', () => handed++);
    try {
      const ids: string[] = [];
      for (let k = 0; k < 10; k++) {
        await until('the idle worker to offer', async () => (await offersOf('h2')) === 1);
        const id = await env.r.enqueue('t', k, { queue: 'h2' });
        ids.push(id);
        expect((await env.r.wait(id, { timeoutMs: 10_000 })).result).toBe(k * 2);
      }
      expect(handed).toBe(10);
      expect([...runs.values()]).toEqual(Array(10).fill(1));
      const attempts = await env.r.pool.query(`SELECT attempts FROM ${env.r.names.executions} WHERE id = ANY($1::bigint[])`, [ids]);
      expect(attempts.rows.map((x) => x.attempts)).toEqual(Array(10).fill(1));
      await until('the idle worker to offer', async () => (await offersOf('h2')) === 1);
    } finally {
      await rw.shutdown();
      await running;
    }
    expect(await offersOf('h2')).toBe(0);
  });

  it('withdraws its offer when a claim makes it busy, so a single enqueue does not wait behind its work', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const rw = await Rhythm.init({ databaseUrl: env.db.url, autoMigrate: false });
    const w = new Worker(rw, { queue: 'h5', concurrency: 1 });
    w.task('t', async (k: number) => {
      if (k === 1) await gate;
      return k;
    });
    const running = w.start();
    try {
      await until('the idle worker to offer', async () => (await offersOf('h5')) === 1);
      // enqueueMany never takes an offer: the worker claims this the usual way and is busy.
      const [busy] = await env.r.enqueueMany([{ name: 't', payload: 1, options: { queue: 'h5' } }]);
      await until('the worker to hold the task and withdraw its offer', async () => {
        const lease = await leaseOf(busy!);
        return lease.leased && (await offersOf('h5')) === 0;
      });
      const next = await env.r.enqueue('t', 2, { queue: 'h5' });
      expect(await leaseOf(next)).toMatchObject({ attempts: 0, leased: false });
      release();
      expect(await env.r.waitMany([busy!, next], { timeoutMs: 10_000 })).toMatchObject([{ result: 1 }, { result: 2 }]);
    } finally {
      release();
      await rw.shutdown();
      await running;
    }
  });

  it('finds a task handed while its NOTIFY was missed on its next idle poll', async () => {
    const runs: number[] = [];
    const { rw, running } = await startWorker('h3', 100, runs);
    try {
      await until('the idle worker to offer', async () => (await offersOf('h3')) === 1);
      // The dispatcher never hears of this hand-off, as after a lost LISTEN connection.
      (await rw.listener()).removeAllListeners('handoff');
      const id = await env.r.enqueue('t', 7, { queue: 'h3' });
      expect((await leaseOf(id)).leased).toBe(true);
      const done = await env.r.wait(id, { timeoutMs: 15_000 });
      expect(done).toMatchObject({ status: 'completed', result: 7, attempts: 1 });
      expect(runs).toEqual([7]);
    } finally {
      await rw.shutdown();
      await running;
    }
  });

  it('hands back, unrun, a task handed while its NOTIFY was missed when it stops', async () => {
    const runs: number[] = [];
    const { rw, running } = await startWorker('h4', 60_000, runs);
    let id = '';
    try {
      await until('the idle worker to offer', async () => (await offersOf('h4')) === 1);
      (await rw.listener()).removeAllListeners('handoff');
      id = await env.r.enqueue('t', 8, { queue: 'h4' });
      expect((await leaseOf(id)).leased).toBe(true);
    } finally {
      await rw.shutdown();
      await running;
    }
    expect(runs).toEqual([]);
    expect(await leaseOf(id)).toEqual({ attempts: 0, lease_token: null, claimed_by: null, leased: false });

    // Ready again: the next worker runs it, once.
    const { rw: r2, running: running2 } = await startWorker('h4', 2_000, runs);
    try {
      expect(await env.r.wait(id, { timeoutMs: 10_000 })).toMatchObject({ status: 'completed', attempts: 1 });
      expect(runs).toEqual([8]);
    } finally {
      await r2.shutdown();
      await running2;
    }
  });
});
