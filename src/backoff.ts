/** The delay before retrying an operation on the database after its `attempt`-th failure (0-based). */
export function retryDelayMs(attempt: number, capMs = 5_000): number {
  return Math.min(100 * 2 ** attempt, capMs);
}
