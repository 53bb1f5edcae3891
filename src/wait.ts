/**
 * wait() and waitMany(): resolved from `done` notifications, without polling, with one
 * listener for all calls. Every read they need (the first look at an execution, the re-read
 * once it is announced done, the re-read of everything after a reconnect) joins one set of
 * ids to read, and those are read in batches: ten thousand concurrent waits cost a few dozen
 * statements rather than ten thousand. A batch is issued as soon as none is in flight, so a
 * lone wait() is read at once; while one runs, the next batch gathers.
 *
 * Deadlines run from the call, not from the first read: a wait with a timeout ends on time
 * even when the database cannot answer. They share one timer (see Deadlines), which costs far
 * less than a timer per call.
 *
 * A read that fails because the database is unreachable is retried: only the caller's
 * timeout ends a wait.
 */
import { retryDelayMs } from './backoff.js';
import { isConnectionError } from './db/errors.js';
import type { Listener } from './db/listener.js';
import { RhythmError, WaitTimeoutError } from './errors.js';
import type { FinishedRead } from './sql/finished.js';
import type { Execution } from './types.js';

/** Reads that failed on the connection are retried with this backoff (see backoff.ts). */
const READ_RETRY = { baseMs: 500, maxMs: 5_000 };
/** Most ids in one read statement. */
export const READ_BATCH = 1_000;
/**
 * Least time between the starts of consecutive reads, unless a whole batch is waiting: the
 * window a stream of completions gathers in. It grows with the size of the last read, reaching
 * READ_WINDOW_MS at WINDOW_FULL_AT ids, so a lone wait() (its first look, then its re-read when
 * done) is not held back, while a stream of thousands of completions a second still
 * gathers into reads of a hundred ids or more.
 */
const READ_WINDOW_MS = 20;
const WINDOW_FULL_AT = 100;

/** How long after a read of `lastReadIds` ids the next read may start. */
export function readWindowMs(lastReadIds: number): number {
  return Math.min(READ_WINDOW_MS, (READ_WINDOW_MS * lastReadIds) / WINDOW_FULL_AT);
}
/** Statements in flight at once: a second only when a whole batch waits behind the first, or it is slow. */
const MAX_READS_IN_FLIGHT = 2;
/** A read in flight for longer than this no longer holds back the next one. */
const SLOW_READ_MS = 1_000;

/** One wait() (one id) or waitMany() (its ids in order) call. */
class Call {
  /** waitMany's results by position (wait() resolves with its one execution directly). */
  readonly results: Execution[] | undefined;
  /** Ids not yet finished. */
  remaining: number;
  /** Ids no read has looked at yet: timeoutMs 0 ends the call when this reaches 0. */
  unread: number;
  settled = false;

  constructor(
    readonly ids: readonly string[],
    readonly single: boolean,
    readonly timeoutMs: number,
    readonly deadline: number,
    // biome-ignore lint/suspicious/noExplicitAny: it is the resolve of a Promise<T> for any T (each call's own result type).
    private readonly onResolve: (value: any) => void,
    private readonly onReject: (err: unknown) => void,
  ) {
    this.results = single ? undefined : new Array(ids.length);
    this.remaining = ids.length;
    this.unread = ids.length;
  }

  /** Returns true when this filled the last position. */
  fill(index: number, e: Execution): boolean {
    if (this.results) this.results[index] = e;
    if (--this.remaining > 0) return false;
    this.settled = true;
    this.onResolve(this.results ?? e);
    return true;
  }

  isFilled(index: number): boolean {
    return this.results ? this.results[index] !== undefined : this.remaining === 0;
  }

  reject(err: unknown): void {
    this.settled = true;
    this.onReject(err);
  }

  timeoutError(): WaitTimeoutError {
    if (this.single) return new WaitTimeoutError(`execution ${this.ids[0]} did not finish within ${this.timeoutMs} ms`);
    const first = this.ids.find((_, i) => !this.isFilled(i));
    return new WaitTimeoutError(
      `${this.remaining} of ${this.ids.length} executions did not finish within ${this.timeoutMs} ms (the first in order: ${first})`,
    );
  }
}

