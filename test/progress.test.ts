/**
 * ctx.progress(): visible in rhythm.get(id).progress while the execution runs, from a thread
 * module and from a main-thread handler; many reports cost few statements (batched).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Rhythm, Worker } from 'rhythm';
import { deferred, fixture, freshRhythm, until, type TestDatabase } from './helpers.js';

describe('progress', () => {
  let db: TestDatabase;
  let r: Rhythm;
  let dir: string;

  beforeAll(async () => {
    ({ db, r } = await freshRhythm());
    dir = mkdtempSync(path.join(os.tmpdir(), 'rhythm-progress-'));
  });
  afterAll(async () => {
    await r?.shutdown();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a thread module reports progress that is visible while it runs', async () => {
    const w = new Worker(r, { queue: 'progress-threads', threads: 1 });
    w.task('progress-until-file', fixture('progress-until-file.js'));
    const running = w.start();
    const file = path.join(dir, 'go');
    const id = await r.enqueue('progress-until-file', { file }, { queue: 'progress-threads' });
    const seen = await until(
      'progress step 1 while running',
      async () => {
        const e = await r.get(id);
        return e?.status === 'running' && (e.progress as { step?: number } | null)?.step === 1 ? e : null;
      },
      30_000,
    );
    expect(seen.progress).toEqual({ step: 1, of: 2 });
    writeFileSync(file, '');
    const done = await r.wait(id, { timeoutMs: 10_000 });
    expect(done.status).toBe('completed');
    // A value that is not JSON throws in the handler, naming the problem.
    expect((done.result as { refused: string }).refused).toMatch(/^RhythmValidationError: progress\.at is a function/);
    await w.stop();
    await running;
  });

  it('a main-thread handler reporting 1,000 times costs a few batched statements; the latest value wins', async () => {
    let statements = 0;
    const lease = r.leasePool as unknown as { query: (...args: unknown[]) => unknown };
    const query = lease.query.bind(lease);
    lease.query = (...args: unknown[]) => {
      if ((args[0] as { name?: string } | undefined)?.name?.startsWith('rhythm_progress')) statements++;
      return query(...args);
    };
    const release = deferred();
    const w = new Worker(r, { queue: 'progress-main' });
    w.task('counting', async (_p: unknown, ctx) => {
      for (let i = 1; i <= 1_000; i++) ctx.progress({ done: i, total: 1_000 });
      await release.promise;
      return 'ok';
    });
    const running = w.start();
    const id = await r.enqueue('counting', null, { queue: 'progress-main' });
    await until('the last progress', async () => ((await r.get(id))?.progress as { done?: number } | null)?.done === 1_000);
    expect((await r.get(id))!.status).toBe('running');
    expect(statements).toBeGreaterThanOrEqual(1);
    expect(statements).toBeLessThanOrEqual(3);
    release.resolve();
    expect((await r.wait(id, { timeoutMs: 10_000 })).status).toBe('completed');
    await w.stop();
    await running;
    lease.query = query;
  });
});
