/**
 * The main-thread dispatcher of one Worker: claims batches sized to its free capacity, hands
 * each task to its executor, keeps leases alive, enforces timeouts, forwards cancellations,
 * and passes outcomes to the batched completer.
 *
 * It sleeps until something can change what it would do: a NOTIFY for its queue, freed
 * capacity, the fallback poll, or stop. A claim that came back full means more may be
 * waiting, so it claims again at once; never a busy loop.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { claimWithin, type ClaimedTask } from '../sql/claim.js';
import { extendLeases } from '../sql/heartbeat.js';
import type { Backoff, Outcome } from '../sql/settle.js';
import type { SchemaNames } from '../db/schema.js';
import type { Listener } from '../db/listener.js';
import { Completer, type Pending } from './completer.js';
import type { AttemptResult, AttemptRun, Executor } from './executor.js';
import type { AbortReason } from '../errors.js';
import { retryDelayMs } from '../backoff.js';
import { failed } from './attempt.js';
import { ProgressWriter } from './progress-writer.js';
import { cancelledEvent, settledEvents, type EventSink } from './events.js';

/** Tasks still running, beyond those being written, for the completer to batch its writes. */
const BUSY_RUNNING = 16;
/** How long a cancellation is remembered for a claim whose reply arrives after it. */
const CANCEL_MEMORY_MS = 10_000;

export interface DispatcherConfig {
  queue: string;
  workerId: string;
  /** Executor per task name this worker serves; it claims only these names. */
  executors: ReadonlyMap<string, Executor>;
  capacity: number;
  /** Most payload bytes held at once (one task larger than this runs alone). */
  maxHeldBytes: number;
  batchSize: number;
  pollIntervalMs: number;
  leaseMs: number;
  abortGraceMs: number;
  /** Receives an event per execution outcome (see events.ts); none if absent. */
  events?: EventSink;
}

export interface DispatcherDeps {
  /** Settles and hand-backs: synchronous commit. */
  pool: pg.Pool;
  /** Claims and heartbeats: asynchronous commit (see Rhythm.leasePool). */
  leasePool: pg.Pool;
  names: SchemaNames;
  listener: Listener;
  log: Logger;
  backoff: Backoff;
}

interface InFlight {
  task: ClaimedTask;
  run: AttemptRun;
  /** Set when we asked the handler to stop; decides how a failure is recorded. */
  abortReason?: AbortReason;
  /** Timeout and kill timers, created only for tasks that have them. */
  timers?: NodeJS.Timeout[];
  /** The outcome is with the completer: no more aborts, the lease is about to be released. */
  settling: boolean;
}

export class Dispatcher {
  /**
   * Held attempts by lease token, not by execution id: after a lease expiry the same execution
   * can be claimed again while this process still runs its earlier attempt.
   */
  private readonly inFlight = new Map<string, InFlight>();
  /** Claimed tasks that could not start, until their failure is written (for their events). */
  private readonly unstarted = new Map<string, ClaimedTask>();
  /** Cancellations that may arrive before the claim they cancel (id -> time seen). */
  private readonly recentlyCancelled = new Map<string, number>();
  private nextHeartbeatAt = Number.POSITIVE_INFINITY;
  /** Payload bytes of the tasks in inFlight. */
  private heldBytes = 0;
  /** The last claim left tasks for want of bytes: wait until some are freed. */
  private bytesBlocked = false;
  private readonly completer: Completer;
  /** Batches ctx.progress() writes of the held tasks. */
  private readonly progress: ProgressWriter;
  private readonly names: string[];
  private readonly lowWater: number;
  private stopping = false;
  private mayHaveWork = true;
  private wakeup: (() => void) | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatSoon = false;
  private drainWaiters: (() => void)[] = [];
  private loopDone: Promise<void> = Promise.resolve();
  private resolveStopped!: () => void;
  private readonly stopped = new Promise<void>((r) => (this.resolveStopped = r));
  private readonly detach: () => void;

  constructor(private readonly config: DispatcherConfig, private readonly deps: DispatcherDeps) {
    this.names = [...config.executors.keys()];
    this.lowWater = Math.max(1, Math.floor(Math.min(config.batchSize, config.capacity) / 4));
    this.progress = new ProgressWriter(deps.leasePool, deps.names, deps.log);
    this.completer = new Completer(
      deps.pool,
      deps.names,
      deps.backoff,
      deps.log,
      (items) => this.written(items),
      () => !this.stopping && this.inFlight.size - this.completer.pending >= BUSY_RUNNING,
      config.events &&
        ((settled, items) => {
          const taskOf = (token: string) => this.inFlight.get(token)?.task ?? this.unstarted.get(token);
          settledEvents(config.events!, config.queue, settled, items, taskOf, deps.log);
        }),
    );
    const onWork = (queue: string) => {
      if (queue === config.queue) this.poke();
    };
    const onCancel = (ids: string[]) => {
      const now = Date.now();
      for (const [id, at] of this.recentlyCancelled) if (now - at > CANCEL_MEMORY_MS) this.recentlyCancelled.delete(id);
      const wanted = new Set(ids);
      for (const id of ids) this.recentlyCancelled.set(id, now);
      for (const f of this.inFlight.values()) if (wanted.has(f.task.id)) this.abort(f, 'cancelled');
    };
    const onReconnect = () => {
      this.poke();
      this.scheduleHeartbeat(0);
    };
    deps.listener.on('work', onWork);
    deps.listener.on('cancel', onCancel);
    deps.listener.on('reconnect', onReconnect);
    this.detach = () => {
      deps.listener.off('work', onWork);
      deps.listener.off('cancel', onCancel);
      deps.listener.off('reconnect', onReconnect);
    };
  }

