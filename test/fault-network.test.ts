/**
 * A network blackhole between a worker and Postgres: for 3 s every connection's server side
 * is cut while the worker's sockets stay open and silent (a TCP proxy in the test does it).
 * Nothing on those sockets will ever answer, so only timeouts can free the worker: its pools,
 * its lease connections and its LISTEN connection (whose health check must not hang) must
 * all give up on them, say so in the log, and reconnect once the network is back. The
 * worker's fallback poll is set far beyond the test's bounds: only a re-established LISTEN
 * connection can bring it the tasks enqueued after the outage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Rhythm, Worker, type TaskContext } from 'rhythm';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { eventLog } from './fixtures/fault/harness.js';

const BLACKHOLE_MS = 3_000;

describe('network blackhole', () => {
  let db: TestDatabaseHandle;
  let direct: Rhythm;
  let proxy: TcpProxy;

  beforeAll(async () => {
    db = await createMigratedTestDatabase('rhythm_fault_network');
    direct = await Rhythm.init({ databaseUrl: db.url });
    proxy = await TcpProxy.start(db.url);
  });
  afterAll(async () => {
    await direct?.shutdown();
    await proxy?.close();
    await db?.drop();
  });

  it('a worker cut off for 3 s (sockets left open, server side silent) logs it, recovers, and runs every task once', {
    timeout: 60_000,
  }, async () => {
    const logs: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
        cb();
      },
    });
    const events = eventLog();
    const r = await Rhythm.init({
      databaseUrl: proxy.via(db.url),
      logger: pino({ level: 'info' }, sink),
      connectTimeoutMs: 1_000,
      queryTimeoutMs: 1_000,
      retryBackoff: { baseMs: 20, maxMs: 100 },
    });
    const runs = new Map<string, number>();
    const w = new Worker(r, { queue: 'net', concurrency: 50, pollIntervalMs: 600_000 });
    w.task('slow', async (p: { ms: number }, ctx: TaskContext) => {
      runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
      events.push({ evt: 'started', id: ctx.id });
      await new Promise((resolve) => setTimeout(resolve, p.ms));
      return { ok: true };
    });
    const running = w.start();
    try {
      // Through the proxy, before the outage: work arrives and completes.
      const before = await direct.enqueueMany(
        Array.from({ length: 20 }, () => ({ name: 'slow', payload: { ms: 1 }, options: { queue: 'net' } })),
      );
      await Promise.all(before.map((id) => direct.wait(id, { timeoutMs: 10_000 })));

      // Twenty tasks in flight, finishing during the outage: their outcomes must get through after it.
      const inFlight = await direct.enqueueMany(
        Array.from({ length: 20 }, () => ({ name: 'slow', payload: { ms: 1_000 }, options: { queue: 'net' } })),
      );
      await Promise.all(inFlight.map((id) => events.waitFor((e) => e.evt === 'started' && e.id === id, `task ${id} started`)));
      proxy.blackhole();
      const cutAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, BLACKHOLE_MS)); // the fault's duration, not a wait for an event
      proxy.restore();

      const after = await direct.enqueueMany(
        Array.from({ length: 200 }, () => ({ name: 'slow', payload: { ms: 1 }, options: { queue: 'net' } })),
      );
      const all = [...before, ...inFlight, ...after];
      const done = await Promise.all(all.map((id) => direct.wait(id, { timeoutMs: 30_000 })));
      const recoveredMs = Date.now() - cutAt;
      expect(done.every((e) => e.status === 'completed')).toBe(true);
      // The in-flight tasks kept their leases (30 s): completed on their first attempt, run once.
      expect(done.filter((e) => inFlight.includes(e.id)).every((e) => e.attempts === 1)).toBe(true);
      expect(all.every((id) => runs.get(id) === 1)).toBe(true);
      // The worker said what happened.
      const said = (msg: string) => logs.some((l) => l.msg === msg);
      expect(said('LISTEN connection lost; reconnecting')).toBe(true);
      expect(said('LISTEN connection re-established')).toBe(true);
      expect(said('writing task outcomes failed; retrying')).toBe(true);
      console.log(
        `[fault-network] ${BLACKHOLE_MS} ms blackhole: 240 tasks completed ${recoveredMs} ms after the cut; log: ${[...new Set(logs.filter((l) => (l.level as number) >= 40).map((l) => l.msg))].join(' | ')}`,
      );
    } finally {
      await r.shutdown({ timeoutMs: 1_000 });
      await running;
    }
  });
});
