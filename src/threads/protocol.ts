/** Messages between a ThreadPool and its runner threads: one message carries a micro-batch. */
import type { AttemptResult } from '../dispatcher/executor.js';

export interface ThreadTask {
  id: string;
  name: string;
  queue: string;
  attempt: number;
  /** file: URL of the task module. */
  module: string;
  payloadJson: string;
  slot: number;
}

export interface ThreadBatch {
  tasks: ThreadTask[];
}

/** One per task, in batch order; `ms` is the handler's run time, to size later batches. */
export type ThreadResult = AttemptResult & { ms: number };

export interface RunnerData {
  flags: SharedArrayBuffer;
}