  /** Runs until stop() has finished: every held task settled or handed back, outcomes written. */
  async run(): Promise<void> {
    this.pollTimer = setInterval(() => this.poke(), this.config.pollIntervalMs);
    this.scheduleHeartbeat();
    this.loopDone = this.claimLoop().finally(() => clearInterval(this.pollTimer));
    await this.loopDone;
    await this.stopped;
  }

  /** Stops claiming; lets in-flight tasks finish for up to timeoutMs, then aborts and hands back the rest. */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.wake();
    }
    // No time to finish: abort what is held now, not after a claim in flight returns (which,
    // on a connection that went silent, is its whole read timeout away).
    if (timeoutMs === 0) for (const f of this.inFlight.values()) this.abort(f, 'shutdown');
    // A claim in flight may still add tasks: wait for the loop to exit before counting.
    await this.loopDone;
    const drained = this.whenDrained();
    const timeout = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
    if ((await Promise.race([drained, timeout(timeoutMs)])) === 'timeout') {
      this.deps.log.warn({ queue: this.config.queue, tasks: this.inFlight.size }, 'shutdown timeout: aborting in-flight tasks and handing their leases back');
      // abort() kills (or abandons) whatever ignores its signal for abortGraceMs.
      for (const f of this.inFlight.values()) this.abort(f, 'shutdown');
      await drained;
    }
    await this.completer.drain();
    await this.progress.close();
    clearTimeout(this.heartbeatTimer);
    this.detach();
    this.resolveStopped();
  }

  /** Gives up on writes that cannot reach the database (a forced exit). */
  abandonWrites(): void {
    this.completer.abandon();
  }

  private async claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const free = this.config.capacity - this.inFlight.size;
      const holding = this.inFlight.size > 0;
      const bytesFree = this.config.maxHeldBytes - this.heldBytes;
      if (!this.mayHaveWork || free < (holding ? this.lowWater : 1) || (holding && (this.bytesBlocked || bytesFree <= 0))) {
        await new Promise<void>((r) => (this.wakeup = r));
        continue;
      }
      this.mayHaveWork = false; // a NOTIFY during the claim sets it again
      const limit = Math.min(free, this.config.batchSize);
      let tasks: ClaimedTask[];
      try {
        const claim = await claimWithin(
          this.deps.leasePool, this.deps.names, this.config.queue, this.names,
          { count: limit, bytes: Math.max(0, bytesFree), allowOversized: !holding },
          this.config.workerId, this.config.leaseMs,
        );
        tasks = claim.tasks;
        this.bytesBlocked = claim.cutByBytes;
        if (claim.cutByBytes) this.mayHaveWork = true;
        failures = 0;
      } catch (err) {
        const delay = retryDelayMs(failures++);
        this.deps.log.warn({ err, queue: this.config.queue, retryInMs: delay }, 'claim failed; retrying');
        this.mayHaveWork = true;
        await new Promise((r) => setTimeout(r, delay));
        continue;
      }
      if (tasks.length === limit) this.mayHaveWork = true;
      for (const task of tasks) this.begin(task);
    }
  }

  private begin(task: ClaimedTask): void {
    let run: AttemptRun;
    try {
      run = this.config.executors.get(task.name)!.start(
        task, this.config.queue, () => this.scheduleHeartbeat(0), (json) => this.progress.report(task.id, task.leaseToken, json),
      );
    } catch (err) {
      // A failed attempt, not a hand-back: whatever made the start throw would do it again,
      // and a hand-back does not count the attempt, so the task would loop forever.
      this.deps.log.error({ err, id: task.id }, 'could not start a claimed task; failing the attempt');
      const { errorJson } = failed(err) as { errorJson: string };
      if (this.config.events) this.unstarted.set(task.leaseToken, task);
      this.completer.add({ settlement: { id: task.id, leaseToken: task.leaseToken, outcome: 'failed', resultJson: null, errorJson } });
      return;
    }
    const f: InFlight = { task, run, settling: false };
    this.inFlight.set(task.leaseToken, f);
    this.heldBytes += task.payloadBytes;
    const { timeoutMs } = task;
    if (timeoutMs !== null) {
      run.whenStarted(() => {
        if (!f.settling) (f.timers ??= []).push(setTimeout(() => this.abort(f, 'timeout'), timeoutMs));
      });
    }
    if (this.stopping) this.abort(f, 'shutdown');
    else if (this.recentlyCancelled.has(task.id)) this.abort(f, 'cancelled');
    // A per-task lease shorter than the worker's needs its first extension sooner.
    if (performance.now() + task.leaseMs / 3 < this.nextHeartbeatAt) this.scheduleHeartbeat(Math.floor(task.leaseMs / 3));
    run.result.then((r) => this.finished(f, r));
  }

  private abort(f: InFlight, reason: AbortReason): void {
    if (f.settling || f.abortReason !== undefined) return;
    f.abortReason = reason;
    f.run.abort(reason);
    // A handler that ignores its signal is killed (thread) or abandoned (main thread).
    (f.timers ??= []).push(setTimeout(() => f.run.kill(reason), this.config.abortGraceMs));
  }

  private finished(f: InFlight, result: AttemptResult): void {
    if (f.timers) for (const t of f.timers) clearTimeout(t);
    f.settling = true;
    const { id, leaseToken } = f.task;
    const reason = f.abortReason;
    if (reason === 'cancelled' || reason === 'lease-lost') {
      // The execution was already settled elsewhere (cancel, or recovery after expiry).
      if (reason === 'cancelled' && this.config.events) cancelledEvent(this.config.events, this.config.queue, f.task, this.deps.log);
      this.forget(leaseToken);
      this.freed();
      return;
    }
    if (reason === 'shutdown' && !result.ok) {
      this.completer.add({ release: { id, leaseToken } });
      return;
    }
    let outcome: Outcome;
    if (result.ok) outcome = 'completed';
    else outcome = result.retryable ? 'failed' : 'fatal';
    this.completer.add({
      settlement: {
        id,
        leaseToken,
        outcome,
        resultJson: result.ok ? result.resultJson : null,
        errorJson: result.ok ? null : result.errorJson,
      },
    });
  }

  /** The completer wrote these outcomes: their capacity is free again. */
  private written(items: Pending[]): void {
    for (const item of items) {
      const token = (item.settlement?.leaseToken ?? item.release?.leaseToken)!;
      this.forget(token);
      this.unstarted.delete(token);
    }
    this.freed();
  }

  private forget(leaseToken: string): void {
    const f = this.inFlight.get(leaseToken);
    if (!f) return;
    this.inFlight.delete(leaseToken);
    this.heldBytes -= f.task.payloadBytes;
    this.bytesBlocked = false;
  }

  private freed(): void {
    if (this.inFlight.size === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
    this.wake();
  }

  private whenDrained(): Promise<void> {
    return this.inFlight.size === 0 ? Promise.resolve() : new Promise((r) => this.drainWaiters.push(r));
  }

  private poke(): void {
    this.mayHaveWork = true;
    this.wake();
  }

  private wake(): void {
    const w = this.wakeup;
    this.wakeup = undefined;
    w?.();
  }

  /** Extends every held lease in one statement, every third of the lease (or sooner on request). */
  private scheduleHeartbeat(delayMs?: number): void {
    if (delayMs === 0) {
      if (this.heartbeatSoon) return;
      this.heartbeatSoon = true;
    }
    clearTimeout(this.heartbeatTimer);
    const delay = delayMs ?? this.heartbeatInterval();
    this.nextHeartbeatAt = performance.now() + delay;
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatSoon = false;
      void this.heartbeat().finally(() => {
        if (!this.stopping || this.inFlight.size > 0) this.scheduleHeartbeat();
      });
    }, delay);
  }

  private heartbeatInterval(): number {
    let lease = this.config.leaseMs;
    for (const f of this.inFlight.values()) lease = Math.min(lease, f.task.leaseMs);
    return Math.max(10, Math.floor(lease / 3));
  }

  private async heartbeat(): Promise<void> {
    const held = [...this.inFlight.values()].filter((f) => !f.settling);
    if (held.length === 0) return;
    let kept: Set<string>;
    try {
      kept = await extendLeases(
        this.deps.leasePool,
        this.deps.names,
        held.map((f) => f.task.id),
        held.map((f) => f.task.leaseToken),
        this.config.leaseMs,
      );
    } catch (err) {
      this.deps.log.warn({ err, queue: this.config.queue }, 'heartbeat failed; will retry at the next tick');
      return;
    }
    for (const f of held) {
      if (!kept.has(f.task.leaseToken) && !f.settling) {
        this.deps.log.warn({ id: f.task.id, name: f.task.name }, 'lease lost (cancelled or taken over); aborting the handler');
        this.abort(f, 'lease-lost');
      }
    }
  }
}
