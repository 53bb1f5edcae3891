/**
 * Runs handler functions on the main thread: the executor for I/O-bound tasks.
 * This is the hottest path for small tasks, so it allocates little: the AbortController is
 * created only if the handler reads ctx.signal or an abort arrives, and a synchronous
 * handler's result is settled without an extra promise hop.
 */
import { abortError, failed, succeeded } from './attempt.js';
import { encodeProgress } from './progress-value.js';
import type { AttemptResult, AttemptRun, Executor } from './executor.js';
import type { ClaimedTask } from '../sql/claim.js';
import type { TaskContext, TaskHandler } from '../types.js';
import type { AbortReason } from '../errors.js';

export class MainThreadExecutor implements Executor {
  constructor(private readonly handlers: ReadonlyMap<string, TaskHandler>) {}

  start(task: ClaimedTask, queue: string, requestHeartbeat: () => void, reportProgress: (json: string) => void): AttemptRun {
    let controller: AbortController | undefined;
    let settle!: (r: AttemptResult) => void;
    let settled = false;
    const result = new Promise<AttemptResult>((resolve) => {
      settle = (r) => {
        if (settled) return;
        settled = true;
        resolve(r);
      };
    });
    const ctx: TaskContext = {
      id: task.id,
      name: task.name,
      queue,
      attempt: task.attempt,
      get signal() {
        return (controller ??= new AbortController()).signal;
      },
      get cancelled() {
        return controller?.signal.aborted ?? false;
      },
      throwIfCancelled: () => controller?.signal.throwIfAborted(),
      heartbeat: requestHeartbeat,
      progress: (value: unknown) => reportProgress(encodeProgress(value)),
    };
    try {
      const value = this.handlers.get(task.name)!(JSON.parse(task.payloadJson), ctx);
      if (typeof (value as PromiseLike<unknown> | undefined)?.then === 'function') {
        (value as PromiseLike<unknown>).then(
          (v) => settle(succeeded(v)),
          (err) => settle(failed(err)),
        );
      } else {
        settle(succeeded(value));
      }
    } catch (err) {
      settle(failed(err));
    }
    return {
      result,
      whenStarted: (cb) => cb(),
      abort: (reason: AbortReason) => (controller ??= new AbortController()).abort(abortError(reason)),
      // A main-thread handler cannot be stopped: its attempt is abandoned and its result ignored.
      kill: (reason: AbortReason) => settle(failed(abortError(reason, 'the handler ignored its abort signal and was abandoned'))),
    };
  }

  async close(): Promise<void> {}
}
