/**
 * Runs `fn` in a transaction on a client checked out of the pool. pg removes its own error
 * listener from a checked-out client, so a connection lost mid-transaction (e.g. a Postgres
 * restart) would be an unhandled 'error' event that kills the process: we listen for it, and
 * hand a broken client back with the error so the pool discards it.
 */
import type pg from 'pg';
import { isSilentConnection } from './errors.js';

export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // A connection that went silent would only time out again on the ROLLBACK: drop it (the
    // server rolls back when it notices).
    if (isSilentConnection(err)) broken ??= err as Error;
    broken ??= await client.query('ROLLBACK').then(
      () => undefined,
      (e: Error) => e,
    );
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
