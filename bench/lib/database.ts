/**
 * The bench's Postgres: DATABASE_URL / RHYTHM_DATABASE_URL when set (used as is; the bench
 * works in schemas of its own and drops them), else the embedded server on a data folder
 * under the OS temp dir, in a database created for this run and dropped at the end.
 */
import { mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/index.js';

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
}

const SHOWN = ['server_version', 'shared_buffers', 'synchronous_commit', 'fsync', 'max_connections', 'wal_level'];

export async function openBenchDatabase(options: { url?: string; dataDir?: string; settings?: Record<string, string>; keep?: boolean }): Promise<BenchDatabase> {
  const external = options.url ?? process.env.RHYTHM_DATABASE_URL ?? process.env.DATABASE_URL;
  let server: EmbeddedServer | undefined;
  let url: string;
  let createdDb: string | undefined;
  let adminUrl: string | undefined;
  if (external) {
    url = external;
  } else {
    const dataDir = path.resolve(options.dataDir ?? process.env.RHYTHM_BENCH_DATA_DIR ?? path.join(tmpdir(), 'rhythm-bench', 'pgdata'));
    const parent = path.dirname(dataDir);
    mkdirSync(parent, { recursive: true });
    chmodSync(parent, 0o755); // the server runs as the postgres user when we are root
    server = await startEmbeddedPostgres({ dataDir, settings: { max_connections: 200, ...options.settings } });
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
  const db: BenchDatabase = {
    url,
    source: external ? 'external (DATABASE_URL)' : `embedded (${server!.dataDir})`,
    server,
    version,
    settings,
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

  constructor(private readonly url: string, private readonly channel: string) {}

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
  async waitFor(n: number, opts: { remaining?: () => Promise<number>; pollMs?: number; timeoutMs?: number; onProgress?: (done: number) => void } = {}): Promise<void> {
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