/**
 * A call's interest in one id: one per position, so duplicates in waitMany each get theirs.
 * The slots of one id form a list (most ids have exactly one).
 */
interface Slot {
  call: Call;
  index: number;
  /** Read batches numbered up to this one were issued before the slot existed: they say nothing about it. */
  after: number;
  /** A read made since the slot existed has looked at its execution. */
  seen: boolean;
  next: Slot | undefined;
}

export class Waiters {
  private readonly byId = new Map<string, Slot>();
  /** Ids to read in the next batch (some may have lost their waiters since). */
  private readonly toRead = new Set<string>();
  private readonly deadlines = new Deadlines((call) => this.fail(call, call.timeoutError()));
  private readsInFlight = 0;
  private batchesIssued = 0;
  /** Reads failed on the connection in a row (the backoff of the next retry). */
  private readFailures = 0;
  private flushQueued = false;
  private lastReadAt = Number.NEGATIVE_INFINITY;
  private lastReadIds = 0;
  private listening = false;
  private starting: Promise<void> | undefined;
  private closedWith: Error | undefined;

  /**
   * @param listen the LISTEN connection, subscribed to `done`: no read is made before it is,
   *   so a completion between a call and its read cannot be missed.
   * @param read the batched read (on a pool of its own, so waits never queue in front of writes).
   */
  constructor(
    private readonly listen: () => Promise<Listener>,
    private readonly read: (ids: string[]) => Promise<FinishedRead>,
  ) {}

  /** Resolves with the execution once it has finished; see Rhythm.wait for timeoutMs. */
  wait(id: string, timeoutMs: number): Promise<Execution> {
    return this.register([id], true, timeoutMs);
  }

  /** Resolves with the executions in the order of ids once all have finished. */
  waitMany(ids: readonly string[], timeoutMs: number): Promise<Execution[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.register(ids, false, timeoutMs);
  }

  /** Rejects every pending call (shutdown): nothing would resolve them any more. */
  close(err: Error): void {
    this.closedWith = err;
    for (const call of this.liveCalls()) this.fail(call, err);
    this.toRead.clear();
    this.deadlines.clear();
  }

