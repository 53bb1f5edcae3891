/**
 * Worker events: completed, retrying, failed and cancelled each fire once per outcome of the
 * executions this worker ran, after the outcome is written; a throwing listener harms nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Rhythm, Worker, type ExecutionEvent } from 'rhythm';
import { freshRhythm, until, type TestDatabase } from './helpers.js';

describe('worker events', () => {
  let db: TestDatabase;
  let r: Rhythm;

  beforeAll(async () => {
    ({ db, r } = await freshRhythm());
    await r.startInternalWorker({ tickMs: 100 }); // promotes the retry
  });
  afterAll(async () => {
    await r?.shutdown();
    await db?.drop();
  });

  it('each fires once, with the execution it concerns', async () => {
    const w = new Worker(r, { queue: 'events' });
    const events: ExecutionEvent[] = [];
    for (const kind of ['completed', 'failed', 'retrying', 'cancelled'] as const) w.on(kind, (e) => events.push(e));
    // A throwing listener is logged and ignored: the others still hear every event.
    w.on('completed', () => {
      throw new Error('listener bug');
    });
    w.task('ok', (p: { n: number }) => ({ doubled: p.n * 2 }));
    w.task('always-fails', () => {
      throw new Error('boom');
    });
    w.task(
      'waits-for-cancel',
      (_p: unknown, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    );
    const running = w.start();

    const ok = await r.enqueue('ok', { n: 21 }, { queue: 'events' });
    const bad = await r.enqueue('always-fails', {}, { queue: 'events', maxAttempts: 2 });
    const cancelled = await r.enqueue('waits-for-cancel', {}, { queue: 'events' });
    await until('the cancellable one running', async () => (await r.get(cancelled))!.status === 'running');
    expect(await r.cancel(cancelled)).toBe(true);
    await Promise.all([ok, bad, cancelled].map((id) => r.wait(id, { timeoutMs: 15_000 })));
    await until('the cancelled event', () => events.some((e) => e.kind === 'cancelled'));
    await w.stop();
    await running;

    const of = (id: string) => events.filter((e) => e.id === id).map((e) => `${e.kind}#${e.attempt}`);
    expect(of(ok)).toEqual(['completed#1']);
    expect(of(bad)).toEqual(['retrying#1', 'failed#2']);
    expect(of(cancelled)).toEqual(['cancelled#1']);
    expect(events).toHaveLength(4);
    expect(events.find((e) => e.id === ok)).toMatchObject({ name: 'ok', queue: 'events', result: { doubled: 42 }, error: null });
    expect(events.find((e) => e.kind === 'failed')).toMatchObject({
      name: 'always-fails',
      result: null,
      error: { name: 'Error', message: 'boom' },
    });
    expect(events.find((e) => e.kind === 'cancelled')!.error).toMatchObject({ name: 'CancelledError' });
  });
});
