/**
 * The thread side: Piscina loads this file in each thread. It runs a micro-batch of tasks
 * and returns their results in one message. Synchronous handlers run one after another;
 * async ones overlap. Task modules are imported once per thread and cached.
 */
import { workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { abortError, failed, succeeded, ABORT_REASONS } from '../dispatcher/attempt.js';
import { abortIndex, heartbeatIndex, CANCEL_GEN, HEARTBEAT_GEN } from './flags.js';
import type { RunnerData, ThreadBatch, ThreadResult, ThreadTask } from './protocol.js';
import type { TaskContext, TaskHandler } from '../types.js';

const flags = new Int32Array((workerData as RunnerData).flags);
const handlers = new Map<string, TaskHandler | Error>();
const watched = new Map<number, AbortController>();
let watching = false;

export default async function runBatch(batch: ThreadBatch): Promise<ThreadResult[]> {
  return Promise.all(batch.tasks.map(runTask));
}

async function runTask(task: ThreadTask): Promise<ThreadResult> {
  let handler = handlers.get(task.module);
  if (handler === undefined) {
    handler = await loadHandler(task.module);
    handlers.set(task.module, handler);
  }
  const started = performance.now();
  if (handler instanceof Error) return { ...failed(handler), ms: 0 };
  const code = Atomics.load(flags, abortIndex(task.slot));
  // Asked to stop before it started (cancelled or timed out while queued): do not start it.
  if (code !== 0) return { ...failed(abortError(ABORT_REASONS[code]!)), ms: 0 };
  const controller = new AbortController();
  const ctx: TaskContext = {
    id: task.id,
    name: task.name,
    queue: task.queue,
    attempt: task.attempt,
    signal: controller.signal,
    get cancelled() {
      return Atomics.load(flags, abortIndex(task.slot)) !== 0;
    },
    throwIfCancelled() {
      const c = Atomics.load(flags, abortIndex(task.slot));
      if (c !== 0) throw controller.signal.aborted ? controller.signal.reason : abortError(ABORT_REASONS[c]!);
    },
    heartbeat() {
      Atomics.store(flags, heartbeatIndex(task.slot), 1);
      Atomics.add(flags, HEARTBEAT_GEN, 1);
      Atomics.notify(flags, HEARTBEAT_GEN);
    },
  };
  let result;
  try {
    const value = handler(JSON.parse(task.payloadJson), ctx);
    if (typeof (value as PromiseLike<unknown> | undefined)?.then === "function") {
      watch(task.slot, controller);
      try {
        result = succeeded(await value);
      } finally {
        watched.delete(task.slot);
      }
    } else {
      result = succeeded(value);
    }
  } catch (err) {
    result = failed(err);
  }
  return { ...result, ms: performance.now() - started };
}

async function loadHandler(url: string): Promise<TaskHandler | Error> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (err) {
    const e = new Error(`task module ${url} failed to load: ${(err as Error)?.message ?? err}`, { cause: err });
    e.name = 'ModuleLoadError';
    return e;
  }
  const handler = typeof mod.default === 'function' ? mod.default : mod.handler;
  if (typeof handler !== 'function') {
    const e = new Error(`task module ${url} has no handler: export a function as default or as "handler"`);
    e.name = 'ModuleLoadError';
    return e;
  }
  return handler as TaskHandler;
}

/** Aborts the signals of running async tasks when the main thread raises their flag. */
function watch(slot: number, controller: AbortController): void {
  watched.set(slot, controller);
  if (watching) return;
  watching = true;
  void (async () => {
    while (watched.size > 0) {
      const gen = Atomics.load(flags, CANCEL_GEN);
      for (const [s, c] of watched) {
        const code = Atomics.load(flags, abortIndex(s));
        if (code !== 0 && !c.signal.aborted) c.abort(abortError(ABORT_REASONS[code]!));
      }
      const wait = Atomics.waitAsync(flags, CANCEL_GEN, gen, 1_000);
      if (wait.async) await wait.value;
    }
    watching = false;
  })();
}
