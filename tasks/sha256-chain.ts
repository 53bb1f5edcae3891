/**
 * CPU-bound work: hashes a seed `rounds` times, each round hashing the previous digest.
 * ~1,000 rounds take about 1 ms on the project's machine. Checks ctx.cancelled every 256
 * rounds, so a cancelled or timed-out run stops early instead of burning its thread.
 */
import { createHash } from 'node:crypto';
import type { TaskContext } from '../src/index.js';

export interface Sha256ChainPayload {
  seed?: string;
  rounds?: number;
}

export default function sha256Chain(payload: Sha256ChainPayload, ctx?: TaskContext): { digest: string; rounds: number } {
  const rounds = payload?.rounds ?? 1000;
  if (!Number.isInteger(rounds) || rounds < 0) throw new TypeError(`rounds must be a non-negative integer, got ${rounds}`);
  let digest: Buffer = Buffer.from(payload?.seed ?? 'rhythm');
  for (let i = 0; i < rounds; i++) {
    if ((i & 255) === 0) ctx?.throwIfCancelled();
    digest = createHash('sha256').update(digest).digest();
  }
  return { digest: digest.toString('hex'), rounds };
}
