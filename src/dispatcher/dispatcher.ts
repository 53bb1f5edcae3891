/**
 * The main-thread dispatcher of one Worker: claims batches, hands each task to its executor,
 * keeps leases alive (through its LeaseKeeper), enforces timeouts, forwards cancellations, and passes outcomes to the
 * batched completer.
 *
 * Two questions are kept apart. How many handlers run at once is an executor's limit (the
 * Worker's `concurrency` for main-thread handlers; a thread pool takes what keeps its threads
 * busy). How many tasks are claimed ahead is a throughput question, answered from measures:
 * the executors' free room, plus enough to cover the measured finish rate for a couple of
 * claim round trips, so handlers never wait on a claim and a slow task is not hoarded.
 * A task's outcome being written holds its lease, not a handler's place.
 *
 * It claims when something can change what it would do: a NOTIFY for its queue, finished or
 * started tasks, the fallback poll, written outcomes. A claim that came back full means more
 * is waiting: the next claim may then start before the last one returns, so Postgres finds
 * the next batch while this thread starts the last one. Never a busy loop.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import { claimWithin, type ClaimedTask } from '../sql/claim.js';
import type { Outcome } from '../sql/settle.js';
import type { SchemaNames } from '../db/schema.js';
import type { Listener } from '../db/listener.js';
import { handedTask, makeOffer, refreshOffer, withdrawOffer, type Handoff } from '../sql/handoff.js';
import { Completer, type Pending } from './completer.js';
import type { AttemptResult, AttemptRun, Executor, RecordedResult, RunHooks } from '../contract/executor.js';
import type { AbortReason } from '../errors.js';
import { retryDelayMs, type Backoff } from '../backoff.js';
import { abortError, failed } from '../contract/attempt.js';
import { epochNow } from '../contract/flags.js';
import { claimAhead, claimCount, nextRate } from './sizing.js';
import { ProgressWriter } from './progress-writer.js';
import { LeaseKeeper } from './lease-keeper.js';
import { cancelledEvent, settledEvents, type EventSink } from './events.js';
import type { QueueMetrics, TaskSeries } from '../observability/metrics.js';
import { endAttemptSpan, startAttemptSpan, type AttemptOutcome } from '../observability/tracing.js';
import type { Settled, Settlement } from '../sql/settle.js';
import type { Span } from '@opentelemetry/api';

/** Tasks still running or waiting to start, beyond those being written, for the completer to batch its writes. */
const BUSY_RUNNING = 16;
/**
 * While busy, outcomes gather for at least BUSY_WINDOW_MIN_MS, and for slow tasks long
 * enough for about SETTLE_MIN_ROWS of them (at the measured finish rate), up to
 * BUSY_WINDOW_MAX_MS: the settle statement, its commit, its NOTIFY and the wait() reads that
 * follow it cost about the same for one row as for tens, and tasks of milliseconds would
 * otherwise pay for them a few at a time.
 */
const BUSY_WINDOW_MIN_MS = 50;
const BUSY_WINDOW_MAX_MS = 200;
const SETTLE_MIN_ROWS = 16;
/** How long a cancellation is remembered for a claim whose reply arrives after it. */
const CANCEL_MEMORY_MS = 10_000;
/** Claims at once: a second starts while the first is in flight only when the last came back full and large. */
const MAX_CLAIMS_IN_FLIGHT = 2;
const PIPELINE_MIN_CLAIM = 50;
/** An idle worker's offer stays open this much longer than its poll interval, refreshed by each idle poll. */
const OFFER_GRACE_MS = 3_000;
/** A task not yet started when its timeout would fire is checked again this often. */
const NOT_STARTED_RECHECK_MS = 10;

