/** Small helpers shared by the test files (not a test file itself). */
import { afterAll, beforeAll, vi } from 'vitest';
import pg from 'pg';
import { Rhythm, type RhythmOptions } from 'rhythm';
import { createMigratedTestDatabase, createTestDatabase } from './support/db.js';

export type TestDatabase = Awaited<ReturnType<typeof createTestDatabase>>;

/**
 * A fresh database for this file and a Rhythm on it (retries fast unless overridden). On the
 * default schema the database starts as a copy of the run's migrated template.
 */
export async function freshRhythm(options: Omit<RhythmOptions, 'databaseUrl'> = {}): Promise<{ db: TestDatabase; r: Rhythm }> {
  const db = options.schema === undefined ? await createMigratedTestDatabase() : await createTestDatabase();
  const r = await Rhythm.init({ databaseUrl: db.url, autoMigrate: true, retryBackoff: { baseMs: 20, maxMs: 200 }, ...options });
  return { db, r };
}

/** A promise with its resolve function exposed. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Polls `check` (vi.waitFor) until it returns a truthy value, at most `timeoutMs`; only for
 * states no event announces. Throws with `what` if the time runs out.
 */
export function until<T>(what: string, check: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 20): Promise<T> {
  return vi.waitFor(
    async () => {
      const value = await check();
      if (!value) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      return value;
    },
    { timeout: timeoutMs, interval: intervalMs },
  );
}

/** Whether a promise has settled yet (checked after the current microtasks). */
export async function isSettled(p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  const winner = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise((r) => setImmediate(() => r(marker))),
  ]);
  return winner !== marker;
}

/** Row count of a table (a qualified name from r.names, or a plain table name). */
export async function count(r: Rhythm, table: string, where = 'true', values: unknown[] = []): Promise<number> {
  const res = await r.pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`, values);
  return res.rows[0].n;
}

export const fixture = (file: string): URL => new URL(`./fixtures/${file}`, import.meta.url);

/**
 * Counts wait()'s read statements and the ids they asked for: the queries on a Rhythm's wait
 * pool (a private member, created here if no wait has yet; the calls pass through unchanged).
 * `first` resolves once the first counted statement has completed (or failed).
 */
export function countWaitReads(r: Rhythm) {
  const internals = r as unknown as { waitersFor(): unknown; waitPool: { query: (...args: unknown[]) => unknown } };
  internals.waitersFor();
  const pool = internals.waitPool;
  const original = pool.query;
  const first = deferred<Promise<unknown>>();
  const state = { calls: 0, ids: 0, first: first.promise };
  pool.query = function (this: unknown, ...args: unknown[]) {
    state.calls++;
    // The ids travel as one array literal, "{1,2,3}".
    const literal = (args[0] as { values: [string] }).values[0];
    state.ids += literal.split(',').length;
    const result = original.apply(this, args);
    if (state.calls === 1) first.resolve(Promise.resolve(result).catch(() => undefined));
    return result;
  };
  return { state, restore: () => (pool.query = original) };
}

/**
 * Listens on a Rhythm schema's work channel with a connection of its own. `collect(action)`
 * returns the payloads the action's statements notified: notifications arrive in commit
 * order, so once a marker sent after the action has arrived, all of the action's have too.
 */
async function workNotifications(
  r: Rhythm,
  url: string,
): Promise<{ collect(action: () => Promise<unknown>): Promise<string[]>; close(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const received: string[] = [];
  let marker: ReturnType<typeof deferred> | undefined;
  client.on('notification', (n) => {
    if (n.payload === 'test-marker') marker?.resolve();
    else received.push(n.payload ?? '');
  });
  await client.query(`LISTEN "${r.names.workChannel}"`);
  return {
    async collect(action) {
      received.length = 0;
      await action();
      marker = deferred();
      await r.pool.query('SELECT pg_notify($1, $2)', [r.names.workChannel, 'test-marker']);
      await marker.promise;
      return [...received];
    },
    close: () => client.end(),
  };
}

/**
 * For a test file about work notifications: a fresh database and Rhythm (set up before the
 * file's tests, dropped after them) and a listener on its work channel (see workNotifications).
 */
export function rhythmWithWorkNotifications(): {
  readonly db: TestDatabase;
  readonly r: Rhythm;
  collect(action: () => Promise<unknown>): Promise<string[]>;
} {
  let env: { db: TestDatabase; r: Rhythm; notes: Awaited<ReturnType<typeof workNotifications>> } | undefined;
  beforeAll(async () => {
    const { db, r } = await freshRhythm();
    env = { db, r, notes: await workNotifications(r, db.url) };
  });
  afterAll(async () => {
    await env?.notes.close();
    await env?.r.shutdown();
    await env?.db.drop();
  });
  return {
    get db() {
      return env!.db;
    },
    get r() {
      return env!.r;
    },
    collect: (action) => env!.notes.collect(action),
  };
}
