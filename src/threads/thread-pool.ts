/**
 * One Piscina pool per threaded Worker: queue partitioning by thread pool.
 *
 * A message to a thread costs about as much as a no-op task, so small tasks travel in
 * micro-batches, sized by the measured run time of each task name (a moving average): tasks
 * that take well under TARGET_BATCH_MS share a message, a long task travels alone, and a
 * batch never holds more than its share of what is waiting, so every thread gets some.
 *
 * Each thread holds up to BATCHES_PER_THREAD batches (Piscina's concurrentTasksPerWorker):
 * one running, the others waiting in the thread, so a thread that finishes a batch starts
 * the next at once instead of waiting for the main thread, which on busy cores may not be
 * scheduled for milliseconds. Work waiting in a thread is not lost to the pool: each task
 * has a slot in shared memory (contract/flags.ts), and the main thread can withdraw a task a thread
 * has not started (a cancellation ends it at once; an idle thread is given the waiting tasks
 * of a busy one, so the last tasks of a run spread over every thread).
 */
import { Piscina } from 'piscina';
import { abortError, failed, ABORT_CODES, ABORT_REASONS } from '../contract/attempt.js';
import {
  abortIndex,
  heartbeatIndex,
  stateIndex,
  stateWord,
  threadIndex,
  createFlags,
  viewFlags,
  CANCEL_GEN,
  HEARTBEAT_GEN,
  QUEUED,
  RUNNING,
  WITHDRAWN,
  TICKET_MASK,
  type Flags,
} from '../contract/flags.js';
import {
  SKIPPED,
  SUCCEEDED,
  type ModuleProblem,
  type ProgressMessage,
  type RunnerData,
  type ThreadBatch,
  type ThreadResults,
} from './protocol.js';
import type { AttemptResult, AttemptRun, Executor, RunHooks } from '../contract/executor.js';
import type { ClaimedTask } from '../sql/claim.js';
import { ThreadCrashError, type AbortReason } from '../errors.js';
import type { Logger } from 'pino';
import type { ResourceLimits } from 'node:worker_threads';
import { isTypeScript, threadExecArgv } from './thread-exec.js';
import { MAX_BATCH, TARGET_BATCH_MS, tasksPerBatch } from '../dispatcher/sizing.js';
import type { QueueMetrics, ThreadGaugeSource } from '../observability/metrics.js';

// Run from source (tests, tsx), this file is thread-pool.ts and the runner beside it is too.
const RUNNER = new URL(import.meta.url.endsWith('.ts') ? './runner.ts' : './runner.js', import.meta.url).href;
/** Batches a thread holds: one running, the rest waiting behind it. */
const BATCHES_PER_THREAD = 3;
const KILLED_DETAIL = 'it ignored its abort signal, so its thread was terminated';

export interface ThreadPoolOptions {
  queue: string;
  threads: number;
  /** Most tasks held at once (the dispatcher's limit): one shared-memory slot each. */
  slots: number;
  resourceLimits?: ResourceLimits;
  /** Node flags for the threads (default: this process's, less those threads refuse). */
  execArgv?: string[];
  /** process.env of the threads (default: a copy of this process's). */
  env?: Record<string, string>;
  /** Where to record batch metrics and busy threads; none if absent. */
  metrics?: QueueMetrics;
}

class SentBatch {
  constructor(readonly runs: ThreadRun[]) {}
}

class ThreadRun implements AttemptRun {
  /** The batch it was last sent in. */
  batch: SentBatch | undefined;
  handed = false;
  done = false;
  /** Withdrawn before it was sent: skipped when batches are made. */
  dropped = false;

  constructor(
    private readonly pool: ThreadPool,
    readonly task: ClaimedTask,
    readonly slot: number,
    public ticket: number,
    readonly hooks: RunHooks,
  ) {}

  startedAt(): number | undefined {
    return this.done ? undefined : this.pool.startedAt(this);
  }
  abort(reason: AbortReason): void {
    this.pool.abort(this, reason);
  }
  kill(reason: AbortReason): void {
    this.pool.kill(this, reason);
  }
}