export interface DispatcherConfig {
  queue: string;
  workerId: string;
  /** Executor per task name this worker serves; it claims only these names. */
  executors: ReadonlyMap<string, Executor>;
  /** Most tasks handed to each executor and not finished (Infinity: it takes what it can use). */
  limits: ReadonlyMap<Executor, number>;
  /** Most tasks held at once: claimed and not yet written. */
  maxHeld: number;
  /** Most payload bytes held at once (one task larger than this runs alone). */
  maxHeldBytes: number;
  batchSize: number;
  pollIntervalMs: number;
  leaseMs: number;
  abortGraceMs: number;
  /** Most executions of one group running at once, across every process (none if absent). */
  groupConcurrency?: number;
  /** Receives an event per execution outcome (see events.ts); none if absent. */
  events?: EventSink;
  /** Where to record metrics; none if absent. */
  metrics?: QueueMetrics;
  /** Trace each attempt (an OpenTelemetry SDK is registered). */
  tracing?: boolean;
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

/** One executor's share: its limit, what it runs, what waits for it. */
class Lane {
  /** Handed to the executor and not finished. */
  active = 0;
  /** Claimed, waiting for room under the limit, from `head` on. */
  queue: Held[] = [];
  head = 0;
  constructor(
    readonly executor: Executor,
    readonly limit: number,
  ) {}

  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Tasks this lane would put to work at once if it had them. */
  room(): number {
    const free = this.limit - this.active - this.queued;
    return free <= 0 ? 0 : Math.min(free, this.executor.room());
  }
}

/** A held attempt: claimed, running or being written. */
class Held implements RunHooks {
  run: AttemptRun | undefined;
  /** Given to its executor (it may still wait there for a thread). */
  started = false;
  /** Handed to what runs it. */
  handed = false;
  /** The outcome is with the completer: no more aborts, the lease is about to be released. */
  settling = false;
  /** Set when we asked the handler to stop; decides how a failure is recorded. */
  abortReason?: AbortReason;
  /** Timeout and kill timers, created only for tasks that have them. */
  timers?: NodeJS.Timeout[];
  // Metrics and tracing state, set only when either is on. Fields of the attempt itself rather
  // than an object of their own: with metrics on, an allocation per task would cost more than
  // the recording does.
  /** When its claim returned (performance.now()). */
  claimedAt = 0;
  /** When it was handed off (performance.now()); 0 until then. */
  handedAt = 0;
  series: TaskSeries | undefined;
  attemptSpan: Span | undefined;

  constructor(
    private readonly d: Dispatcher,
    readonly task: ClaimedTask,
    readonly lane: Lane,
  ) {}

  handedOff(): void {
    this.d.handedOff(this);
  }
  finished(result: AttemptResult | RecordedResult, runMs?: number): void {
    this.d.finished(this, result, runMs);
  }
  span(): Span | undefined {
    return this.attemptSpan;
  }
  heartbeat(): void {
    this.d.heartbeatSoon();
  }
  progress(json: string): void {
    this.d.progress.report(this.task.id, this.task.leaseToken, json);
  }
}

export class Dispatcher {
  /**
   * Held attempts by lease token, not by execution id: after a lease expiry the same execution
   * can be claimed again while this process still runs its earlier attempt.
   */
  private readonly inFlight = new Map<string, Held>();
  private readonly lanes = new Map<string, Lane>();
  private readonly laneList: Lane[];
  /**
   * Cancellations that may arrive before the claim they cancel (lease token -> time seen). By
   * token, not id: a cancelled execution retried at once is a new claim that must run.
   */
  private readonly recentlyCancelled = new Map<string, number>();
  /** Payload bytes of the tasks in inFlight. */
  private heldBytes = 0;
  /** Held tasks not yet handed to what runs them. */
  private unstarted = 0;
  /** Held tasks whose outcome is with the completer. */
  private settling = 0;
  /** The last claim left tasks for want of bytes: wait until some are freed. */
  private bytesBlocked = false;
  private claimsInFlight = 0;
  /** Tasks and payload bytes the claims in flight may bring. */
  private incoming = 0;
  private reservedBytes = 0;
  /** The last claim came back full and large (more is likely waiting; worth a second claim in flight). */
  private lastFull = false;
  /** Claims start their tasks in the order they were sent (priority order), whichever returns first. */
  private claimOrder: Promise<void> = Promise.resolve();
  private claimFailures = 0;
  private claimRetryTimer: NodeJS.Timeout | undefined;
  /** Waiting for the claims in flight to return (stop). */
  private claimsIdle: (() => void)[] = [];
  /** Finish rate (tasks per ms, a moving average) and claim round trip (ms). */
  private rate = 0;
  private rateAt = performance.now();
  private finishedSinceRate = 0;
  private claimMs = 5;
  private readonly completer: Completer;
  /** Batches ctx.progress() writes of the held tasks. */
  readonly progress: ProgressWriter;
  private readonly names: string[];
  private stopping = false;
  private mayHaveWork = true;
  private pumping = false;
  private pollTimer: NodeJS.Timeout | undefined;
  /** The rate limit held tasks back: claim again when the bucket has refilled. */
  private refillTimer: NodeJS.Timeout | undefined;
  /** Extends the leases of everything in inFlight, including outcomes still being written. */
  private readonly leases: LeaseKeeper;
  private drainWaiters: (() => void)[] = [];
  private resolveStopped!: () => void;
  private readonly stopped = new Promise<void>((r) => (this.resolveStopped = r));
  private readonly detach: () => void;
  /** Metrics or tracing on: attempts record their claim and hand-off times, series and span. */
  private readonly observing: boolean;
  /**
   * Whether this dispatcher offers itself for direct hand-offs while idle (see sql/handoff.ts):
   * not with group concurrency, whose claims must take a group slot.
   */
  private readonly offers: boolean;
  private readonly offerTtlMs: number;
  /** The open offer: its key (what a hand-off names) and, once made, its lease token. */
  private offer: { key: string; token: string | undefined; refreshedAt: number } | undefined;
  /** Offer statements run one at a time: the one running (and those chained after it). */
  private offerBusy: Promise<void> | undefined;
  /** The last claim found the queue paused or rate-limited: no enqueue would take an offer. */
  private controlled = false;

