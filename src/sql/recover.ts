/**
 * Recovers tasks whose lease expired (their worker died, hung, or lost its connection):
 * each expired attempt is settled as a failure with a "lease expired" error, so it is retried
 * with backoff if attempts remain, or failed. Locking the expired rows first (SKIP LOCKED, in
 * one transaction with the settle) keeps two internal workers from recovering a row twice,
 * and a late completion from the old worker then finds its token gone.
 */
import type pg from 'pg';
import { statement } from './queryable.js';
import { inTransaction } from '../db/transaction.js';
import { wakeMissedParents } from './wake-parents.js';
import { settleAttempts } from './settle.js';
import type { Backoff } from '../backoff.js';
import type { SchemaNames } from '../db/schema.js';
import { LeaseExpiredError, systemErrorJson } from '../errors.js';

const expiredStatement = statement(
  'expired',
  (n) => `
SELECT execution_id AS id, lease_token, claimed_by FROM ${n.workQueue}
WHERE claimed_until < now()
ORDER BY claimed_until
LIMIT $1
FOR UPDATE SKIP LOCKED`,
);

export interface Recovered {
  id: string;
  claimedBy: string | null;
  status: string;
}

export async function recoverExpired(pool: pg.Pool, n: SchemaNames, limit: number, backoff: Backoff): Promise<Recovered[]> {
  const missedParents: string[] = [];
  const recovered = await inTransaction(pool, async (client) => {
    const expired = await client.query<{ id: string; lease_token: string; claimed_by: string | null }>({
      ...expiredStatement(n),
      values: [limit],
    });
    if (expired.rows.length === 0) return [];
    const errorJson = systemErrorJson(
      new LeaseExpiredError(
        'lease expired: the worker holding this task stopped heartbeating (it died, hung, or lost its database connection)',
      ),
    );
    const settled = await settleAttempts(
      client,
      n,
      expired.rows.map((r) => ({ id: r.id, leaseToken: r.lease_token, outcome: 'failed', resultJson: null, errorJson })),
      backoff,
      missedParents,
    );
    const by = new Map(expired.rows.map((r) => [r.id, r.claimed_by]));
    return settled.map((s) => ({ id: s.id, claimedBy: by.get(s.id) ?? null, status: s.status }));
  });
  await wakeMissedParents(pool, n, missedParents);
  return recovered;
}
