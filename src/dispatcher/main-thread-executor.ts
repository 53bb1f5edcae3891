/**
 * Runs handler functions on the main thread: the executor for I/O-bound tasks.
 * This is the hottest path for small tasks, so it allocates little: one object per attempt
 * (the run, which is also the handler's context), the AbortController only if the handler
 * reads ctx.signal or an abort arrives, and a synchronous handler's result is reported
 * without a promise.
 */
import { abortError, failed, succeeded } from '../contract/attempt.js';
import { encodeProgress } from '../contract/progress-value.js';
import type { AttemptResult, AttemptRun, Executor, RunHooks } from '../contract/executor.js';
import type { ClaimedTask } from '../sql/claim.js';
import type { TaskContext, TaskHandler } from '../types.js';
import type { AbortReason } from '../errors.js';
import { epochNow } from '../contract/flags.js';
import { callInSpan } from '../observability/tracing.js';

/** The handler's view of its attempt: prototype methods, no closures per task. */
class Context implements TaskContext {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  readonly attempt: number;
  readonly #run: MainThreadRun;
  constructor(run: MainThreadRun) {
    this.id = run.task.id;
    this.name = run.task.name;
    this.queue = run.queue;
    this.attempt = run.task.attempt;
    this.#run = run;
  }
  get signal(): AbortSignal {
    return this.#run.signal();
  }
  get cancelled(): boolean {
    return this.#run.controller?.signal.aborted ?? false;
  }
  throwIfCancelled(): void {
    this.#run.controller?.signal.throwIfAborted();
  }
  heartbeat(): void {
    this.#run.hooks.heartbeat();
  }
  progress(value: unknown): void {
    this.#run.hooks.progress(encodeProgress(value));
  }
}

class MainThreadRun implements AttemptRun {
  controller: AbortController | undefined;
  private settled = false;
  private readonly started = epochNow();

  constructor(
    readonly task: ClaimedTask,
    readonly queue: string,
    readonly hooks: RunHooks,
  ) {}

  signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }

  run(handler: TaskHandler): void {
    this.hooks.handedOff();
    try {
      const span = this.hooks.span?.();
      const payload = JSON.parse(this.task.payloadJson);
      const value = span === undefined ? handler(payload, new Context(this)) : callInSpan(span, handler, payload, new Context(this));
      if (typeof (value as PromiseLike<unknown> | undefined)?.then === 'function') {
        (value as PromiseLike<unknown>).then(
          (v) => this.settle(succeeded(v)),
          (err) => this.settle(failed(err)),
        );
      } else {
        this.settle(succeeded(value));
      }
    } catch (err) {
      this.settle(failed(err));
    }
  }

  startedAt(): number {
    return this.started;
  }
  abort(reason: AbortReason): void {
    (this.controller ??= new AbortController()).abort(abortError(reason));
  }
  // A main-thread handler cannot be stopped: its attempt is abandoned and its result ignored.
  kill(reason: AbortReason): void {
    this.settle(failed(abortError(reason, 'the handler ignored its abort signal and was abandoned')));
  }

  private settle(result: AttemptResult): void {
    if (this.settled) return;
    this.settled = true;
    this.hooks.finished(result);
  }
}

export class MainThreadExecutor implements Executor {
  constructor(private readonly handlers: ReadonlyMap<string, TaskHandler>) {}

  start(task: ClaimedTask, queue: string, hooks: RunHooks): AttemptRun {
    const run = new MainThreadRun(task, queue, hooks);
    run.run(this.handlers.get(task.name)!);
    return run;
  }

  room(): number {
    return Number.POSITIVE_INFINITY;
  }

  async close(): Promise<void> {}
}