  constructor(
    private readonly config: DispatcherConfig,
    private readonly deps: DispatcherDeps,
  ) {
    this.names = [...config.executors.keys()];
    const byExecutor = new Map<Executor, Lane>();
    for (const [name, executor] of config.executors) {
      let lane = byExecutor.get(executor);
      if (!lane) byExecutor.set(executor, (lane = new Lane(executor, config.limits.get(executor) ?? Number.POSITIVE_INFINITY)));
      this.lanes.set(name, lane);
    }
    this.laneList = [...byExecutor.values()];
    this.progress = new ProgressWriter(deps.leasePool, deps.names, deps.log);
    this.leases = new LeaseKeeper({
      pool: deps.leasePool,
      names: deps.names,
      leaseMs: config.leaseMs,
      queue: config.queue,
      log: deps.log,
      held: () => [...this.inFlight.values()].map((f) => f.task),
      lost: (tokens) => this.leasesLost(tokens),
    });
    const events = config.events;
    const metrics = config.metrics;
    this.observing = metrics !== undefined || config.tracing === true;
    this.offers = config.groupConcurrency === undefined;
    this.offerTtlMs = 2 * config.pollIntervalMs + OFFER_GRACE_MS;
    this.completer = new Completer(
      deps.pool,
      deps.names,
      deps.backoff,
      deps.log,
      (items) => this.written(items),
      () => this.busyWindowMs(),
      // Held attempts stay in inFlight until written, so each settled one still has its claim.
      events || metrics
        ? (settled, items) => {
            if (events) settledEvents(events, config.queue, settled, items, (token) => this.inFlight.get(token)?.task, deps.log);
            if (metrics) this.settledMetrics(settled, items);
          }
        : undefined,
    );
    const onWork = (queue: string) => {
      if (queue === config.queue) this.poke();
    };
    const onCancel = (tokens: string[]) => {
      const now = Date.now();
      for (const [token, at] of this.recentlyCancelled) if (now - at > CANCEL_MEMORY_MS) this.recentlyCancelled.delete(token);
      for (const token of tokens) {
        this.recentlyCancelled.set(token, now);
        const f = this.inFlight.get(token);
        if (f) this.abort(f, 'cancelled');
      }
    };
    const onHandoff = (h: Handoff) => {
      if (this.offer !== undefined && h.offer === this.offer.key) {
        this.offer = undefined;
        this.takeHanded(h.task);
      }
    };
    const onReconnect = () => {
      // A hand-off sent while the connection was down is lost: find out whether the offer was taken.
      if (this.offer !== undefined) void this.runOffer(() => this.withdraw());
      this.poke();
      this.leases.soon();
    };
    deps.listener.on('work', onWork);
    deps.listener.on('handoff', onHandoff);
    deps.listener.on('cancel', onCancel);
    deps.listener.on('reconnect', onReconnect);
    this.detach = () => {
      deps.listener.off('work', onWork);
      deps.listener.off('handoff', onHandoff);
      deps.listener.off('cancel', onCancel);
      deps.listener.off('reconnect', onReconnect);
    };
  }

