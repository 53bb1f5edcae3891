/**
 * The bench's Postgres: DATABASE_URL / RHYTHM_DATABASE_URL when set (used as is; the bench
 * works in schemas of its own and drops them), else the embedded server on a data folder
 * under the OS temp dir, in a database created for this run and dropped at the end.
 */
import { mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ROOT } from './common.js';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/index.js';

export interface StatementStat {
  query: string;
  calls: number;
  rows: number;
  totalMs: number;
  /** Execution time per row returned or affected. */
  usPerRow: number | null;
}

export interface BenchDatabase {
  url: string;
  /** "embedded" or "external". */
  source: string;
  server?: EmbeddedServer;
  version: string;
  settings: Record<string, string>;
  /** Drops this run's schemas and database, stops the server we started. Idempotent. */
  close(): Promise<void>;
  /** Registers a schema to drop at close(). */
  trackSchema(schema: string): void;
  dropSchema(schema: string): Promise<void>;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** pg_stat_statements, when --pg-stats enabled it. */
  stats?: {
    reset(): Promise<void>;
    /** The statements that took the most execution time since the last reset. */
    top(limit?: number): Promise<StatementStat[]>;
    /** Calls of SELECT statements naming this schema since the last reset. */
    selects(schema: string): Promise<number>;
  };
}

/**
 * <tmp>/rhythm-bench/pgdata-<checkout>: one server per checkout of the repository, so that
 * benches of two checkouts running at once do not share a server (a shared one would be
 * reused, and each bench's Postgres CPU figure would include the other's work).
 */
export function defaultDataDir(): string {
  const checkout = createHash('sha256').update(fileURLToPath(ROOT)).digest('hex').slice(0, 8);
  return path.join(tmpdir(), 'rhythm-bench', `pgdata-${checkout}`);
}

const SHOWN = ['server_version', 'shared_buffers', 'synchronous_commit', 'fsync', 'max_connections', 'wal_level'];

export async function openBenchDatabase(options: {
  url?: string;
  dataDir?: string;
  settings?: Record<string, string>;
  keep?: boolean;
  pgStats?: boolean;
}): Promise<BenchDatabase> {
  const external = options.url ?? process.env.RHYTHM_DATABASE_URL ?? process.env.DATABASE_URL;
  let server: EmbeddedServer | undefined;
  let url: string;
  let createdDb: string | undefined;
  let adminUrl: string | undefined;
  if (external) {
    url = external;
  } else {
    const dataDir = path.resolve(options.dataDir ?? process.env.RHYTHM_BENCH_DATA_DIR ?? defaultDataDir());
    const parent = path.dirname(dataDir);
    mkdirSync(parent, { recursive: true });
    chmodSync(parent, 0o755); // the server runs as the postgres user when we are root
    const statSettings: Record<string, string> = options.pgStats
      ? { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'top' }
      : {};
    server = await startEmbeddedPostgres({ dataDir, settings: { max_connections: 200, ...statSettings, ...options.settings } });
    adminUrl = server.url;
    createdDb = `rhythm_bench_${process.pid}`;
    try {
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE IF EXISTS "${createdDb}" WITH (FORCE)`);
        await admin.query(`CREATE DATABASE "${createdDb}"`);
      } finally {
        await admin.end();
      }
    } catch (err) {
      await server.stop();
      throw err;
    }
    const u = new URL(adminUrl);
    u.pathname = `/${createdDb}`;
    url = u.toString();
  }
  const pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'rhythm-bench' });
  pool.on('error', () => undefined);
  const schemas = new Set<string>();
  let closing: Promise<void> | undefined;
  const settings: Record<string, string> = {};
  try {
    for (const s of SHOWN) settings[s] = (await pool.query(`SHOW ${s}`)).rows[0][s];
  } catch (err) {
    await pool.end().catch(() => undefined);
    await server?.stop();
    throw err;
  }
  const version = settings.server_version ?? 'unknown';
  let stats: BenchDatabase['stats'];
  if (options.pgStats) {
    try {
      await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      await pool.query('SELECT pg_stat_statements_reset()');
      stats = {
        reset: async () => {
          await pool.query('SELECT pg_stat_statements_reset()');
        },
        top: async (limit = 6) => {
          const res = await pool.query(
            `SELECT regexp_replace(left(query, 90), '\\s+', ' ', 'g') AS query, calls::int AS calls, rows::bigint AS rows, total_exec_time AS total_ms
             FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
             ORDER BY total_exec_time DESC LIMIT $1`,
            [limit],
          );
          return res.rows.map((r) => ({
            query: r.query,
            calls: r.calls,
            rows: Number(r.rows),
            totalMs: r.total_ms,
            usPerRow: Number(r.rows) > 0 ? (r.total_ms * 1000) / Number(r.rows) : null,
          }));
        },
        selects: async (schema) => {
          const res = await pool.query(
            `SELECT coalesce(sum(calls), 0)::bigint AS n FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query ~* '^\\s*select\\M' AND strpos(query, $1) > 0`,
            [schema],
          );
          return Number(res.rows[0].n);
        },
      };
    } catch (err) {
      process.stderr.write(`--pg-stats: pg_stat_statements is not available (${(err as Error).message}); continuing without it\n`);
    }
  }
  const db: BenchDatabase = {
    url,
    source: external ? 'external (DATABASE_URL)' : `embedded (${server!.dataDir})`,
    server,
    version,
    settings,
    stats,
    trackSchema: (s) => void schemas.add(s),
    async dropSchema(schema) {
      schemas.delete(schema);
      if (options.keep) return;
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
    query: (text, values) => pool.query(text, values as unknown[]),
    close() {
      closing ??= (async () => {
        try {
          if (!options.keep && !createdDb) {
            for (const s of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`).catch(() => undefined);
          }
        } finally {
          await pool.end().catch(() => undefined);
          if (createdDb && adminUrl && !options.keep) {
            const admin = new pg.Client({ connectionString: adminUrl });
            try {
              await admin.connect();
              await admin.query(`DROP DATABASE IF EXISTS "${createdDb}" WITH (FORCE)`);
            } catch {
              // the server is stopped next anyway
            } finally {
              await admin.end().catch(() => undefined);
            }
          }
          await server?.stop();
        }
      })();
      return closing;
    },
  };
  return db;
}

