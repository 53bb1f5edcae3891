/**
 * Wake-ups: an enqueue statement sends one work NOTIFY per distinct ready queue, not one per
 * row; an idle dispatcher sleeps (no queries) until a NOTIFY or its fallback poll.
 */
import { describe, expect, it } from 'vitest';
import { Rhythm, Worker } from 'rhythm';
import { rhythmWithWorkNotifications } from './helpers.js';

const env = rhythmWithWorkNotifications();
const collect = env.collect;

describe('work notifications', () => {
  it('enqueueMany of 1,000 rows over two queues sends one NOTIFY per queue', async () => {
    const items = Array.from({ length: 1_000 }, (_, i) => ({ name: 'n', payload: i, options: { queue: i % 3 ? 'alpha' : 'beta' } }));
    const got = await collect(() => env.r.enqueueMany(items));
    expect(got.sort()).toEqual(['alpha', 'beta']);
  });

  it('a single enqueue sends one NOTIFY for its queue', async () => {
    const got = await collect(() => env.r.enqueue('n', {}, { queue: 'gamma' }));
    expect(got).toEqual(['gamma']);
  });

  it('delayed tasks wake nobody at enqueue', async () => {
    const got = await collect(() =>
      env.r.enqueueMany(Array.from({ length: 50 }, (_, i) => ({ name: 'n', payload: i, options: { queue: 'delta', delayMs: 60_000 } }))),
    );
    expect(got).toEqual([]);
  });
});

describe('an idle dispatcher', () => {
  it('makes no queries while idle, and wakes on the NOTIFY of a new task', async () => {
    const rw = await Rhythm.init({ databaseUrl: env.db.url });
    const w = new Worker(rw, { queue: 'idle', pollIntervalMs: 60_000 });
    w.task('t', async (p: number) => p * 2);
    const running = w.start();
    const pool = rw.pool as unknown as { query: (...args: unknown[]) => unknown };
    const original = pool.query;
    try {
      const first = await env.r.enqueue('t', 1, { queue: 'idle' });
      expect((await env.r.wait(first, { timeoutMs: 10_000 })).result).toBe(2);

      let queries = 0;
      pool.query = function (this: unknown, ...args: unknown[]) {
        queries++;
        return original.apply(this, args);
      };
      // The subject here is the absence of activity over time, so time passes on purpose.
      await new Promise((res) => setTimeout(res, 300));
      expect(queries).toBe(0);

      const second = await env.r.enqueue('t', 21, { queue: 'idle' });
      expect((await env.r.wait(second, { timeoutMs: 10_000 })).result).toBe(42);
      expect(queries).toBeGreaterThan(0); // it claimed and settled, woken by the NOTIFY
    } finally {
      pool.query = original;
      await rw.shutdown();
      await running;
    }
  });
});
