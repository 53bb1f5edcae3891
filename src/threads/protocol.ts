/**
 * Messages between a ThreadPool and its runner threads: one message carries a micro-batch.
 * Batches and results are columnar (typed arrays, joined strings): Piscina structured-clones
 * every message, and cloning an array of objects cost more than running no-op tasks.
 */

/** Fixed for the pool's life, so batches refer to tasks by index. */
export interface RunnerData {
  flags: SharedArrayBuffer;
  slots: number;
  queue: string;
  /** Task names and their module URLs, in index order. */
  names: string[];
  modules: string[];
}

export interface ThreadBatch {
  /** Index into RunnerData.names, per task. */
  task: Int32Array;
  /** Shared-memory flag slot, per task. */
  slot: Int32Array;
  /** The slot's ticket when the task was sent: the thread runs it only if it still holds (see flags.ts). */
  ticket: Int32Array;
  attempt: Int32Array;
  /** Execution ids, comma-separated. */
  ids: string;
  /** The payloads as one JSON array. */
  payloads: string;
}

/**
 * Posted by a thread on ctx.progress(): the pool passes it to the dispatcher. The slot's
 * ticket names the attempt, so a report arriving after its task finished counts for nothing.
 */
export interface ProgressMessage {
  kind: 'rhythm:progress';
  slot: number;
  ticket: number;
  json: string;
}

export const FAILED = 0;
export const SUCCEEDED = 1;
/** Not run by this thread: withdrawn before it started. */
export const SKIPPED = 2;

/** Per task, in batch order. */
export interface ThreadResults {
  /** FAILED, SUCCEEDED or SKIPPED. */
  status: Uint8Array;
  retryable: Uint8Array;
  /** The result JSON if it succeeded, the error JSON if it failed. */
  texts: string[];
  /** Thread time the handler took (for an async one, until it returned its promise), to size later batches. */
  ms: Float64Array;
}

/** A registered module that a thread could not load, as the warm-up reports it. */
export interface ModuleProblem {
  name: string;
  module: string;
  message: string;
}
