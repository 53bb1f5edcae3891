/**
 * One Piscina pool per threaded Worker: queue partitioning by thread pool.
 *
 * A message to a thread costs about as much as a no-op task (ANCHORS.md: ~24k/s with one
 * run() per task, ~850k/s in batches of 128), so small tasks travel in micro-batches. Batches
 * are sized by the measured run time of each task name (a moving average): tasks that take
 * well under TARGET_BATCH_MS share a message, a long task travels alone, and a batch never
 * holds more than its share of what is waiting, so both threads stay busy.
 * At most `threads * 2` batches are out at once: one running and one waiting per thread.
 */
import { Piscina } from 'piscina';
import { abortError, failed, ABORT_CODES, ABORT_REASONS } from '../dispatcher/attempt.js';
import { abortIndex, heartbeatIndex, createFlags, CANCEL_GEN, HEARTBEAT_GEN } from './flags.js';
import type { AttemptResult, AttemptRun, Executor } from '../dispatcher/executor.js';
import type { ClaimedTask } from '../sql/claim.js';
import type { ProgressMessage, RunnerData, ThreadBatch, ThreadResults } from './protocol.js';
import type { AbortReason } from '../errors.js';
import type { Logger } from 'pino';
import type { ResourceLimits } from 'node:worker_threads';

const RUNNER = new URL('./runner.js', import.meta.url).href;
const MAX_BATCH = 256;
/** Batches aim to run about this long on a thread. */
const TARGET_BATCH_MS = 5;

export interface ThreadPoolOptions {
  queue: string;
  threads: number;
  /** Most tasks held at once (the dispatcher's capacity): one shared-memory slot each. */
  slots: number;
  resourceLimits?: ResourceLimits;
}

interface PendingRun {
  task: ClaimedTask;
  slot: number;
  resolve: (r: AttemptResult) => void;
  requestHeartbeat: () => void;
  reportProgress: (json: string) => void;
  batch?: SentBatch;
  onSent?: () => void;
  done: boolean;
}

interface SentBatch {
  runs: PendingRun[];
  controller: AbortController;
  /** Runs in this batch being killed: their thread is terminated on purpose. */
  killed?: Map<PendingRun, AbortReason>;
}

export class ThreadPool implements Executor {
  private readonly piscina: Piscina<ThreadBatch, ThreadResults>;
  private readonly taskIndex: Map<string, number>;
  private readonly flags: Int32Array;
  private readonly freeSlots: number[];
  private readonly bySlot: (PendingRun | undefined)[];
  private readonly pending: PendingRun[] = [];
  private readonly msPerTask = new Map<string, number>();
  private readonly maxOutstanding: number;
  private outstanding = 0;
  private flushScheduled = false;
  private closed = false;

  constructor(modules: ReadonlyMap<string, string>, options: ThreadPoolOptions, private readonly log: Logger) {
    this.flags = createFlags(options.slots);
    this.taskIndex = new Map([...modules.keys()].map((name, i) => [name, i]));
    this.freeSlots = Array.from({ length: options.slots }, (_, i) => options.slots - 1 - i);
    this.bySlot = new Array(options.slots);
    this.maxOutstanding = options.threads * 2;
    this.piscina = new Piscina({
      filename: RUNNER,
      minThreads: options.threads,
      maxThreads: options.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      resourceLimits: options.resourceLimits,
      workerData: {
        flags: this.flags.buffer as SharedArrayBuffer,
        queue: options.queue,
        names: [...modules.keys()],
        modules: [...modules.values()],
      } satisfies RunnerData,
    });
    this.piscina.on('error', (err) => this.log.error({ err }, 'thread pool error'));
    this.piscina.on('message', (m: ProgressMessage) => this.progressFromThread(m));
    void this.watchHeartbeats();
  }

  start(task: ClaimedTask, _queue: string, requestHeartbeat: () => void, reportProgress: (json: string) => void): AttemptRun {
    const slot = this.freeSlots.pop();
    if (slot === undefined) throw new Error('thread pool has no free slot: the dispatcher claimed beyond its capacity');
    Atomics.store(this.flags, abortIndex(slot), 0);
    Atomics.store(this.flags, heartbeatIndex(slot), 0);
    let resolve!: (r: AttemptResult) => void;
    const result = new Promise<AttemptResult>((r) => (resolve = r));
    const run: PendingRun = { task, slot, resolve, requestHeartbeat, reportProgress, done: false };
    run.resolve = (r) => {
      if (run.done) return;
      run.done = true;
      this.bySlot[slot] = undefined;
      this.freeSlots.push(slot);
      resolve(r);
    };
    this.bySlot[slot] = run;
    this.pending.push(run);
    this.scheduleFlush();
    return {
      result,
      whenStarted: (cb) => {
        if (run.batch) cb();
        else run.onSent = cb;
      },
      abort: (reason) => {
        if (run.done) return;
        Atomics.store(this.flags, abortIndex(slot), ABORT_CODES[reason]);
        Atomics.add(this.flags, CANCEL_GEN, 1);
        Atomics.notify(this.flags, CANCEL_GEN);
      },
      kill: (reason) => this.kill(run, reason),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    Atomics.add(this.flags, HEARTBEAT_GEN, 1);
    Atomics.notify(this.flags, HEARTBEAT_GEN);
    await this.piscina.destroy();
  }

  private kill(run: PendingRun, reason: AbortReason): void {
    if (run.done) return;
    const detail = 'it ignored its abort signal, so its thread was terminated';
    if (run.batch === undefined) {
      this.pending.splice(this.pending.indexOf(run), 1);
      run.resolve(failed(abortError(reason, detail)));
      return;
    }
    (run.batch.killed ??= new Map()).set(run, reason);
    run.batch.controller.abort(abortError(reason, detail));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.outstanding < this.maxOutstanding && this.pending.length > 0) {
      const share = Math.ceil(this.pending.length / (this.maxOutstanding - this.outstanding));
      const limit = Math.min(share, MAX_BATCH);
      const runs: PendingRun[] = [];
      let cost = 0;
      while (runs.length < limit && this.pending.length > 0) {
        // Unmeasured names count as long until their first result arrives.
        const est = this.msPerTask.get(this.pending[0]!.task.name) ?? TARGET_BATCH_MS;
        if (runs.length > 0 && cost + est > TARGET_BATCH_MS) break;
        runs.push(this.pending.shift()!);
        cost += est;
      }
      this.send(runs);
    }
  }

