/**
 * Shared memory between a thread pool and its threads. A CPU-bound loop on a thread cannot
 * hear an event, but it can read memory; and a thread holding batches it has not reached yet
 * must learn, without a message, that some of their tasks were cancelled or handed to another
 * thread. So each task has a slot here while it is held.
 *
 * Int32 words:
 *   [0] cancel generation: bumped + Atomics.notify'd by the main thread after setting a flag
 *   [1] heartbeat generation: bumped + notified by a thread after ctx.heartbeat()
 *   per slot (SLOT_WORDS words from 2 + SLOT_WORDS * slot):
 *     abort code of the task (0 = none; see ABORT_CODES)
 *     1 if the task asked for a heartbeat
 *     state: (ticket << 2) | QUEUED/RUNNING/DONE/WITHDRAWN. The ticket changes every time
 *       the slot is handed out or its task is sent again, so a thread that finds a different
 *       ticket than its batch names knows the task is no longer its to run.
 *     threadId of the thread that claimed it (0 before)
 * Float64 per slot, after the Int32 words: when the handler started (epoch ms), 0 before.
 */
export const CANCEL_GEN = 0;
export const HEARTBEAT_GEN = 1;
const SLOT_WORDS = 4;

export const QUEUED = 0;
export const RUNNING = 1;
export const DONE = 2;
/** Taken back by the main thread before it started (cancelled, or sent to another thread). */
export const WITHDRAWN = 3;
/** Tickets wrap well before the sign bit. */
export const TICKET_MASK = 0x1fffffff;

export const abortIndex = (slot: number): number => 2 + SLOT_WORDS * slot;
export const heartbeatIndex = (slot: number): number => 3 + SLOT_WORDS * slot;
export const stateIndex = (slot: number): number => 4 + SLOT_WORDS * slot;
export const threadIndex = (slot: number): number => 5 + SLOT_WORDS * slot;
export const stateWord = (ticket: number, state: number): number => (ticket << 2) | state;

export interface Flags {
  ints: Int32Array;
  /** Start time per slot (epoch ms). */
  startedAt: Float64Array;
}

export function createFlags(slots: number): SharedArrayBuffer {
  const intBytes = 4 * (2 + SLOT_WORDS * slots);
  const offset = Math.ceil(intBytes / 8) * 8;
  return new SharedArrayBuffer(offset + 8 * slots);
}

export function viewFlags(buffer: SharedArrayBuffer, slots: number): Flags {
  const intWords = 2 + SLOT_WORDS * slots;
  const offset = Math.ceil((4 * intWords) / 8) * 8;
  return { ints: new Int32Array(buffer, 0, intWords), startedAt: new Float64Array(buffer, offset, slots) };
}

/** Milliseconds since the epoch, sub-millisecond, comparable between threads. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}