  private register<T>(ids: readonly string[], single: boolean, timeoutMs: number): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    let call!: Call;
    const promise = new Promise<T>((resolve, reject) => {
      call = new Call(ids, single, timeoutMs, performance.now() + timeoutMs, resolve, reject);
    });
    const after = this.batchesIssued;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      this.byId.set(id, { call, index: i, after, seen: false, next: this.byId.get(id) });
      this.toRead.add(id);
    }
    // timeoutMs 0 has no deadline: it ends after its one read.
    if (timeoutMs > 0) this.deadlines.add(call);
    if (this.listening) this.schedule();
    else this.startListening();
    return promise;
  }

  private startListening(): void {
    this.starting ??= this.listen().then(
      (listener) => {
        // Runs once: a successful start is kept for good (pg-listen reconnects by itself).
        listener.on('done', (ids) => {
          let hit = false;
          for (const id of ids) {
            if (this.byId.has(id)) {
              this.toRead.add(id);
              hit = true;
            }
          }
          if (hit) this.schedule();
        });
        listener.on('reconnect', () => {
          for (const id of this.byId.keys()) this.toRead.add(id);
          this.schedule();
        });
        this.listening = true;
        this.schedule();
      },
      (err: unknown) => {
        // Every call so far waited for this connection; later ones try again.
        this.starting = undefined;
        for (const call of this.liveCalls()) this.fail(call, err);
      },
    );
  }

  /**
   * Issues batches on the next turn of the event loop, so the calls of one burst share them.
   * While reads follow one another, a batch starts at most every readWindowMs (unless a
   * whole batch is waiting), so a stream of completions is read in a few large statements,
   * not one per notification; a quiet Waiters reads at once.
   */
  private schedule(): void {
    if (this.flushQueued || !this.listening || !this.mayIssue()) return;
    this.flushQueued = true;
    const wait = this.toRead.size >= READ_BATCH ? 0 : this.lastReadAt + readWindowMs(this.lastReadIds) - performance.now();
    if (wait > 0) setTimeout(this.flush, wait);
    else setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    while (this.mayIssue()) {
      const batch = this.takeBatch();
      if (batch.length === 0) break;
      this.lastReadAt = performance.now();
      this.lastReadIds = batch.length;
      void this.readBatch(batch);
    }
  };

  private mayIssue(): boolean {
    if (this.toRead.size === 0 || this.closedWith) return false;
    if (this.readsInFlight === 0) return true;
    // A second statement for a whole batch, or past a read that is taking long (a lock, a
    // connection gone silent), so later waits are not held up behind it.
    return (
      this.readsInFlight < MAX_READS_IN_FLIGHT && (this.toRead.size >= READ_BATCH || performance.now() - this.lastReadAt > SLOW_READ_MS)
    );
  }

  private takeBatch(): string[] {
    if (this.toRead.size <= READ_BATCH) {
      // All of it (the usual case): copied and cleared at once, cheaper than a walk deleting each.
      const all = Array.from(this.toRead);
      this.toRead.clear();
      let kept = 0;
      for (const id of all) if (this.byId.has(id)) all[kept++] = id;
      all.length = kept;
      return all;
    }
    const batch: string[] = [];
    for (const id of this.toRead) {
      this.toRead.delete(id);
      if (this.byId.has(id)) batch.push(id);
      if (batch.length === READ_BATCH) break;
    }
    return batch;
  }

  private async readBatch(ids: string[]): Promise<void> {
    this.readsInFlight++;
    const batchNo = ++this.batchesIssued;
    let found: FinishedRead;
    try {
      found = await this.read(ids);
    } catch (err) {
      this.readsInFlight--;
      this.readFailed(ids, err);
      this.schedule();
      return;
    }
    this.readsInFlight--;
    this.readFailures = 0;
    for (const id of ids) {
      const e = found.get(id);
      if (e === undefined) this.sawMissing(id, batchNo);
      else if (e === null) this.sawUnfinished(id, batchNo);
      else this.sawFinished(id, e);
    }
    this.schedule();
  }

  private sawFinished(id: string, e: Execution): void {
    let s = this.byId.get(id);
    this.byId.delete(id);
    for (; s; s = s.next) {
      const call = s.call;
      if (!s.seen) call.unread--;
      if (call.fill(s.index, e)) this.deadlines.settled(call);
      else this.endIfOnce(call);
    }
  }

  private sawUnfinished(id: string, batchNo: number): void {
    for (let s = this.byId.get(id); s; s = s.next) {
      if (s.seen || s.after >= batchNo || s.call.settled) continue;
      s.seen = true;
      s.call.unread--;
      this.endIfOnce(s.call);
    }
  }

  private sawMissing(id: string, batchNo: number): void {
    for (let s = this.byId.get(id); s; s = s.next) {
      if (!s.seen && s.after < batchNo && !s.call.settled) this.fail(s.call, new RhythmError(`no execution with id ${id}`));
    }
  }

  /** A call with timeoutMs 0 ends once each of its ids was read once. */
  private endIfOnce(call: Call): void {
    if (call.timeoutMs === 0 && call.unread === 0 && !call.settled) this.fail(call, call.timeoutError());
  }

  private readFailed(ids: string[], err: unknown): void {
    const retry = isConnectionError(err) && !this.closedWith;
    const calls = new Set<Call>();
    for (const id of ids) {
      for (let s = this.byId.get(id); s; s = s.next) if (!retry || s.call.timeoutMs === 0) calls.add(s.call);
    }
    // A call that may not wait (timeoutMs 0), or an error that would only repeat, ends the call.
    for (const call of calls) this.fail(call, err);
    if (!retry) return;
    setTimeout(
      () => {
        for (const id of ids) if (this.byId.has(id)) this.toRead.add(id);
        this.schedule();
      },
      retryDelayMs(this.readFailures++, READ_RETRY),
    ).unref();
  }

  /** Rejects a call and forgets its unfinished ids. */
  private fail(call: Call, err: unknown): void {
    if (call.settled) return;
    call.reject(err);
    this.deadlines.settled(call);
    for (let i = 0; i < call.ids.length; i++) {
      if (call.isFilled(i)) continue;
      const id = call.ids[i]!;
      // Unlinked in place: an unlinked slot keeps its `next`, so a walk standing on it goes on.
      let head = this.byId.get(id);
      while (head && head.call === call) head = head.next;
      if (!head) {
        this.byId.delete(id);
        continue;
      }
      this.byId.set(id, head);
      for (let prev = head; prev.next; ) {
        if (prev.next.call === call) prev.next = prev.next.next;
        else prev = prev.next;
      }
    }
  }

  private liveCalls(): Set<Call> {
    const calls = new Set<Call>();
    for (const head of this.byId.values()) for (let s: Slot | undefined = head; s; s = s.next) calls.add(s.call);
    return calls;
  }
}

