/**
 * The thread side: Piscina loads this file in each thread. It runs a micro-batch of tasks
 * and returns their results in one message. Synchronous handlers run one after another;
 * async ones overlap. Task modules are imported once per thread and cached.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { abortError, failed, succeeded, ABORT_REASONS } from '../dispatcher/attempt.js';
import { abortIndex, heartbeatIndex, CANCEL_GEN, HEARTBEAT_GEN } from './flags.js';
import { encodeProgress } from '../dispatcher/progress-value.js';
import type { ProgressMessage, RunnerData, ThreadBatch, ThreadResults } from './protocol.js';
import type { AttemptResult } from '../dispatcher/executor.js';
import type { TaskContext, TaskHandler } from '../types.js';

const data = workerData as RunnerData;
const flags = new Int32Array(data.flags);
const handlers = new Map<string, TaskHandler | Error>();
const watched = new Map<number, AbortController>();
let watching = false;

export default async function runBatch(batch: ThreadBatch): Promise<ThreadResults> {
  const ids = batch.ids.split(',');
  const payloads = JSON.parse(batch.payloads) as unknown[];
  const n = ids.length;
  const out: ThreadResults = { ok: new Uint8Array(n), retryable: new Uint8Array(n), texts: new Array<string>(n), ms: new Float64Array(n) };
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const done = runTask(batch, i, ids[i]!, payloads[i], out);
    if (done) pending.push(done);
  }
  await Promise.all(pending);
  return out;
}

function record(out: ThreadResults, i: number, result: AttemptResult, ms: number): undefined {
  out.ms[i] = ms;
  if (result.ok) {
    out.ok[i] = 1;
    out.texts[i] = result.resultJson;
  } else {
    out.retryable[i] = result.retryable ? 1 : 0;
    out.texts[i] = result.errorJson;
  }
  return undefined;
}

/** Runs task i of the batch; returns a promise only if it has to wait (a module load, an async handler). */
function runTask(batch: ThreadBatch, i: number, id: string, payload: unknown, out: ThreadResults): Promise<void> | undefined {
  const name = data.names[batch.task[i]!]!;
  const module = data.modules[batch.task[i]!]!;
  const handler = handlers.get(module);
  if (handler === undefined) {
    return loadHandler(module).then((h) => {
      handlers.set(module, h);
      return runTask(batch, i, id, payload, out);
    });
  }
  if (handler instanceof Error) return record(out, i, failed(handler), 0);
  const slot = batch.slot[i]!;
  const code = Atomics.load(flags, abortIndex(slot));
  // Asked to stop before it started (cancelled or timed out while queued): do not start it.
  if (code !== 0) return record(out, i, failed(abortError(ABORT_REASONS[code]!)), 0);
  const started = performance.now();
  const controller = new AbortController();
  const ctx: TaskContext = {
    id,
    name,
    queue: data.queue,
    attempt: batch.attempt[i]!,
    signal: controller.signal,
    get cancelled() {
      return Atomics.load(flags, abortIndex(slot)) !== 0;
    },
    throwIfCancelled() {
      const c = Atomics.load(flags, abortIndex(slot));
      if (c !== 0) throw controller.signal.aborted ? controller.signal.reason : abortError(ABORT_REASONS[c]!);
    },
    heartbeat() {
      Atomics.store(flags, heartbeatIndex(slot), 1);
      Atomics.add(flags, HEARTBEAT_GEN, 1);
      Atomics.notify(flags, HEARTBEAT_GEN);
    },
    progress(value: unknown) {
      const message: ProgressMessage = { kind: 'rhythm:progress', slot, id, attempt: batch.attempt[i]!, json: encodeProgress(value) };
      parentPort!.postMessage(message);
    },
  };
  let value: unknown;
  let pending: Promise<void>;
  try {
    value = handler(payload, ctx);
    if (typeof (value as PromiseLike<unknown> | undefined)?.then !== 'function') {
      return record(out, i, succeeded(value), performance.now() - started);
    }
    // Promise.resolve: a thenable's own then() may throw or misbehave; it must not escape.
    pending = Promise.resolve(value as PromiseLike<unknown>).then(
      (v) => record(out, i, succeeded(v), performance.now() - started),
      (err) => record(out, i, failed(err), performance.now() - started),
    );
  } catch (err) {
    return record(out, i, failed(err), performance.now() - started);
  }
  watch(slot, controller);
  return pending.finally(() => watched.delete(slot));
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
