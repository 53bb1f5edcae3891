/**
 * The thread side: Piscina loads this file in each thread. It runs a micro-batch of tasks
 * and returns their results in one message. Synchronous handlers run one after another;
 * async ones overlap. A thread holds more than one batch, so it goes from one to the next
 * without waiting for the main thread. Before starting a task it claims the task's slot
 * (see contract/flags.ts): a task withdrawn meanwhile (cancelled, or sent to an idle thread) is
 * skipped. Every registered task module is imported as the thread starts (the pool's warm-up
 * waits for that, so a module that cannot load stops the worker's start), once per thread.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { abortError, failed, succeeded, ABORT_REASONS } from '../contract/attempt.js';
import {
  abortIndex,
  heartbeatIndex,
  stateIndex,
  stateWord,
  threadIndex,
  viewFlags,
  epochNow,
  CANCEL_GEN,
  HEARTBEAT_GEN,
  QUEUED,
  RUNNING,
  DONE,
} from '../contract/flags.js';
import {
  FAILED,
  SKIPPED,
  SUCCEEDED,
  type ModuleProblem,
  type ProgressMessage,
  type RunnerData,
  type ThreadBatch,
  type ThreadResults,
} from './protocol.js';
import { encodeProgress } from '../contract/progress-value.js';
import type { AttemptResult } from '../contract/executor.js';
import { ModuleLoadError } from '../errors.js';
import { isTypeScript } from './thread-exec.js';
import type { TaskContext, TaskHandler } from '../types.js';

const data = workerData as RunnerData;
const { ints: flags, startedAt } = viewFlags(data.flags, data.slots);
const handlers = new Map<string, TaskHandler | Error>();
const loads = new Map<string, Promise<TaskHandler | Error>>();
const watched = new Map<number, AbortController>();
let watching = false;

// Import every registered module now, while the thread has nothing else to do.
for (const module of new Set(data.modules)) startLoad(module);

/** Piscina's named entry 'warm': waits for this thread's imports, and lists the ones that failed. */
export async function warm(): Promise<ModuleProblem[]> {
  const problems: ModuleProblem[] = [];
  for (const [i, module] of data.modules.entries()) {
    const h = handlers.get(module) ?? (await loads.get(module));
    if (h instanceof Error) problems.push({ name: data.names[i]!, module, message: h.message });
  }
  return problems;
}

function startLoad(module: string): Promise<TaskHandler | Error> {
  const load = loadHandler(module).then((h) => {
    handlers.set(module, h);
    loads.delete(module);
    return h;
  });
  loads.set(module, load);
  return load;
}

export default async function runBatch(batch: ThreadBatch): Promise<ThreadResults> {
  const ids = batch.ids.split(',');
  const payloads = JSON.parse(batch.payloads) as unknown[];
  const n = ids.length;
  // The three columns share one buffer: each buffer costs the clone of the reply far more
  // than its bytes do (a one-task reply with three took twice as long as with one).
  const buffer = new ArrayBuffer(10 * n);
  const out: ThreadResults = {
    status: new Uint8Array(buffer, 8 * n, n),
    retryable: new Uint8Array(buffer, 9 * n, n),
    texts: new Array<string>(n),
    ms: new Float64Array(buffer, 0, n),
  };
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const done = runTask(batch, i, ids[i]!, payloads[i], out);
    if (done) pending.push(done);
  }
  await Promise.all(pending);
  return out;
}

function record(out: ThreadResults, batch: ThreadBatch, i: number, result: AttemptResult, ms: number): undefined {
  out.ms[i] = ms;
  if (result.ok) {
    out.status[i] = SUCCEEDED;
    out.texts[i] = result.resultJson;
  } else {
    out.status[i] = FAILED;
    out.retryable[i] = result.retryable ? 1 : 0;
    out.texts[i] = result.errorJson;
  }
  const ticket = batch.ticket[i]!;
  // Compare-and-set: if the slot was already given to another task (ours was killed and its
  // thread is going away), it is not ours to mark.
  Atomics.compareExchange(flags, stateIndex(batch.slot[i]!), stateWord(ticket, RUNNING), stateWord(ticket, DONE));
  return undefined;
}

/** Claims the task's slot for this thread; false if the task was withdrawn. */
function claim(batch: ThreadBatch, i: number): boolean {
  const slot = batch.slot[i]!;
  const queued = stateWord(batch.ticket[i]!, QUEUED);
  if (Atomics.compareExchange(flags, stateIndex(slot), queued, stateWord(batch.ticket[i]!, RUNNING)) !== queued) return false;
  Atomics.store(flags, threadIndex(slot), threadId);
  return true;
}

