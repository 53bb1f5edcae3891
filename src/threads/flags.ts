/**
 * Shared memory between a thread pool and its threads. A CPU-bound loop on a thread cannot
 * hear an event, but it can read memory: cancellation is a flag per in-flight slot.
 * Layout (Int32Array):
 *   [0] cancel generation: bumped + Atomics.notify'd by the main thread after setting a flag
 *   [1] heartbeat generation: bumped + notified by a thread after ctx.heartbeat()
 *   [2 + 2*slot] abort code of the task in that slot (0 = none; see ABORT_CODES)
 *   [3 + 2*slot] 1 if the task in that slot asked for a heartbeat
 */
export const CANCEL_GEN = 0;
export const HEARTBEAT_GEN = 1;

export const abortIndex = (slot: number): number => 2 + 2 * slot;
export const heartbeatIndex = (slot: number): number => 3 + 2 * slot;

export function createFlags(slots: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * (2 + 2 * slots)));
}
