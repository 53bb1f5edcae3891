/**
 * Pruning with two retentions: completed and cancelled executions go after `retentionMs`,
 * failed ones (the dead letters) only after `failedRetentionMs`, so they can still be listed
 * and retried once the completed history of their time is gone. A failed workflow keeps its
 * children for as long as it is kept itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rhythm, Worker } from 'rhythm';
import { count, freshRhythm, type TestDatabase } from './helpers.js';

const DAY = 86_400_000;
let db: TestDatabase;
let r: Rhythm;
let running: Promise<void>;
let bugFixed = false;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rhythm-retention-'));

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  // Promotes retries; prunes nothing (the tests prune with internal workers of their own).
  await r.startInternalWorker({ tickMs: 50, retentionMs: 0, failedRetentionMs: 0 });
  const flow = path.join(tmp, 'two-steps.flow');
  writeFileSync(flow, 'const a = await Task.run("ok", 1);\nconst b = await Task.run("buggy", a);\nreturn b;\n');
  const w = new Worker(r, { queue: 'default', pollIntervalMs: 200 });
  w.task('ok', (p) => ({ echo: p }));
  w.task('buggy', () => {
    if (!bugFixed) throw new Error('the bug');
    return 'fixed';
  });
  w.workflow('two-steps', flow);
  running = w.start();
});

afterAll(async () => {
  await r?.shutdown({ timeoutMs: 1_000 });
  await running;
  await db?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

/** Moves the finish time of these executions `days` into the past. */
async function age(ids: string[], days: number): Promise<void> {
  await r.pool.query(`UPDATE ${r.names.executions} SET finished_at = now() - $2 * interval '1 day' WHERE id = ANY($1::bigint[])`, [
    ids,
    days,
  ]);
}

const exists = async (id: string) => (await r.get(id)) !== null;

/** An internal worker on its own Rhythm (a Rhythm runs one at most), stopped after `fn`. */
async function withInternalWorker(
  options: Parameters<Rhythm['startInternalWorker']>[0],
  fn: (tick: () => Promise<unknown>) => Promise<void>,
): Promise<void> {
  const other = await Rhythm.init({ databaseUrl: db.url, autoMigrate: false, poolSize: 2 });
  try {
    const iw = await other.startInternalWorker({ tickMs: 3_600_000, pruneIntervalMs: 1, ...options });
    await fn(() => iw.tick());
  } finally {
    await other.shutdown();
  }
}

describe('failed executions have a retention of their own', () => {
  it('keeps failed executions past the completed retention, retries them, and prunes them after theirs', async () => {
    const completed = await Promise.all([1, 2, 3].map((i) => r.enqueue('ok', i)));
    const failed = await Promise.all([1, 2].map((i) => r.enqueue('buggy', i, { maxAttempts: 1 })));
    const cancelled = await r.enqueue('ok', 0, { delayMs: 3_600_000 });
    await r.cancel(cancelled);
    const done = await r.waitMany([...completed, ...failed], { timeoutMs: 20_000 });
    expect(done.map((e) => e.status)).toEqual(['completed', 'completed', 'completed', 'failed', 'failed']);
    await age([...completed, ...failed, cancelled], 10);

    // Defaults: 7 days for completed and cancelled, 30 for failed.
    await withInternalWorker({}, async (tick) => {
      await tick();
      await expect.poll(() => count(r, r.names.executions, 'id = ANY($1::bigint[])', [[...completed, cancelled]])).toBe(0);
      for (const id of failed) expect(await exists(id)).toBe(true);
      const listed = await r.list({ status: 'failed' });
      expect(listed.items.map((e) => e.id).sort()).toEqual([...failed].sort());

      // The dead-letter workflow: fix the cause, retry, and the execution runs again.
      bugFixed = true;
      expect(await r.retry([failed[0]!])).toEqual({ retried: [failed[0]], skipped: [] });
      expect(await r.wait(failed[0]!, { timeoutMs: 20_000 })).toMatchObject({ status: 'completed', result: 'fixed' });

      // Past the failed retention too: pruned.
      await age([failed[1]!], 31);
      await tick();
      await expect.poll(() => exists(failed[1]!)).toBe(false);
      expect(await count(r, r.names.deadLetters, 'execution_id = $1', [failed[1]])).toBe(0);
    });
  });

  it('retention 0 keeps those executions forever; failedRetentionMs 0 keeps failed ones while completed ones go', async () => {
    bugFixed = false;
    const ok = await r.enqueue('ok', 'kept?');
    const bad = await r.enqueue('buggy', 'kept?', { maxAttempts: 1 });
    await r.waitMany([ok, bad], { timeoutMs: 20_000 });
    await age([ok, bad], 400);
    await withInternalWorker({ retentionMs: DAY, failedRetentionMs: 0 }, async (tick) => {
      await tick();
      await expect.poll(() => exists(ok)).toBe(false);
      expect(await exists(bad)).toBe(true);
    });
  });

  it('keeps the completed children of a failed workflow as long as the workflow is kept', async () => {
    bugFixed = false;
    const id = await r.startWorkflow('two-steps', null);
    const wf = await r.wait(id, { timeoutMs: 20_000 });
    expect(wf.status).toBe('failed');
    const kids = await r.pool.query<{ id: string; name: string; status: string }>(
      `SELECT id::text, name, status FROM ${r.names.executions} WHERE parent_id = $1 ORDER BY parent_seq`,
      [id],
    );
    expect(kids.rows.map((k) => `${k.name}:${k.status}`)).toEqual(['ok:completed', 'buggy:failed']);
    await age([id, ...kids.rows.map((k) => k.id)], 10);
    await withInternalWorker({}, async (tick) => {
      await tick();
      await tick();
      for (const e of [id, ...kids.rows.map((k) => k.id)]) expect(await exists(e), e).toBe(true);

      // Retrying the failed child then the workflow resumes it from its last await with both outcomes.
      bugFixed = true;
      await r.retry([kids.rows[1]!.id]);
      expect((await r.wait(kids.rows[1]!.id, { timeoutMs: 20_000 })).status).toBe('completed');
      await r.retry([id]);
      expect(await r.wait(id, { timeoutMs: 20_000 })).toMatchObject({ status: 'completed', result: 'fixed' });

      // Once the workflow completed and aged, it and its children go with the completed retention.
      await age([id, ...kids.rows.map((k) => k.id)], 10);
      await tick();
      await expect.poll(() => count(r, r.names.executions, 'id = $1 OR parent_id = $1', [id])).toBe(0);
    });
  });
});
