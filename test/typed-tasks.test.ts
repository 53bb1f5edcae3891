/**
 * Typed tasks: compile-time checks through tsc --noEmit on fixtures (a wrong payload or
 * handler is a compile error; correct use compiles), and at run time the definition's
 * defaults (queue, attempts, backoff, timeout) reach the stored execution.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Rhythm, RhythmValidationError, Worker, defineTask } from 'rhythm';
import { freshRhythm, until, type TestDatabase } from './helpers.js';

const TSC = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
const FIXTURES = new URL('./fixtures/typed-tasks/', import.meta.url);

async function tsc(project: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [TSC, '--noEmit', '-p', fileURLToPath(new URL(project, FIXTURES))], {
      cwd: fileURLToPath(FIXTURES),
    });
    return { code: 0, output: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, output: e.stdout };
  }
}

describe('typed tasks', () => {
  // tsc takes 10-20 s on an idle 2-core machine (it loads @types/node); much more when loaded.
  it('compile (tsc --noEmit): correct use compiles, each marked misuse is an error, a wrong payload fails the build', {
    timeout: 180_000,
  }, async () => {
    const { code, output } = await tsc('tsconfig.json');
    expect(code).not.toBe(0);
    // The one error reported is the unmarked wrong payload. usage.ts reports none: its correct
    // lines compile, and tsc would report any @ts-expect-error line that compiled.
    const errors = output.split('\n').filter((line) => / error TS\d+/.test(line));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^wrong-payload\.ts\(7,\d+\): error TS2769/);
    expect(output).toMatch(/Type 'string' is not assignable to type 'number'/);
    const marked = readFileSync(new URL('usage.ts', FIXTURES), 'utf8').match(/@ts-expect-error/g) ?? [];
    expect(marked.length).toBeGreaterThanOrEqual(6);
  });

  describe('at run time', () => {
    let db: TestDatabase;
    let r: Rhythm;
    beforeAll(async () => {
      ({ db, r } = await freshRhythm());
    });
    afterAll(async () => {
      await r?.shutdown();
      await db?.drop();
    });

    it("the definition's defaults are stored, an enqueue's own options win, and wait returns the result", async () => {
      const render = defineTask<{ page: number }, { bytes: number }>('render', {
        queue: 'typed-q',
        maxAttempts: 5,
        backoff: { baseMs: 500, maxMs: 60_000 },
        timeoutMs: 30_000,
      });
      const w = new Worker(r, { queue: 'typed-q' });
      w.task(render, async (payload) => ({ bytes: payload.page * 100 }));
      const running = w.start();
      const id = await r.enqueue(render, { page: 3 });
      const out = await r.wait(id, { timeoutMs: 10_000 });
      expect(out.result).toEqual({ bytes: 300 });
      const stored = await r.pool.query(
        `SELECT queue, max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms FROM ${r.names.executions} WHERE id = $1`,
        [id],
      );
      expect(stored.rows[0]).toEqual({
        queue: 'typed-q',
        max_attempts: 5,
        timeout_ms: 30_000,
        backoff_base_ms: 500,
        backoff_max_ms: 60_000,
      });
      const other = await r.enqueue(render, { page: 1 }, { maxAttempts: 1, delayMs: 3_600_000 });
      expect((await r.get(other))!.maxAttempts).toBe(1);
      await r.cancel(other);
      await w.stop();
      await running;
    });

    it('a per-execution backoff sets the retry delay', async () => {
      const flaky = defineTask<null, string>('flaky', {
        queue: 'backoff-q',
        maxAttempts: 2,
        backoff: { baseMs: 3_600_000, maxMs: 3_600_000 },
      });
      const w = new Worker(r, { queue: 'backoff-q' });
      w.task(flaky, () => {
        throw new Error('try later');
      });
      const running = w.start();
      const id = await r.enqueue(flaky, null);
      const scheduled = await until('the retry scheduled', async () => {
        const e = await r.get(id);
        return e?.status === 'scheduled' && e.attempts === 1 ? e.runAt : null;
      });
      // Jitter keeps 50-100% of the delay: at least half an hour, not the Rhythm's 20-200 ms.
      expect(scheduled.getTime() - Date.now()).toBeGreaterThan(1_700_000);
      await r.cancel(id);
      await w.stop();
      await running;
    });

    it('refuses bad definitions and a worker of another queue', () => {
      expect(() => defineTask('x', { queue: 'no spaces' })).toThrow(/invalid queue name "no spaces"/);
      expect(() => defineTask('x', { maxAttempts: 0 })).toThrow(/maxAttempts must be an integer >= 1/);
      expect(() => defineTask('x', { backoff: { baseMs: 10, maxMs: 1 } })).toThrow(
        /backoff.baseMs \(10\) must not exceed backoff.maxMs \(1\)/,
      );
      expect(() => defineTask('x', { retries: 3 } as never)).toThrow(/unknown defineTask\("x"\) option "retries"/);
      const def = defineTask<null, null>('elsewhere', { queue: 'emails' });
      expect(() => new Worker(r, { queue: 'default' }).task(def, () => null)).toThrow(RhythmValidationError);
      expect(() => new Worker(r, { queue: 'default' }).task(def, () => null)).toThrow(
        /defined for queue "emails", but this worker serves queue "default"/,
      );
    });
  });
});
