/**
 * Messages between a ThreadPool and its runner threads: one message carries a micro-batch.
 * Batches and results are columnar (typed arrays, joined strings): Piscina structured-clones
 * every message, and cloning an array of objects cost more than running no-op tasks.
 */

/** Fixed for the pool's life, so batches refer to tasks by index. */
export interface RunnerData {
  flags: SharedArrayBuffer;
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
  attempt: Int32Array;
  /** Execution ids, comma-separated. */
  ids: string;
  /** The payloads as one JSON array. */
  payloads: string;
}

/** Posted by a thread on ctx.progress(): the pool passes it to the dispatcher. */
export interface ProgressMessage {
  kind: 'rhythm:progress';
  slot: number;
  id: string;
  attempt: number;
  json: string;
}

/** Per task, in batch order. */
export interface ThreadResults {
  ok: Uint8Array;
  retryable: Uint8Array;
  /** The result JSON if ok, else the error JSON. */
  texts: string[];
  /** Handler run time, to size later batches. */
  ms: Float64Array;
}