export class ThreadPool implements Executor, ThreadGaugeSource {
  private readonly piscina: Piscina<ThreadBatch, ThreadResults>;
  private readonly taskIndex: Map<string, number>;
  private readonly flags: Flags;
  private readonly ints: Int32Array;
  private readonly tickets: Int32Array;
  private readonly freeSlots: number[];
  private readonly bySlot: (ThreadRun | undefined)[];
  /** Runs not yet sent, oldest first, from `head` on; some may be dropped. */
  private pending: ThreadRun[] = [];
  private head = 0;
  /** Runs in `pending` that are not dropped. */
  private waiting = 0;
  private readonly sent = new Set<SentBatch>();
  private readonly msPerTask = new Map<string, number>();
  /** Average run time over all names, to guess how many tasks a batch will take. */
  private msAverage: number | undefined;
  private readonly maxOutstanding: number;
  /** Threads terminated on purpose (a handler that ignored its abort): nothing they ran was at fault. */
  private readonly killedThreads = new Set<number>();
  /** Per dead thread: how many tasks it was running when it died (counted once, on its first failed batch). */
  private readonly runningAtDeath = new Map<number, number>();
  private flushScheduled = false;
  private closed = false;
  private readonly metrics: QueueMetrics | undefined;

  constructor(
    modules: ReadonlyMap<string, string>,
    options: ThreadPoolOptions,
    private readonly log: Logger,
  ) {
    const buffer = createFlags(options.slots);
    this.flags = viewFlags(buffer, options.slots);
    this.ints = this.flags.ints;
    this.tickets = new Int32Array(options.slots);
    this.taskIndex = new Map([...modules.keys()].map((name, i) => [name, i]));
    this.freeSlots = Array.from({ length: options.slots }, (_, i) => options.slots - 1 - i);
    this.bySlot = new Array(options.slots);
    this.maxOutstanding = options.threads * BATCHES_PER_THREAD;
    this.piscina = new Piscina({
      filename: RUNNER,
      minThreads: options.threads,
      maxThreads: options.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: BATCHES_PER_THREAD,
      resourceLimits: options.resourceLimits,
      execArgv: threadExecArgv(options.execArgv, isTypeScript(RUNNER) || [...modules.values()].some(isTypeScript)),
      env: options.env,
      workerData: {
        flags: buffer,
        slots: options.slots,
        queue: options.queue,
        names: [...modules.keys()],
        modules: [...modules.values()],
      } satisfies RunnerData,
    });
    this.piscina.on('error', (err) => this.log.error({ err }, 'thread pool error'));
    this.piscina.on('message', (m: ProgressMessage) => this.progressFromThread(m));
    this.metrics = options.metrics;
    this.metrics?.pools.add(this);
    void this.watchHeartbeats();
  }

  /** Threads running a batch now (read at scrape time). */
  busyThreads(): number {
    return this.closed ? 0 : this.piscina.threads.length - this.piscina.idleThreads;
  }

  start(task: ClaimedTask, _queue: string, hooks: RunHooks): AttemptRun {
    const slot = this.freeSlots.pop();
    if (slot === undefined) throw new Error('thread pool has no free slot: the dispatcher claimed beyond its capacity');
    const ticket = this.nextTicket(slot);
    Atomics.store(this.ints, abortIndex(slot), 0);
    Atomics.store(this.ints, heartbeatIndex(slot), 0);
    Atomics.store(this.ints, threadIndex(slot), 0);
    this.flags.startedAt[slot] = 0;
    Atomics.store(this.ints, stateIndex(slot), stateWord(ticket, QUEUED));
    const run = new ThreadRun(this, task, slot, ticket, hooks);
    this.bySlot[slot] = run;
    this.pending.push(run);
    this.waiting++;
    this.scheduleFlush();
    return run;
  }

  /**
   * Waits until a thread has imported every registered module; lists those that failed. Each
   * thread starts importing them as it starts, so the first task does not pay for it.
   */
  async warm(): Promise<ModuleProblem[]> {
    const piscina = this.piscina as unknown as Piscina<undefined, ModuleProblem[]>;
    return piscina.run(undefined, { name: 'warm' });
  }

