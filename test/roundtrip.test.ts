import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, Worker } from 'rhythm';
import { createTestDatabase } from './support/db.js';

const TASKS = new URL('../tasks/', import.meta.url);

describe('enqueue, claim, complete round trip', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let r: Rhythm;

  beforeAll(async () => {
    db = await createTestDatabase();
    r = await Rhythm.init({ databaseUrl: db.url, autoMigrate: true });
  });
  afterAll(async () => {
    await r?.shutdown();
    await db?.drop();
  });

  it('runs a main-thread handler and a thread-pool module, storing their results', async () => {
    const io = new Worker(r, { queue: 'default' });
    io.task('submit-report', async (payload: { reportId: number }, ctx) => ({
      status: 'success',
      reportId: payload.reportId,
      attempt: ctx.attempt,
    }));
    const cpu = new Worker(r, { queue: 'high-cpu', threads: 2 });
    cpu.task('sha256-chain', new URL('sha256-chain.ts', TASKS));
    const running = Promise.all([io.start(), cpu.start()]);

    const a = await r.enqueue('submit-report', { reportId: 7 });
    const b = await r.enqueue('sha256-chain', { seed: 'x', rounds: 10 }, { queue: 'high-cpu' });
    const [ea, eb] = await Promise.all([r.wait(a, { timeoutMs: 10_000 }), r.wait(b, { timeoutMs: 10_000 })]);

    expect(ea.status).toBe('completed');
    expect(ea.result).toEqual({ status: 'success', reportId: 7, attempt: 1 });
    expect(eb.status).toBe('completed');
    expect(eb.result).toMatchObject({ rounds: 10 });
    expect((eb.result as { digest: string }).digest).toMatch(/^[0-9a-f]{64}$/);
    const q = await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.workQueue}`);
    expect(q.rows[0].n).toBe(0);

    await Promise.all([io.stop(), cpu.stop()]);
    await running;
  });
});
