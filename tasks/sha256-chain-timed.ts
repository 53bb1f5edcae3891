/**
 * The sha256 chain of sha256-chain.ts, reporting when it ran on its thread (wall-clock
 * milliseconds, comparable across threads). The bench adds these spans up to tell how much of
 * a round the task threads spent running tasks: a figure that the machine's speed, which
 * drifts between rounds on a shared VM, does not move.
 */
import type { TaskContext } from '../src/index.js';
import sha256Chain, { type Sha256ChainPayload } from './sha256-chain.js';

export interface TimedResult {
  digest: string;
  rounds: number;
  /** When the chain started and ended on its thread (performance.timeOrigin + now()). */
  ranFrom: number;
  ranTo: number;
}

export default function sha256ChainTimed(payload: Sha256ChainPayload, ctx?: TaskContext): TimedResult {
  const ranFrom = performance.timeOrigin + performance.now();
  const out = sha256Chain(payload, ctx);
  return { ...out, ranFrom, ranTo: performance.timeOrigin + performance.now() };
}