  room(): number {
    const perBatch = this.tasksPerBatch();
    return Math.max(0, (this.maxOutstanding - this.sent.size) * perBatch - this.waiting);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.metrics?.pools.delete(this);
    Atomics.add(this.ints, HEARTBEAT_GEN, 1);
    Atomics.notify(this.ints, HEARTBEAT_GEN);
    for (const run of this.takePending(Number.POSITIVE_INFINITY)) this.resolve(run, failed(abortError('shutdown')));
    await this.piscina.destroy();
  }

  /** The handler's start time, once a thread has started it. */
  startedAt(run: ThreadRun): number | undefined {
    const at = this.flags.startedAt[run.slot]!;
    if (at === 0 || Atomics.load(this.ints, stateIndex(run.slot)) >>> 2 !== run.ticket) return undefined;
    return at;
  }

  abort(run: ThreadRun, reason: AbortReason): void {
    if (run.done) return;
    Atomics.store(this.ints, abortIndex(run.slot), ABORT_CODES[reason]);
    Atomics.add(this.ints, CANCEL_GEN, 1);
    Atomics.notify(this.ints, CANCEL_GEN);
    // Not started yet: it ends now, instead of when its thread reaches it.
    if (this.withdraw(run)) this.resolve(run, failed(abortError(reason)));
  }

  kill(run: ThreadRun, reason: AbortReason): void {
    if (run.done) return;
    if (this.withdraw(run)) {
      this.resolve(run, failed(abortError(reason)));
      return;
    }
    // Finished on its thread, its result on the way: nothing to stop.
    if (Atomics.load(this.ints, stateIndex(run.slot)) !== stateWord(run.ticket, RUNNING)) return;
    const thread = Atomics.load(this.ints, threadIndex(run.slot));
    this.killedThreads.add(thread);
    this.resolve(run, failed(abortError(reason, KILLED_DETAIL)));
    // Piscina replaces the thread, and fails the batches it held: see batchFailed. (Not an
    // AbortSignal per batch: Piscina gives a thread only one abortable task at a time.)
    void this.piscina.threads.find((w) => w.threadId === thread)?.terminate();
  }

  /**
   * A thread's ctx.progress() arrives on its own channel, possibly after the task's result:
   * it counts only if the slot still holds that attempt (same ticket, not finished).
   */
  private progressFromThread(m: ProgressMessage): void {
    if (m?.kind !== 'rhythm:progress') return;
    const run = this.bySlot[m.slot];
    if (run && !run.done && run.ticket === m.ticket) run.hooks.progress(m.json);
  }

  /** Takes back a run no thread has started; false if one has (or it is done). */
  private withdraw(run: ThreadRun): boolean {
    if (run.done) return false;
    if (run.batch === undefined) {
      run.dropped = true;
      this.waiting--;
      return true;
    }
    const queued = stateWord(run.ticket, QUEUED);
    return Atomics.compareExchange(this.ints, stateIndex(run.slot), queued, stateWord(run.ticket, WITHDRAWN)) === queued;
  }

  private nextTicket(slot: number): number {
    const ticket = (this.tickets[slot]! + 1) & TICKET_MASK;
    this.tickets[slot] = ticket;
    return ticket;
  }

  /** Gives a run that will be sent again a new ticket, so no batch it was in can start it. */
  private reissue(run: ThreadRun): void {
    run.ticket = this.nextTicket(run.slot);
    Atomics.store(this.ints, threadIndex(run.slot), 0);
    this.flags.startedAt[run.slot] = 0;
    Atomics.store(this.ints, stateIndex(run.slot), stateWord(run.ticket, QUEUED));
  }

  /** `runMs`: the handler's run time as its thread measured it, when it reported one. */
  private resolve(run: ThreadRun, result: AttemptResult, runMs?: number): void {
    if (run.done) return;
    run.done = true;
    this.bySlot[run.slot] = undefined;
    this.freeSlots.push(run.slot);
    run.hooks.finished(result, runMs);
  }

