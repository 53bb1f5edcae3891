/**
 * Thread task modules in TypeScript, and how threads are started: a .ts module runs on a
 * thread (each thread registers tsx itself), a TypeScript program run with `node --import tsx`
 * (what `tsx app.ts` does) runs its .ts thread task, and threadExecArgv / threadEnv reach the
 * threads. The flag filter is checked on its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { type Rhythm, RhythmValidationError, Worker } from 'rhythm';
import { freshRhythm, type TestDatabase } from './helpers.js';
import { isTypeScript, workerSafeExecArgv } from '../src/threads/thread-exec.js';

const FIXTURES = new URL('./fixtures/typescript/', import.meta.url);
let db: TestDatabase;
let r: Rhythm;

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
});
afterAll(async () => {
  await r?.shutdown();
  await db?.drop();
});

describe('a task module in TypeScript', () => {
  it('runs on a thread', async () => {
    const w = new Worker(r, { queue: 'ts-fib', threads: 1 });
    w.task('fib', new URL('fib.ts', FIXTURES));
    const running = w.start();
    const id = await r.enqueue('fib', { n: 30 }, { queue: 'ts-fib' });
    const e = await r.wait(id, { timeoutMs: 20_000 });
    expect(e.status, JSON.stringify(e.error)).toBe('completed');
    expect(e.result).toEqual({ n: 30, fib: 832040, onThread: true, attempt: 1 });
    await w.stop();
    await running;
  });

  it('runs in a program started with `node --import tsx`, beside a main-thread task', async () => {
    const app = fileURLToPath(new URL('app.ts', FIXTURES));
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', app], {
      env: { ...process.env, APP_DATABASE_URL: db.url, RHYTHM_LOG_LEVEL: 'warn' },
      timeout: 60_000,
    });
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({
      greet: 'hello ts',
      fib: { n: 20, fib: 6765, onThread: true, attempt: 1 },
    });
  });
});

describe('thread start options', () => {
  it('threadExecArgv and threadEnv reach the threads', async () => {
    const w = new Worker(r, {
      queue: 'ts-setup',
      threads: 1,
      threadExecArgv: ['--no-deprecation'],
      threadEnv: { RHYTHM_THREAD_ENV_PROBE: 'from the worker options' },
    });
    w.task('setup', new URL('thread-setup.ts', FIXTURES));
    const running = w.start();
    const e = await r.wait<{ execArgv: string[]; env: string | null }>(await r.enqueue('setup', {}, { queue: 'ts-setup' }), {
      timeoutMs: 20_000,
    });
    expect(e.status, JSON.stringify(e.error)).toBe('completed');
    expect(e.result!.execArgv[0]).toBe('--no-deprecation');
    // The tsx preload follows the caller's flags: the module is TypeScript.
    expect(e.result!.execArgv.slice(1, 2)).toEqual(['--import']);
    expect(e.result!.env).toBe('from the worker options');
    await w.stop();
    await running;
  });

  it('rejects threadExecArgv that is not a list of strings, and threadEnv with non-string values', () => {
    expect(() => new Worker(r, { threads: 1, threadExecArgv: '--inspect' as unknown as string[] })).toThrow(RhythmValidationError);
    expect(() => new Worker(r, { threads: 1, threadEnv: { N: 1 } as unknown as Record<string, string> })).toThrow(
      /threadEnv must be an object of string values/,
    );
  });

  it('drops the process-wide flags a thread refuses, keeps the rest', () => {
    expect(workerSafeExecArgv(['--max-old-space-size=100', '--no-warnings', '--title=x', '--enable-source-maps'])).toEqual([
      '--no-warnings',
      '--enable-source-maps',
    ]);
    expect(workerSafeExecArgv(['--no-warnings'])).toEqual(['--no-warnings']);
    // `node --title name app.js` puts the flag and its value in two words: both go.
    expect(workerSafeExecArgv(['--title', 'name', '--no-warnings'])).toEqual(['--no-warnings']);
  });

  it('tells TypeScript module URLs from JavaScript ones', () => {
    expect(['a.ts', 'a.mts', 'a.cts', 'a.tsx'].map((f) => isTypeScript(`file:///x/${f}`))).toEqual([true, true, true, true]);
    expect(['a.js', 'a.mjs', 'a.ts.js'].map((f) => isTypeScript(`file:///x/${f}`))).toEqual([false, false, false]);
  });
});
