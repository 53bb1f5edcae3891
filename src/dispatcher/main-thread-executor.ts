/** Runs handler functions on the main thread: the executor for I/O-bound tasks. */
import { abortError, failed, succeeded } from './attempt.js';
import type { AttemptResult, AttemptRun, Executor } from './executor.js';
import type { ClaimedTask } from '../sql/claim.js';
import type { TaskContext, TaskHandler } from '../types.js';

export class MainThreadExecutor implements Executor {
  constructor(private readonly handlers: ReadonlyMap<string, TaskHandler>) {}

  start(task: ClaimedTask, queue: string, requestHeartbeat: () => void): AttemptRun {
    const controller = new AbortController();
    const { signal } = controller;
    let abandon!: (r: AttemptResult) => void;
    const abandoned = new Promise<AttemptResult>((resolve) => (abandon = resolve));
    const ctx: TaskContext = {
      id: task.id,
      name: task.name,
      queue,
      attempt: task.attempt,
      signal,
      get cancelled() {
        return signal.aborted;
      },
      throwIfCancelled: () => signal.throwIfAborted(),
      heartbeat: requestHeartbeat,
    };
    const handler = this.handlers.get(task.name)!;
    const run = async (): Promise<AttemptResult> => {
      try {
        return succeeded(await handler(JSON.parse(task.payloadJson), ctx));
      } catch (err) {
        return failed(err);
      }
    };
    return {
      result: Promise.race([run(), abandoned]),
      abort: (reason) => controller.abort(abortError(reason)),
      kill: (reason) => abandon(failed(abortError(reason, 'the handler ignored its abort signal and was abandoned'))),
    };
  }

  async close(): Promise<void> {}
}
