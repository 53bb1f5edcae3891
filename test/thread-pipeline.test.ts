/**
 * A thread holds its next batches while it runs one (so it never waits for the main thread).
 * Tasks waiting inside a thread must still be the pool's: a crash of the task ahead of them,
 * a kill, a cancellation or a shutdown must end each of them exactly once, and never run one
 * that was taken back. These tests drive the ThreadPool directly, with the attempts the
 * dispatcher would give it, and read what ran from a log the task module writes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { ThreadPool } from '../src/threads/thread-pool.js';
import type { AttemptResult, AttemptRun } from '../src/contract/executor.js';
import { fixture, isSettled } from './helpers.js';

/** The pool's warnings: a thread that died under batches says how many tasks it sends again. */
const warnings: { msg: string; tasks?: number }[] = [];
const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line)) });
const resent = () => warnings.filter((w) => /sending its unfinished tasks again/.test(w.msg)).reduce((n, w) => n + (w.tasks ?? 0), 0);
/** A new thread imports the runner (through tsx, from source): slow on a loaded machine. */
const THREAD_START_MS = 15_000;
let pool: ThreadPool | undefined;
let dir: string | undefined;
let nextId = 1;

afterEach(async () => {
  warnings.length = 0;
  await pool?.close();
  pool = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

interface Started {
  run: AttemptRun;
  handed: Promise<void>;
  result: Promise<AttemptResult>;
  /** How many times the attempt reported an outcome (must end at 1). */
  outcomes: () => number;
}

function newPool(threads: number): ThreadPool {
  pool = new ThreadPool(new Map([['pipeline', fixture('pipeline.js').href]]), { queue: 'q', threads, slots: 256 }, log);
  return pool;
}

function start(p: ThreadPool, payload: Record<string, unknown>): Started {
  const id = String(nextId++);
  let handed!: () => void;
  let finish!: (r: AttemptResult) => void;
  let outcomes = 0;
  const handedP = new Promise<void>((r) => (handed = r));
  const result = new Promise<AttemptResult>((r) => (finish = r));
  const run = p.start(
    {
      id,
      name: 'pipeline',
      payloadJson: JSON.stringify(payload),
      payloadBytes: 0,
      attempt: 1,
      maxAttempts: 1,
      timeoutMs: null,
      leaseMs: 30_000,
      leaseToken: id,
    },
    'q',
    {
      handedOff: () => handed(),
      finished: (r) => {
        outcomes++;
        finish(r);
      },
      heartbeat: () => undefined,
      progress: () => undefined,
    },
  );
  return { run, handed: handedP, result, outcomes: () => outcomes };
}

function logFile(): string {
  dir = mkdtempSync(path.join(tmpdir(), 'rhythm-pipeline-'));
  return path.join(dir, 'ran.log');
}
const ran = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
const errorOf = (r: AttemptResult) => (r.ok ? undefined : (JSON.parse(r.errorJson) as { name: string; message: string }));

/** A few quick tasks first: the pool learns they are short and batches them many to a message. */
async function warm(p: ThreadPool): Promise<void> {
  const warmups = Array.from({ length: 8 }, (_, i) => start(p, { label: `warm${i}` }));
  for (const w of warmups) expect((await w.result).ok).toBe(true);
}

describe('tasks waiting inside a thread', () => {
  it('when the task ahead of them kills the thread: it fails with ThreadCrashError; each waiting one runs once, elsewhere', async () => {
    const p = newPool(1);
    await warm(p);
    const file = logFile();
    const crash = start(p, { label: 'crash', log: file, spinMs: 300, exit: 9 });
    const behind = Array.from({ length: 20 }, (_, i) => start(p, { label: `b${i}`, log: file }));
    // All handed to the one thread (it holds several batches) while the first still runs.
    await Promise.all(behind.map((b) => b.handed));
    expect(await isSettled(crash.result)).toBe(false);

    const crashed = await crash.result;
    expect(errorOf(crashed)).toMatchObject({ name: 'ThreadCrashError', message: expect.stringMatching(/code:? 9/) });
    const results = await Promise.all(behind.map((b) => b.result));
    expect(results.map((r) => (r.ok ? JSON.parse(r.resultJson).label : errorOf(r)))).toEqual(behind.map((_, i) => `b${i}`));
    expect(ran(file).sort()).toEqual(['crash', ...behind.map((_, i) => `b${i}`)].sort());
    // Every one of them was inside the dead thread (none still in Piscina's own queue).
    expect(resent()).toBe(20);
    for (const s of [crash, ...behind]) expect(s.outcomes()).toBe(1);
  });

  it('when the task ahead of them ignores its abort and is killed: it ends aborted; the waiting ones run once on the new thread', async () => {
    const p = newPool(1);
    await warm(p);
    const file = logFile();
    const stuck = start(p, { label: 'stuck', log: file, spinMs: 20_000 });
    const behind = Array.from({ length: 5 }, (_, i) => start(p, { label: `k${i}`, log: file }));
    await Promise.all(behind.map((b) => b.handed));
    await expect.poll(() => ran(file), { timeout: THREAD_START_MS }).toContain('stuck');
    stuck.run.abort('timeout');
    expect(await isSettled(stuck.result)).toBe(false);
    stuck.run.kill('timeout');
    const killed = await stuck.result;
    expect(errorOf(killed)).toMatchObject({ name: 'TaskTimeoutError', message: expect.stringMatching(/thread was terminated/) });
    const results = await Promise.all(behind.map((b) => b.result));
    for (const r of results) expect(r.ok).toBe(true);
    const threads = new Set(results.map((r) => (r.ok ? JSON.parse(r.resultJson).thread : undefined)));
    expect(threads.size).toBe(1);
    expect(ran(file).sort()).toEqual(['stuck', ...behind.map((_, i) => `k${i}`)].sort());
    expect(resent()).toBe(5);
    for (const s of [stuck, ...behind]) expect(s.outcomes()).toBe(1);
  });

  it('cancelled before it starts: it ends at once, aborted, and never runs', async () => {
    const p = newPool(1);
    await warm(p);
    const file = logFile();
    const ahead = start(p, { label: 'ahead', log: file, spinMs: 400 });
    const cancelled = start(p, { label: 'cancelled', log: file });
    const after = start(p, { label: 'after', log: file });
    await Promise.all([cancelled.handed, after.handed]);
    cancelled.run.abort('cancelled');
    const r = await cancelled.result;
    expect(errorOf(r)).toMatchObject({ name: 'TaskAbortedError', message: expect.stringMatching(/cancelled/) });
    // It ended before the task ahead of it on the thread.
    expect(await isSettled(ahead.result)).toBe(false);
    expect((await ahead.result).ok).toBe(true);
    expect((await after.result).ok).toBe(true);
    expect(ran(file)).toEqual(['ahead', 'after']);
    for (const s of [ahead, cancelled, after]) expect(s.outcomes()).toBe(1);
  });

  it('when the pool shuts down: every task ends once, aborted for the shutdown, and the waiting ones never run', async () => {
    const p = newPool(1);
    await warm(p);
    const file = logFile();
    const running = start(p, { label: 'running', log: file, spinMs: 2_000 });
    const behind = Array.from({ length: 6 }, (_, i) => start(p, { label: `s${i}`, log: file }));
    await Promise.all(behind.map((b) => b.handed));
    await expect.poll(() => ran(file), { timeout: THREAD_START_MS }).toContain('running');
    await p.close();
    pool = undefined;
    for (const s of [running, ...behind]) {
      expect(errorOf(await s.result)).toMatchObject({ name: 'TaskAbortedError', message: expect.stringMatching(/shutting down/) });
      expect(s.outcomes()).toBe(1);
    }
    expect(ran(file)).toEqual(['running']);
  });

  it('an async handler that asks for its signal while it waits sees it abort', async () => {
    const p = newPool(1);
    const file = logFile();
    const waiting = start(p, { label: 'waiting', log: file, awaitAbort: true });
    // Started, and past the point where it asked for ctx.signal.
    await expect.poll(() => ran(file), { timeout: THREAD_START_MS }).toContain('waiting:signal');
    expect(await isSettled(waiting.result)).toBe(false);
    waiting.run.abort('cancelled');
    expect(errorOf(await waiting.result)).toMatchObject({ name: 'TaskAbortedError', message: expect.stringMatching(/cancelled/) });
    expect(waiting.outcomes()).toBe(1);
  });

  it('an idle thread takes tasks still waiting inside a busy one', async () => {
    const p = newPool(2);
    await warm(p);
    const file = logFile();
    // Sent one to a batch, alternately to the two threads: long, short, long, short, long,
    // short. The thread with the short ones is idle long before the other reaches its last.
    const tasks = Array.from({ length: 6 }, (_, i) => start(p, { label: `t${i}`, log: file, spinMs: i % 2 === 0 ? 300 : 1 }));
    const results = await Promise.all(tasks.map((t) => t.result));
    const threadOf = results.map((r) => (r.ok ? (JSON.parse(r.resultJson).thread as number) : -1));
    expect(threadOf).not.toContain(-1);
    // Without the hand-over the three long ones would all run on one thread.
    expect(new Set([threadOf[0], threadOf[2], threadOf[4]]).size).toBe(2);
    expect(ran(file).sort()).toEqual(tasks.map((_, i) => `t${i}`).sort());
    for (const t of tasks) expect(t.outcomes()).toBe(1);
  });
});
