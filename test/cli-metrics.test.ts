/**
 * `rhythm worker --metrics-port`: the real command serves /metrics on the address given,
 * counting the tasks it runs, and stops serving when it shuts down.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import { until } from './helpers.js';
import { spawnCli, killAll, removeScratch, TASKS_DIR } from './fixtures/cli-tasks/harness/cli.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  db = await createTestDatabase('rhythm_cli_metrics');
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await db?.drop();
  removeScratch();
});

describe('rhythm worker --metrics-port', () => {
  it('serves the metrics of the tasks it runs until it stops', async () => {
    const worker = spawnCli([
      'worker',
      '--database-url',
      db.url,
      '--schema',
      'metrics',
      '--tasks',
      TASKS_DIR,
      '--queue',
      'io:0',
      '--metrics-port',
      '0',
      '--metrics-host',
      '127.0.0.1',
      '--log-level',
      'info',
    ]);
    const serving = await worker.waitForLog('serving Prometheus metrics');
    const url = serving.url as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    await worker.waitForLog('worker started', (e) => e.queue === 'io');

    const r = await Rhythm.init({ databaseUrl: db.url, schema: 'metrics', autoMigrate: false });
    try {
      const id = await r.enqueue('echo', { n: 1 }, { queue: 'io' });
      expect((await r.wait(id, { timeoutMs: 15_000 })).status).toBe('completed');
    } finally {
      await r.shutdown();
    }
    // Counted once the worker has its outcome's write back (the wait may hear of it first).
    const text = await until('the completion counted', async () => {
      const t = await (await fetch(url)).text();
      return t.includes('rhythm_executions_completed_total{queue="io",task="echo"} 1') ? t : undefined;
    });
    expect(text).toContain('rhythm_executions_completed_total{queue="io",task="echo"} 1');
    expect(text).toContain('rhythm_queue_depth{queue="io",status="queued"} 0');

    const exit = await worker.stop('SIGTERM');
    expect(exit.code).toBe(0);
    await expect(fetch(url)).rejects.toThrow();
  });
});