/** Runs task i of the batch; returns a promise only if it has to wait (a module load, an async handler). */
function runTask(batch: ThreadBatch, i: number, id: string, payload: unknown, out: ThreadResults): Promise<void> | undefined {
  const module = data.modules[batch.task[i]!]!;
  const handler = handlers.get(module);
  // Another task is loading the module: wait, unclaimed (still the pool's to give elsewhere).
  const loading = handler === undefined ? loads.get(module) : undefined;
  if (loading) return loading.then(() => runTask(batch, i, id, payload, out));
  if (!claim(batch, i)) {
    out.status[i] = SKIPPED;
    return undefined;
  }
  if (handler !== undefined) return runClaimed(batch, i, id, payload, out, handler);
  // Claimed before its module loads: a module that kills the thread as it loads is this task's fault.
  return startLoad(module).then((h) => runClaimed(batch, i, id, payload, out, h));
}

/**
 * The handler's view of its attempt: prototype methods, and an AbortController only if the
 * handler asks for ctx.signal (most CPU loops read ctx.cancelled, a word of shared memory).
 */
class ThreadContext implements TaskContext {
  readonly queue = data.queue;
  readonly #slot: number;
  readonly #ticket: number;
  #controller: AbortController | undefined;
  /** Set once the handler is awaiting: a signal asked for from then on must be watched. */
  #pending = false;
  constructor(
    readonly id: string,
    readonly name: string,
    readonly attempt: number,
    slot: number,
    ticket: number,
  ) {
    this.#slot = slot;
    this.#ticket = ticket;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const controller = (this.#controller = new AbortController());
      const code = Atomics.load(flags, abortIndex(this.#slot));
      if (code !== 0) controller.abort(abortError(ABORT_REASONS[code]!));
      else if (this.#pending) watch(this.#slot, controller);
    }
    return this.#controller.signal;
  }
  get cancelled(): boolean {
    return Atomics.load(flags, abortIndex(this.#slot)) !== 0;
  }
  throwIfCancelled(): void {
    const c = Atomics.load(flags, abortIndex(this.#slot));
    if (c !== 0) throw this.#controller?.signal.aborted ? this.#controller.signal.reason : abortError(ABORT_REASONS[c]!);
  }
  heartbeat(): void {
    Atomics.store(flags, heartbeatIndex(this.#slot), 1);
    Atomics.add(flags, HEARTBEAT_GEN, 1);
    Atomics.notify(flags, HEARTBEAT_GEN);
  }
  progress(value: unknown): void {
    const message: ProgressMessage = { kind: 'rhythm:progress', slot: this.#slot, ticket: this.#ticket, json: encodeProgress(value) };
    parentPort!.postMessage(message);
  }
  /** The handler returned a promise: from now on its signal follows the shared flag. */
  awaiting(): void {
    this.#pending = true;
    if (this.#controller !== undefined && !this.#controller.signal.aborted) watch(this.#slot, this.#controller);
  }
}

function runClaimed(
  batch: ThreadBatch,
  i: number,
  id: string,
  payload: unknown,
  out: ThreadResults,
  handler: TaskHandler | Error,
): Promise<void> | undefined {
  if (handler instanceof Error) return record(out, batch, i, failed(handler), 0);
  const slot = batch.slot[i]!;
  const code = Atomics.load(flags, abortIndex(slot));
  // Asked to stop before it started (cancelled or timed out while queued): do not start it.
  if (code !== 0) return record(out, batch, i, failed(abortError(ABORT_REASONS[code]!)), 0);
  startedAt[slot] = epochNow();
  const started = performance.now();
  const ctx = new ThreadContext(id, data.names[batch.task[i]!]!, batch.attempt[i]!, slot, batch.ticket[i]!);
  let value: unknown;
  let pending: Promise<void>;
  try {
    value = handler(payload, ctx);
    if (typeof (value as PromiseLike<unknown> | undefined)?.then !== 'function') {
      return record(out, batch, i, succeeded(value), performance.now() - started);
    }
    // What the thread spent on it is the synchronous part: while it awaits, the thread runs
    // others. Batches are sized by that, so waiting tasks (I/O) travel many to a message.
    const busyMs = performance.now() - started;
    // Promise.resolve: a thenable's own then() may throw or misbehave; it must not escape.
    pending = Promise.resolve(value as PromiseLike<unknown>).then(
      (v) => record(out, batch, i, succeeded(v), busyMs),
      (err) => record(out, batch, i, failed(err), busyMs),
    );
  } catch (err) {
    return record(out, batch, i, failed(err), performance.now() - started);
  }
  ctx.awaiting();
  return pending.finally(() => watched.delete(slot));
}

async function loadHandler(url: string): Promise<TaskHandler | Error> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (err) {
    const hint =
      (err as NodeJS.ErrnoException)?.code === 'ERR_UNKNOWN_FILE_EXTENSION' && isTypeScript(url)
        ? ' (threads load TypeScript through tsx: install it in the app, `npm install tsx`, or register the compiled .js file)'
        : '';
    return new ModuleLoadError(`task module ${url} failed to load: ${(err as Error)?.message ?? err}${hint}`, { cause: err });
  }
  const handler = typeof mod.default === 'function' ? mod.default : mod.handler;
  if (typeof handler !== 'function') {
    return new ModuleLoadError(`task module ${url} has no handler: export a function as default or as "handler"`);
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
