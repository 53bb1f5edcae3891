/**
 * The rhythm command when the database does not answer (a frozen server, a silent network)
 * or is gone: commands give up after --db-timeout with a clear error instead of hanging,
 * and a worker can always be stopped: a second signal forces the stop (exit 130) even while
 * the outcomes of its tasks cannot be written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { runCli, spawnCli, killAll, removeScratch, TASKS_DIR } from './fixtures/cli-tasks/harness/cli.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Rhythm;

beforeAll(async () => {
  db = await createTestDatabase('rhythm_cli_unreachable');
  r = await Rhythm.init({ databaseUrl: db.url });
});
afterAll(async () => {
  await killAll();
  removeScratch();
  await r?.shutdown();
  await db?.drop();
});

describe('a database that does not answer', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await TcpProxy.start(db.url);
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('rhythm status gives up after --db-timeout, naming the limit', { timeout: 30_000 }, async () => {
    proxy.blackhole();
    try {
      const started = Date.now();
      const res = await runCli(['status', '--database-url', proxy.via(db.url), '--db-timeout', '1s']);
      const took = Date.now() - started;
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^rhythm status: error: .*did not answer in time; --db-timeout sets the limit/m);
      expect(took).toBeLessThan(10_000);
    } finally {
      proxy.restore();
    }
  });

  it('rhythm status --watch stops with an error when the database stops answering', { timeout: 30_000 }, async () => {
    const watch = spawnCli(['status', '--watch', '--interval', '200ms', '--database-url', proxy.via(db.url), '--db-timeout', '1s']);
    try {
      await watch.waitForLine('stdout', (l) => l.startsWith('schema rhythm at'));
      proxy.blackhole();
      const cutAt = Date.now();
      const exit = await watch.exited;
      expect(exit.code).toBe(1);
      expect(watch.stderr).toMatch(/did not answer in time; --db-timeout sets the limit/);
      expect(Date.now() - cutAt).toBeLessThan(10_000);
    } finally {
      proxy.restore();
    }
  });
});

describe('a worker while the database is unreachable', () => {
  // Both at once, each with its own proxy and queue.
  it.concurrent.for(['down', 'silent'] as const)(
    'database %s: SIGTERM waits for the in-flight task; a second signal forces the stop: exit 130, though nothing can be written',
    { timeout: 60_000 },
    async (how, { expect }) => {
      const queue = `unreachable-${how}`;
      const proxy = await TcpProxy.start(db.url);
      try {
        const worker = spawnCli([
          'worker',
          '--database-url',
          proxy.via(db.url),
          '--schema',
          'rhythm',
          '--tasks',
          TASKS_DIR,
          '--only',
          'block',
          '--queue',
          `${queue}:0`,
          '--shutdown-timeout',
          '60s',
          '--db-timeout',
          '1s',
          '--log-level',
          'info',
        ]);
        await worker.waitForLog('worker started', (e) => e.queue === queue);
        const id = await r.enqueue('block', null, { queue });
        await worker.waitForLine('stdout', (l) => l === `BLOCK_STARTED ${id}`);
        if (how === 'down') await proxy.down();
        else proxy.blackhole();

        worker.child.kill('SIGTERM');
        await worker.waitForLog(/signal received: shutting down gracefully/);
        const forcedAt = Date.now();
        worker.child.kill('SIGINT');
        const exit = await worker.exited;
        const took = Date.now() - forcedAt;
        expect(exit.code, worker.stderr).toBe(130);
        expect(took).toBeLessThan(10_000);
        expect(worker.logs.some((l) => l.msg?.startsWith('second signal: forcing a fast stop'))).toBe(true);
        console.log(`[cli-unreachable] forced stop with the database ${how}: exit 130 ${took} ms after the second signal`);
        // The task was not handed back (nothing could be written): its lease expires and recovery runs it again.
        const e = await r.get(id);
        expect(e!.status).toBe('running');
        await r.cancel(id);
      } finally {
        await proxy.close();
      }
    },
  );
});