  private tasksPerBatch(): number {
    return tasksPerBatch(this.msAverage);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Up to `limit` runs from the front of pending, by estimated cost. */
  private takePending(limit: number, budgetMs = Number.POSITIVE_INFINITY): ThreadRun[] {
    const runs: ThreadRun[] = [];
    let cost = 0;
    const pending = this.pending;
    while (runs.length < limit && this.head < pending.length) {
      const run = pending[this.head]!;
      if (run.dropped || run.done) {
        this.head++;
        continue;
      }
      // Unmeasured names count as long until their first result arrives.
      const est = this.msPerTask.get(run.task.name) ?? TARGET_BATCH_MS;
      if (runs.length > 0 && cost + est > budgetMs) break;
      this.head++;
      this.waiting--;
      runs.push(run);
      cost += est;
    }
    if (this.head === pending.length) {
      this.pending = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > pending.length) {
      this.pending = pending.slice(this.head);
      this.head = 0;
    }
    return runs;
  }

  private flush(): void {
    if (this.closed) return;
    while (this.sent.size < this.maxOutstanding && this.waiting > 0) {
      const share = Math.ceil(this.waiting / (this.maxOutstanding - this.sent.size));
      const runs = this.takePending(Math.min(share, MAX_BATCH), TARGET_BATCH_MS);
      if (runs.length > 0) this.send(runs);
    }
    this.balance();
  }

  /**
   * With nothing left to send and a thread idle, give it half of the tasks still waiting
   * inside the others (the last of them: their thread would reach them last).
   */
  private balance(): void {
    if (this.waiting > 0 || this.closed || this.sent.size === 0) return;
    const idle = this.piscina.idleThreads;
    if (idle === 0) return;
    const waitingInThreads: ThreadRun[] = [];
    for (const batch of this.sent) {
      for (const run of batch.runs) {
        if (run.batch === batch && !run.done && Atomics.load(this.ints, stateIndex(run.slot)) === stateWord(run.ticket, QUEUED))
          waitingInThreads.push(run);
      }
    }
    if (waitingInThreads.length === 0) return;
    const moved: ThreadRun[] = [];
    for (const run of waitingInThreads.slice(Math.floor(waitingInThreads.length / 2))) {
      const queued = stateWord(run.ticket, QUEUED);
      const ticket = (this.tickets[run.slot]! + 1) & TICKET_MASK;
      if (Atomics.compareExchange(this.ints, stateIndex(run.slot), queued, stateWord(ticket, QUEUED)) !== queued) continue;
      this.tickets[run.slot] = ticket;
      run.ticket = ticket;
      moved.push(run);
    }
    const per = Math.ceil(moved.length / idle);
    for (let i = 0; i < moved.length; i += per) this.send(moved.slice(i, i + per));
  }

  private send(runs: ThreadRun[]): void {
    const batch = new SentBatch(runs);
    const n = runs.length;
    // Four views of one buffer: the structured clone pays per buffer far more than per byte
    // (one buffer instead of four halves it for a batch of one task, as 10 ms tasks travel).
    const ints = new Int32Array(4 * n);
    const message: ThreadBatch = {
      task: ints.subarray(0, n),
      slot: ints.subarray(n, 2 * n),
      ticket: ints.subarray(2 * n, 3 * n),
      attempt: ints.subarray(3 * n),
      ids: '',
      payloads: '',
    };
    const ids: string[] = new Array(n);
    const payloads: string[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const r = runs[i]!;
      r.batch = batch;
      message.task[i] = this.taskIndex.get(r.task.name)!;
      message.slot[i] = r.slot;
      message.ticket[i] = r.ticket;
      message.attempt[i] = r.task.attempt;
      ids[i] = r.task.id;
      payloads[i] = r.task.payloadJson;
    }
    message.ids = ids.join(',');
    message.payloads = `[${payloads.join(',')}]`;
    this.sent.add(batch);
    this.metrics?.batchSent(n);
    for (const r of runs) {
      if (r.handed) continue;
      r.handed = true;
      r.hooks.handedOff();
    }
    this.piscina
      .run(message)
      .then(
        (out) => this.received(batch, out),
        (err) => this.batchFailed(batch, err),
      )
      .finally(() => {
        this.sent.delete(batch);
        this.flush();
      });
  }

  private received(batch: SentBatch, out: ThreadResults): void {
    const runs = batch.runs;
    for (let i = 0; i < runs.length; i++) {
      const run = runs[i]!;
      const status = out.status[i]!;
      if (status === SKIPPED || run.batch !== batch) continue;
      const ms = out.ms[i]!;
      const name = run.task.name;
      const prev = this.msPerTask.get(name);
      this.msPerTask.set(name, prev === undefined ? ms : prev * 0.8 + ms * 0.2);
      this.msAverage = this.msAverage === undefined ? ms : this.msAverage * 0.9 + ms * 0.1;
      this.resolve(
        run,
        status === SUCCEEDED
          ? { ok: true, resultJson: out.texts[i]! }
          : { ok: false, errorJson: out.texts[i]!, retryable: out.retryable[i] === 1 },
        ms,
      );
    }
  }

  /**
   * The batch did not come back: its thread died (a crash, process.exit, resourceLimits, or
   * our own kill, which also ends the thread's other batches), or the pool is closing. Each
   * task still ours is judged by its slot: never started, or finished with its result lost
   * with the thread, it is sent again; running when the thread died, it is at fault if it
   * was the only task that thread was running (its attempt fails), else it is run again
   * alone, since we cannot tell which one was.
   */
  private batchFailed(batch: SentBatch, err: unknown): void {
    const unfinished = batch.runs.filter((r) => r.batch === batch && !r.done);
    if (unfinished.length === 0) return;
    if (this.closed) {
      for (const r of unfinished) this.resolve(r, failed(abortError('shutdown')));
      return;
    }
    const again: ThreadRun[] = [];
    const alone: ThreadRun[] = [];
    for (const run of unfinished) {
      const state = Atomics.load(this.ints, stateIndex(run.slot));
      if (state !== stateWord(run.ticket, RUNNING)) {
        again.push(run);
        continue;
      }
      const thread = Atomics.load(this.ints, threadIndex(run.slot));
      if (thread !== 0 && !this.killedThreads.has(thread) && this.countRunningAtDeath(thread) === 1) {
        const e = err instanceof Error ? err : new Error(String(err));
        this.resolve(run, failed(new ThreadCrashError(`the thread running this task died: ${e.message}`, { cause: e })));
      } else {
        alone.push(run);
      }
    }
    if (again.length + alone.length > 0) {
      this.log.warn(
        { err, tasks: again.length + alone.length, alone: alone.length },
        'a thread died under a batch; sending its unfinished tasks again (those it was running, each on its own)',
      );
    }
    for (const run of [...again, ...alone]) {
      // A run already asked to stop is not started again: it ends as aborted.
      const code = Atomics.load(this.ints, abortIndex(run.slot));
      if (code !== 0) {
        this.resolve(run, failed(abortError(ABORT_REASONS[code]!)));
        continue;
      }
      this.reissue(run);
      run.batch = undefined;
    }
    for (const run of alone) if (!run.done) this.send([run]);
    const requeue = again.filter((r) => !r.done);
    if (requeue.length > 0) {
      // Ahead of what has not been sent yet: these were claimed first.
      this.pending = [...requeue, ...this.pending.slice(this.head)];
      this.head = 0;
      this.waiting += requeue.length;
    }
  }

  private countRunningAtDeath(thread: number): number {
    let count = this.runningAtDeath.get(thread);
    if (count === undefined) {
      count = 0;
      for (const run of this.bySlot) {
        if (run === undefined || run.done) continue;
        if (
          Atomics.load(this.ints, threadIndex(run.slot)) === thread &&
          Atomics.load(this.ints, stateIndex(run.slot)) === stateWord(run.ticket, RUNNING)
        )
          count++;
      }
      this.runningAtDeath.set(thread, count);
    }
    return count;
  }

  /** Threads raise a flag on ctx.heartbeat(); pass the request on to the dispatcher. */
  private async watchHeartbeats(): Promise<void> {
    while (!this.closed) {
      const gen = Atomics.load(this.ints, HEARTBEAT_GEN);
      for (let slot = 0; slot < this.bySlot.length; slot++) {
        if (Atomics.load(this.ints, heartbeatIndex(slot)) === 0) continue;
        Atomics.store(this.ints, heartbeatIndex(slot), 0);
        this.bySlot[slot]?.hooks.heartbeat();
      }
      const wait = Atomics.waitAsync(this.ints, HEARTBEAT_GEN, gen);
      if (wait.async) await wait.value;
    }
  }
}