  private send(runs: PendingRun[]): void {
    const batch: SentBatch = { runs, controller: new AbortController() };
    for (const r of runs) {
      r.batch = batch;
      const onSent = r.onSent;
      r.onSent = undefined; // once: a run re-sent after a thread crash has started already
      onSent?.();
    }
    this.outstanding++;
    const n = runs.length;
    const message: ThreadBatch = { task: new Int32Array(n), slot: new Int32Array(n), attempt: new Int32Array(n), ids: '', payloads: '' };
    const ids: string[] = new Array(n);
    const payloads: string[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const r = runs[i]!;
      message.task[i] = this.taskIndex.get(r.task.name)!;
      message.slot[i] = r.slot;
      message.attempt[i] = r.task.attempt;
      ids[i] = r.task.id;
      payloads[i] = r.task.payloadJson;
    }
    message.ids = ids.join(',');
    message.payloads = `[${payloads.join(',')}]`;
    this.piscina
      .run(message, { signal: batch.controller.signal })
      .then(
        (out) => {
          for (let i = 0; i < n; i++) {
            const run = runs[i]!;
            const ms = out.ms[i]!;
            const prev = this.msPerTask.get(run.task.name);
            this.msPerTask.set(run.task.name, prev === undefined ? ms : prev * 0.8 + ms * 0.2);
            run.resolve(out.ok[i] ? { ok: true, resultJson: out.texts[i]! } : { ok: false, errorJson: out.texts[i]!, retryable: out.retryable[i] === 1 });
          }
        },
        (err) => this.batchFailed(batch, err),
      )
      .finally(() => {
        this.outstanding--;
        if (!this.closed) this.flush();
      });
  }

  /**
   * The thread died under the batch (a crash, process.exit, resourceLimits, or our own kill).
   * Alone, the task fails and is retried like any failure. In a batch, we cannot tell which
   * task was at fault, so each unfinished one is run again on its own.
   */
  private batchFailed(batch: SentBatch, err: unknown): void {
    const killedDetail = 'it ignored its abort signal, so its thread was terminated';
    for (const [run, reason] of batch.killed ?? []) run.resolve(failed(abortError(reason, killedDetail)));
    const unfinished = batch.runs.filter((r) => !r.done);
    if (unfinished.length === 0) return;
    if (unfinished.length === 1 && !batch.killed) {
      const e = err instanceof Error ? err : new Error(String(err));
      const crash = new Error(`the thread running this task died: ${e.message}`, { cause: e });
      crash.name = 'ThreadCrashError';
      unfinished[0]!.resolve(failed(crash));
      return;
    }
    if (this.closed) {
      for (const r of unfinished) r.resolve(failed(abortError('shutdown')));
      return;
    }
    this.log.warn({ err, tasks: unfinished.length }, 'a thread died under a batch; re-running its unfinished tasks one by one');
    for (const r of unfinished) {
      // A run already asked to stop is not started again: it ends as aborted.
      const code = Atomics.load(this.flags, abortIndex(r.slot));
      if (code !== 0) r.resolve(failed(abortError(ABORT_REASONS[code]!)));
      else this.send([r]);
    }
  }

  /**
   * A thread's ctx.progress() arrives on its own channel, possibly after the task's result:
   * it counts only if the slot still holds that attempt.
   */
  private progressFromThread(m: ProgressMessage): void {
    if (m?.kind !== 'rhythm:progress') return;
    const run = this.bySlot[m.slot];
    if (run && !run.done && run.task.id === m.id && run.task.attempt === m.attempt) run.reportProgress(m.json);
  }

  /** Threads raise a flag on ctx.heartbeat(); pass the request on to the dispatcher. */
  private async watchHeartbeats(): Promise<void> {
    while (!this.closed) {
      const gen = Atomics.load(this.flags, HEARTBEAT_GEN);
      for (let slot = 0; slot < this.bySlot.length; slot++) {
        if (Atomics.load(this.flags, heartbeatIndex(slot)) === 0) continue;
        Atomics.store(this.flags, heartbeatIndex(slot), 0);
        this.bySlot[slot]?.requestHeartbeat();
      }
      const wait = Atomics.waitAsync(this.flags, HEARTBEAT_GEN, gen);
      if (wait.async) await wait.value;
    }
  }
}