  /** Runs until stop() has finished: every held task settled or handed back, outcomes written. */
  async run(): Promise<void> {
    this.pollTimer = setInterval(() => this.poke(), this.config.pollIntervalMs);
    this.leases.start();
    this.maybeClaim();
    await this.stopped;
  }

  /** Stops claiming; lets in-flight tasks finish for up to timeoutMs, then aborts and hands back the rest. */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      clearInterval(this.pollTimer);
      clearTimeout(this.claimRetryTimer);
      clearTimeout(this.refillTimer);
      this.completer.nudge();
    }
    // An open offer is withdrawn first; one an enqueue took already brings its task, handed
    // back with the rest below.
    const timeout = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
    if (this.offer !== undefined || this.offerBusy !== undefined)
      await Promise.race([this.runOffer(() => this.withdraw()), timeout(timeoutMs)]);
    // No time to finish: abort what is held now, not after a claim in flight returns (which,
    // on a connection that went silent, is its whole read timeout away).
    if (timeoutMs === 0) for (const f of [...this.inFlight.values()]) this.abort(f, 'shutdown');
    // A claim in flight may still add tasks: wait for it before counting.
    if (this.claimsInFlight > 0) await new Promise<void>((r) => this.claimsIdle.push(r));
    const drained = this.whenDrained();
    if ((await Promise.race([drained, timeout(timeoutMs)])) === 'timeout') {
      this.deps.log.warn(
        { queue: this.config.queue, tasks: this.inFlight.size },
        'shutdown timeout: aborting in-flight tasks and handing their leases back',
      );
      // abort() kills (or abandons) whatever ignores its signal for abortGraceMs.
      for (const f of [...this.inFlight.values()]) this.abort(f, 'shutdown');
      await drained;
    }
    await this.completer.drain();
    await this.progress.close();
    this.leases.stop();
    this.detach();
    this.resolveStopped();
  }

  /** Gives up on writes that cannot reach the database (a forced exit). */
  abandonWrites(): void {
    this.completer.abandon();
  }

  /** While this many tasks still run or wait, outcomes can gather a little before being written. */
  private busy(): boolean {
    return !this.stopping && this.inFlight.size - this.settling >= BUSY_RUNNING;
  }

  /** How long outcomes may gather before they are written (0: write at once). */
  private busyWindowMs(): number {
    if (!this.busy()) return 0;
    const rate = this.rate;
    return rate > 0 ? Math.min(BUSY_WINDOW_MAX_MS, Math.max(BUSY_WINDOW_MIN_MS, SETTLE_MIN_ROWS / rate)) : BUSY_WINDOW_MIN_MS;
  }

  /** Finishes per ms, a moving average over about RATE_WINDOW_MS. */
  private finishRate(): number {
    const now = performance.now();
    const dt = now - this.rateAt;
    if (dt >= 5) {
      this.rate = nextRate(this.rate, this.finishedSinceRate, dt);
      this.finishedSinceRate = 0;
      this.rateAt = now;
    }
    return this.rate;
  }

  /** How many tasks to claim now (0: none). */
  private claimSize(): number {
    if (this.stopping || this.claimRetryTimer !== undefined) return 0;
    if (this.claimsInFlight === 0 ? !this.mayHaveWork : !this.lastFull || this.claimsInFlight >= MAX_CLAIMS_IN_FLIGHT) return 0;
    const holding = this.inFlight.size + this.incoming > 0;
    if (holding && (this.bytesBlocked || this.config.maxHeldBytes - this.heldBytes - this.reservedBytes <= 0)) return 0;
    let room = 0;
    for (const lane of this.laneList) room += lane.room();
    return claimCount({
      room,
      ahead: claimAhead(this.finishRate(), this.claimMs),
      buffered: this.unstarted + this.incoming,
      batchSize: this.config.batchSize,
      maxHeld: this.config.maxHeld,
      held: this.inFlight.size + this.incoming,
    });
  }

  private maybeClaim(): void {
    for (let limit = this.claimSize(); limit > 0; limit = this.claimSize()) {
      const free = this.config.maxHeldBytes - this.heldBytes - this.reservedBytes;
      // With a second claim likely to follow, this one takes half of the free bytes.
      const bytes = this.claimsInFlight === 0 && this.lastFull ? Math.floor(free / 2) : free;
      const allowOversized = this.inFlight.size === 0 && this.claimsInFlight === 0;
      this.mayHaveWork = false; // a NOTIFY during the claim sets it again
      this.claimsInFlight++;
      this.incoming += limit;
      this.reservedBytes += bytes;
      void this.claim(limit, bytes, allowOversized);
    }
  }

  private async claim(limit: number, bytes: number, allowOversized: boolean): Promise<void> {
    const t0 = performance.now();
    const before = this.claimOrder;
    let done!: () => void;
    this.claimOrder = new Promise<void>((r) => (done = r));
    let tasks: ClaimedTask[] = [];
    let claimedAt = 0;
    try {
      const claim = await claimWithin(
        this.deps.leasePool,
        this.deps.names,
        this.config.queue,
        this.names,
        { count: limit, bytes: Math.max(0, bytes), allowOversized, groupConcurrency: this.config.groupConcurrency },
        this.config.workerId,
        this.config.leaseMs,
      );
      tasks = claim.tasks;
      claimedAt = performance.now();
      this.claimMs += (claimedAt - t0 - this.claimMs) * 0.2;
      this.config.metrics?.claimed(tasks.length);
      this.bytesBlocked = claim.cutByBytes;
      if (tasks.length === limit) this.mayHaveWork = true;
      this.lastFull = tasks.length === limit && limit >= PIPELINE_MIN_CLAIM;
      // Groups at their limit were skipped or another claim took their slots: the next
      // claim skips the groups now full and finds the rest.
      if (claim.cutByBytes || claim.cutByGroups) this.mayHaveWork = true;
      if (claim.refillInMs !== null) this.pokeAfter(claim.refillInMs);
      this.controlled = claim.controlled;
      this.claimFailures = 0;
    } catch (err) {
      const delay = retryDelayMs(this.claimFailures++);
      this.deps.log.warn({ err, queue: this.config.queue, retryInMs: delay }, 'claim failed; retrying');
      this.mayHaveWork = true;
      this.lastFull = false;
      if (!this.stopping) {
        clearTimeout(this.claimRetryTimer);
        this.claimRetryTimer = setTimeout(() => {
          this.claimRetryTimer = undefined;
          this.maybeClaim();
        }, delay);
      }
    }
    await before;
    this.claimsInFlight--;
    this.incoming -= limit;
    this.reservedBytes -= bytes;
    for (const task of tasks) this.begin(task, claimedAt);
    // Busy now: an offer left open would let the next single enqueue wait behind this work
    // while other workers idle, so it is closed (a task it was just given is held as well).
    if (tasks.length > 0 && this.offer !== undefined) void this.runOffer(() => this.withdraw());
    done();
    this.pump();
    if (this.claimsInFlight === 0 && this.claimsIdle.length > 0) {
      const idle = this.claimsIdle;
      this.claimsIdle = [];
      for (const r of idle) r();
    }
    this.maybeClaim();
    this.maybeOffer();
  }

  /** Idle: nothing held or being claimed, nothing known to be waiting. */
  private idleForOffer(): boolean {
    return (
      this.offers &&
      !this.controlled &&
      !this.stopping &&
      this.inFlight.size === 0 &&
      this.claimsInFlight === 0 &&
      !this.mayHaveWork &&
      this.claimRetryTimer === undefined
    );
  }

  /** While idle, keeps an offer open for the next single enqueue (made, or refreshed now and then). */
  private maybeOffer(): void {
    if (this.offerBusy !== undefined || !this.idleForOffer()) return;
    if (this.offer !== undefined && performance.now() - this.offer.refreshedAt < this.offerTtlMs / 3) return;
    void this.runOffer(() => this.offerStep());
  }

  private runOffer(step: () => Promise<void>): Promise<void> {
    const p = (this.offerBusy ?? Promise.resolve()).then(step).catch((err) => {
      this.deps.log.warn({ err, queue: this.config.queue }, 'worker offer statement failed; tasks are claimed as usual');
    });
    this.offerBusy = p;
    void p.then(() => {
      if (this.offerBusy === p) this.offerBusy = undefined;
    });
    return p;
  }

  private async offerStep(): Promise<void> {
    if (!this.idleForOffer()) return;
    const { leasePool, names } = this.deps;
    const current = this.offer;
    if (current === undefined) {
      const offer = { key: randomUUID(), token: undefined as string | undefined, refreshedAt: performance.now() };
      // Set before the statement: a hand-off can arrive before its reply.
      this.offer = offer;
      try {
        offer.token = await makeOffer(leasePool, names, {
          key: offer.key,
          queue: this.config.queue,
          names: this.names,
          workerId: this.config.workerId,
          leaseMs: this.config.leaseMs,
          ttlMs: this.offerTtlMs,
        });
      } catch (err) {
        // The offer may exist although its reply was lost: close it, and until that is known
        // still take a hand-off naming it.
        const withdrawn = await withdrawOffer(leasePool, names, offer.key).catch(() => false);
        if (withdrawn && this.offer === offer) this.offer = undefined;
        throw err;
      }
      return;
    }
    if (current.token === undefined) {
      // An offer whose statement failed and could not be closed: a hand-off on it has had time to come.
      this.offer = undefined;
      return;
    }
    current.refreshedAt = performance.now();
    if (await refreshOffer(leasePool, names, current.key, this.offerTtlMs)) return;
    // Taken: its hand-off is on its way, unless it already came.
    if (this.offer !== current) return;
    this.offer = undefined;
    await this.takeBack(current.token);
  }

  /** Closes the open offer; if an enqueue took it, its task is read back and held like any other. */
  private async withdraw(): Promise<void> {
    const offer = this.offer;
    if (offer === undefined || offer.token === undefined) return;
    // From here a hand-off naming it is ignored: the task comes from takeBack instead.
    this.offer = undefined;
    if (await withdrawOffer(this.deps.leasePool, this.deps.names, offer.key)) return;
    await this.takeBack(offer.token);
  }

  private async takeBack(leaseToken: string): Promise<void> {
    const task = await handedTask(this.deps.leasePool, this.deps.names, leaseToken, this.config.leaseMs);
    if (task !== undefined) this.takeHanded(task);
  }

  /** A task an enqueue leased to this worker's offer: held as if claimed (handed back at once when stopping). */
  private takeHanded(task: ClaimedTask): void {
    if (this.inFlight.has(task.leaseToken) || !this.lanes.has(task.name)) return;
    this.config.metrics?.claimed(1);
    this.begin(task, performance.now());
    this.pump();
  }

  private begin(task: ClaimedTask, claimedAt: number): void {
    const lane = this.lanes.get(task.name)!;
    const f = new Held(this, task, lane);
    if (this.observing) {
      f.claimedAt = claimedAt;
      f.series = this.config.metrics?.task(task.name);
    }
    this.inFlight.set(task.leaseToken, f);
    this.heldBytes += task.payloadBytes;
    this.unstarted++;
    lane.queue.push(f);
    if (this.stopping) this.abort(f, 'shutdown');
    else if (this.recentlyCancelled.has(task.leaseToken)) this.abort(f, 'cancelled');
    // A per-task lease shorter than the worker's needs its first extension sooner.
    this.leases.claimed(task.leaseMs);
  }

  /** Starts queued tasks while their lanes have room. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (const lane of this.laneList) {
        while (lane.active < lane.limit && lane.head < lane.queue.length) {
          const f = lane.queue[lane.head++]!;
          if (!f.settling) this.startOn(f);
        }
        if (lane.head === lane.queue.length) {
          lane.queue = [];
          lane.head = 0;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private startOn(f: Held): void {
    f.started = true;
    f.lane.active++;
    try {
      f.run = f.lane.executor.start(f.task, this.config.queue, f);
    } catch (err) {
      // A failed attempt, not a hand-back: whatever made the start throw would do it again,
      // and a hand-back does not count the attempt, so the task would loop forever.
      this.deps.log.error({ err, id: f.task.id }, 'could not start a claimed task; failing the attempt');
      this.finished(f, failed(err, true));
    }
  }

  handedOff(f: Held): void {
    if (f.handed || f.settling) return;
    f.handed = true;
    this.unstarted--;
    const { timeoutMs } = f.task;
    if (timeoutMs !== null) (f.timers ??= []).push(setTimeout(() => this.checkTimeout(f, timeoutMs), timeoutMs));
    if (this.observing) this.observeStart(f);
    this.maybeClaim();
  }

  /** An attempt was handed off: it counts as started, and its span begins. */
  private observeStart(f: Held): void {
    const now = performance.now();
    f.handedAt = now;
    // Due-to-claim from the database, claim-to-hand-off from our own clock.
    f.series?.start(f.task.waitedMs + (now - f.claimedAt));
    if (this.config.tracing) f.attemptSpan = startAttemptSpan(this.config.queue, f.task);
  }

  /** An attempt ended: its run time, its span's outcome (and error), a cancellation. */
  private observeEnd(f: Held, result: AttemptResult | RecordedResult, runMs: number | undefined): void {
    const reason = f.abortReason;
    if (reason === 'cancelled') f.series?.cancel();
    if (f.handedAt === 0) return; // never started: no run to time or trace
    f.series?.end(runMs ?? performance.now() - f.handedAt);
    const span = f.attemptSpan;
    if (span === undefined) return;
    let outcome: AttemptOutcome;
    let errorJson: string | null = null;
    if ('recorded' in result) outcome = 'recorded';
    else if (result.ok) outcome = 'completed';
    else {
      errorJson = result.errorJson;
      if (reason === 'cancelled' || reason === 'lease-lost' || reason === 'shutdown') outcome = reason;
      // As the settle statement decides: a retryable failure with attempts left is retried.
      else outcome = result.retryable && f.task.attempt < f.task.maxAttempts ? 'retrying' : 'failed';
    }
    endAttemptSpan(span, outcome, errorJson);
  }

  /** Counts the statuses a settle statement gave the executions of these outcomes. */
  private settledMetrics(settled: Settled[], items: Settlement[]): void {
    if (settled.length === 0) return;
    // The usual batch: every attempt written, all with one status. No map of ids needed then.
    const first = settled[0]!.status;
    let same = settled.length === items.length;
    for (let i = 1; same && i < settled.length; i++) same = settled[i]!.status === first;
    if (same) {
      for (const item of items) this.inFlight.get(item.leaseToken)?.series?.settled(first);
      return;
    }
    const status = new Map<string, string>();
    for (const s of settled) status.set(s.id, s.status);
    for (const item of items) {
      const st = status.get(item.id);
      if (st !== undefined) this.inFlight.get(item.leaseToken)?.series?.settled(st);
    }
  }

  /** Timeouts count from the handler's start, not from the hand-off (a thread may hold it queued). */
  private checkTimeout(f: Held, timeoutMs: number): void {
    if (f.settling) return;
    const started = f.run?.startedAt();
    const left = started === undefined ? NOT_STARTED_RECHECK_MS : started + timeoutMs - epochNow();
    if (started !== undefined && left <= 0) this.abort(f, 'timeout');
    else (f.timers ??= []).push(setTimeout(() => this.checkTimeout(f, timeoutMs), Math.max(1, Math.ceil(left))));
  }

  private abort(f: Held, reason: AbortReason): void {
    if (f.settling || f.abortReason !== undefined) return;
    f.abortReason = reason;
    if (!f.started) {
      // Still waiting for room: it never runs.
      this.finished(f, failed(abortError(reason)));
      return;
    }
    f.run?.abort(reason);
    // A handler that ignores its signal is killed (thread) or abandoned (main thread).
    if (!f.settling) (f.timers ??= []).push(setTimeout(() => f.run?.kill(reason), this.config.abortGraceMs));
  }

  finished(f: Held, result: AttemptResult | RecordedResult, runMs?: number): void {
    if (f.settling) return;
    if (f.timers) for (const t of f.timers) clearTimeout(t);
    if (this.observing) this.observeEnd(f, result, runMs);
    f.settling = true;
    this.settling++;
    if (!f.handed) this.unstarted--;
    if (f.started) f.lane.active--;
    this.finishedSinceRate++;
    const { id, leaseToken } = f.task;
    const reason = f.abortReason;
    if ('recorded' in result || reason === 'cancelled' || reason === 'lease-lost') {
      // Written by the executor itself, or already settled elsewhere (cancel, or recovery after expiry).
      if (reason === 'cancelled' && this.config.events) cancelledEvent(this.config.events, this.config.queue, f.task, this.deps.log);
      this.forget(leaseToken);
      this.freed();
    } else if (reason === 'shutdown' && !result.ok) {
      this.completer.add({ id, leaseToken, outcome: 'release', resultJson: null, errorJson: null });
    } else {
      let outcome: Outcome;
      if (result.ok) outcome = 'completed';
      else outcome = result.retryable ? 'failed' : 'fatal';
      this.completer.add({
        id,
        leaseToken,
        outcome,
        resultJson: result.ok ? result.resultJson : null,
        errorJson: result.ok ? null : result.errorJson,
      });
    }
    // The last tasks of a busy spell: their outcomes need not wait for the busy window.
    if (!this.busy()) this.completer.nudge();
    this.pump();
    this.maybeClaim();
  }

  /** The completer wrote these outcomes: their capacity is free again. */
  private written(items: Pending[]): void {
    for (const item of items) this.forget(item.leaseToken);
    this.freed();
  }

  private forget(leaseToken: string): void {
    const f = this.inFlight.get(leaseToken);
    if (!f) return;
    this.inFlight.delete(leaseToken);
    this.settling--;
    this.heldBytes -= f.task.payloadBytes;
    this.bytesBlocked = false;
  }

  private freed(): void {
    // A freed group slot may let a task of that group run, which no NOTIFY announces.
    if (this.config.groupConcurrency !== undefined) this.mayHaveWork = true;
    if (this.inFlight.size === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
    this.maybeClaim();
    this.maybeOffer();
  }

  private whenDrained(): Promise<void> {
    return this.inFlight.size === 0 ? Promise.resolve() : new Promise((r) => this.drainWaiters.push(r));
  }

  private poke(): void {
    this.mayHaveWork = true;
    this.maybeClaim();
  }

  /** A timer, not a poll: one claim when the rate limit's bucket holds a token again. */
  private pokeAfter(ms: number): void {
    if (this.stopping) return;
    clearTimeout(this.refillTimer);
    this.refillTimer = setTimeout(() => this.poke(), ms);
  }

  heartbeatSoon(): void {
    this.leases.soon();
  }

  private leasesLost(tokens: string[]): void {
    for (const token of tokens) {
      const f = this.inFlight.get(token);
      // A finished task's lease is gone once its outcome is written: nothing to abort.
      if (f && !f.settling) {
        this.deps.log.warn({ id: f.task.id, name: f.task.name }, 'lease lost (cancelled or taken over); aborting the handler');
        this.abort(f, 'lease-lost');
      }
    }
  }
}
