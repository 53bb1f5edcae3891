/**
 * What a clean stop logs about the pools: closing them is no warning, and a connection the
 * server ends while the Rhythm is shutting down (the server may be stopping too) is logged at
 * debug, not as a warning, for every pool: the main, lease and wait() pools alike.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import { Rhythm, Worker } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import { deferred } from './helpers.js';

const LOST = 'idle database connection lost';
const WARN = 40;

function capture() {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: pino({ level: 'debug' }, sink) };
}

describe('pool logs at shutdown', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let admin: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('rhythm_shutdown_logs');
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await db?.drop();
  });

  it('a clean stop after tasks and wait() logs no lost connection', async () => {
    const { lines, logger } = capture();
    const r = await Rhythm.init({ databaseUrl: db.url, schema: 'clean_stop', logger });
    const w = new Worker(r, { queue: 'q' });
    w.task('echo', async (p: unknown) => p);
    const started = w.start();
    const id = await r.enqueue('echo', { n: 1 }, { queue: 'q' });
    expect((await r.wait(id, { timeoutMs: 20_000 })).result).toEqual({ n: 1 });
    await r.shutdown();
    await started;
    expect(lines.some((l) => l.msg === 'shut down')).toBe(true);
    expect(lines.filter((l) => l.msg === LOST)).toEqual([]);
  });

  it('connections ended by the server during shutdown are debug, not warnings, on every pool', async () => {
    const { lines, logger } = capture();
    const r = await Rhythm.init({ databaseUrl: db.url, schema: 'ended_stop', logger });
    const gate = deferred();
    const running = deferred();
    const w = new Worker(r, { queue: 'q' });
    w.task('hold', async () => {
      running.resolve();
      await gate.promise;
    });
    const started = w.start();
    const id = await r.enqueue('hold', null, { queue: 'q' });
    // A wait() opens the wait pool; it is still waiting when the Rhythm shuts down.
    const waiting = r.wait(id, { timeoutMs: 60_000 }).catch((err: Error) => err);
    await running.promise;
    const idle = async () =>
      (
        await admin.query<{ app: string }>(
          `SELECT DISTINCT application_name AS app FROM pg_stat_activity
           WHERE datname = current_database() AND state = 'idle' AND application_name IN ('rhythm', 'rhythm-lease', 'rhythm-wait')`,
        )
      ).rows.map((x) => x.app);
    await vi.waitFor(async () => expect((await idle()).sort()).toEqual(['rhythm', 'rhythm-lease', 'rhythm-wait']), { timeout: 20_000 });

    // Shutting down: the worker waits for its running task, the pools are still open.
    const stopping = r.shutdown({ timeoutMs: 30_000 });
    const ended = await admin.query<{ app: string }>(
      `SELECT application_name AS app, pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND state = 'idle' AND application_name IN ('rhythm', 'rhythm-lease', 'rhythm-wait')`,
    );
    const apps = new Set(ended.rows.map((x) => x.app));
    expect(apps).toEqual(new Set(['rhythm', 'rhythm-lease', 'rhythm-wait']));
    // Each pool with a connection ended hears of it (one error per idle client).
    await vi.waitFor(() => expect(lines.filter((l) => l.msg === LOST).length).toBeGreaterThanOrEqual(ended.rows.length), {
      timeout: 20_000,
    });

    gate.resolve();
    await stopping;
    await started;
    expect(await waiting).toBeInstanceOf(Error);
    const lost = lines.filter((l) => l.msg === LOST);
    expect(lost.length).toBeGreaterThanOrEqual(3);
    expect(lost.filter((l) => l.level >= WARN)).toEqual([]);
  });
});