/**
 * Counts ids announced on a Rhythm done channel (the settle statement NOTIFYs every
 * execution that reaches a final status), with a slow poll of the work queue as a safety net.
 */
export class DoneCounter {
  count = 0;
  private client: pg.Client | undefined;
  private waiters: { n: number; resolve: () => void }[] = [];

  constructor(
    private readonly url: string,
    private readonly channel: string,
  ) {}

  async start(): Promise<void> {
    this.client = new pg.Client({ connectionString: this.url, application_name: 'rhythm-bench-done' });
    this.client.on('error', () => undefined);
    await this.client.connect();
    this.client.on('notification', (msg) => {
      if (msg.channel !== this.channel || !msg.payload) return;
      let n = 1;
      for (let i = 0; i < msg.payload.length; i++) if (msg.payload.charCodeAt(i) === 44) n++;
      this.count += n;
      this.check();
    });
    await this.client.query(`LISTEN "${this.channel}"`);
  }

  /** Resolves once `n` ids were announced, or the queue table has no rows left (checked every pollMs). */
  async waitFor(
    n: number,
    opts: { remaining?: () => Promise<number>; pollMs?: number; timeoutMs?: number; onProgress?: (done: number) => void } = {},
  ): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
    const reached = new Promise<void>((resolve) => {
      this.waiters.push({ n, resolve });
      this.check();
    });
    let finished = false;
    void reached.then(() => (finished = true));
    const pollMs = opts.pollMs ?? 1_000;
    let lastPoll = Date.now();
    while (!finished) {
      await Promise.race([reached, new Promise((r) => setTimeout(r, 200))]);
      opts.onProgress?.(this.count);
      if (finished) break;
      if (Date.now() > deadline) throw new Error(`timed out: ${this.count} of ${n} tasks announced done`);
      if (opts.remaining && Date.now() - lastPoll >= pollMs) {
        lastPoll = Date.now();
        if ((await opts.remaining()) === 0) break;
      }
    }
    opts.onProgress?.(this.count);
  }

  async stop(): Promise<void> {
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }

  private check(): void {
    const ready = this.waiters.filter((w) => this.count >= w.n);
    this.waiters = this.waiters.filter((w) => this.count < w.n);
    for (const w of ready) w.resolve();
  }
}