/**
 * The deadlines of pending calls under one timer. Calls with the same timeout arrive in
 * deadline order, so each timeout length keeps a plain queue; the timer is set for the
 * earliest head. Settled calls are skipped when reached, and swept out when they outnumber
 * the live ones, so memory follows the pending calls.
 */
class Deadlines {
  private readonly queues = new Map<number, { calls: Call[]; head: number }>();
  private live = 0;
  private settledSinceSweep = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(private readonly expire: (call: Call) => void) {}

  add(call: Call): void {
    let q = this.queues.get(call.timeoutMs);
    if (!q) this.queues.set(call.timeoutMs, (q = { calls: [], head: 0 }));
    q.calls.push(call);
    this.live++;
    if (call.deadline < this.timerAt) this.arm(call.deadline);
  }

  /** A call settled (resolved, rejected or expired). */
  settled(call: Call): void {
    if (call.timeoutMs === 0) return;
    if (--this.live === 0) {
      this.clear();
      return;
    }
    if (++this.settledSinceSweep > 1024 && this.settledSinceSweep > this.live) this.sweep();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.queues.clear();
    this.live = 0;
    this.settledSinceSweep = 0;
  }

  private sweep(): void {
    for (const [timeoutMs, q] of this.queues) {
      const calls = q.calls.slice(q.head).filter((c) => !c.settled);
      if (calls.length === 0) this.queues.delete(timeoutMs);
      else this.queues.set(timeoutMs, { calls, head: 0 });
    }
    this.settledSinceSweep = 0;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    // Rounded up; a timer that still fires early finds nothing due and is set again.
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.ceil(at - performance.now())));
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    const due: Call[] = [];
    for (const q of this.queues.values()) {
      while (q.head < q.calls.length) {
        const c = q.calls[q.head]!;
        if (!c.settled && c.deadline > now) break;
        q.head++;
        if (!c.settled) due.push(c);
      }
    }
    // Expired after the walk: each expiry settles a call, which may sweep the queues.
    for (const c of due) if (!c.settled) this.expire(c);
    if (this.live === 0) return;
    let next = Number.POSITIVE_INFINITY;
    for (const [timeoutMs, q] of this.queues) {
      while (q.head < q.calls.length && q.calls[q.head]!.settled) q.head++;
      if (q.head === q.calls.length) this.queues.delete(timeoutMs);
      else next = Math.min(next, q.calls[q.head]!.deadline);
    }
    if (next < Number.POSITIVE_INFINITY) this.arm(next);
  }
}
