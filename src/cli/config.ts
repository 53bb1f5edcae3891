/**
 * Configuration of the `rhythm` command. Each setting is taken from, in order of precedence:
 *   1. a command-line flag,
 *   2. an environment variable (RHYTHM_*; DATABASE_URL as a fallback for the URL),
 *   3. the config file (--config / RHYTHM_CONFIG, else rhythm.config.{json,mjs,js,cjs,ts} in
 *      the working directory),
 *   4. the default.
 * Each resolved value remembers where it came from, so the effective configuration printed
 * at startup says why a value is what it is. Secrets in URLs are masked there.
 */
import { DEFAULT_DATA_DIR } from '../db/local.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { maskUrl } from '../logger.js';
import { checkDatabaseUrl, checkSchemaName } from '../validate.js';
import {
  UsageError, parseBool, parseDuration, parseIntValue, parseList, parseQueueSpec, show, MAX_THREADS,
  type Parsed, type QueueSpec,
} from './args.js';
import { locateJsonError } from './json-input.js';

export const CONFIG_FILE_NAMES = ['rhythm.config.json', 'rhythm.config.mjs', 'rhythm.config.js', 'rhythm.config.cjs', 'rhythm.config.ts'];


export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Every setting, under its config-file key. */
export interface Settings {
  databaseUrl: string | undefined;
  schema: string;
  logLevel: LogLevel;
  poolSize: number;
  /** Connections for claims and lease extensions (workers only). */
  leasePoolSize: number;
  /** Connect and statement timeout, ms (undefined: the library's defaults). */
  dbTimeout: number | undefined;
  autoMigrate: boolean;
  dataDir: string | undefined;
  queues: QueueSpec[];
  threads: number;
  tasks: string;
  only: string[] | undefined;
  concurrency: number | undefined;
  batchSize: number | undefined;
  visibilityTimeout: number;
  pollInterval: number;
  shutdownTimeout: number;
  internalWorker: boolean;
  tick: number;
  retention: number;
}

export type SettingKey = keyof Settings;

interface SettingDef<K extends SettingKey> {
  flag?: string;
  env?: string[];
  /** Paths are relative to the config file's folder when they come from it. */
  isPath?: boolean;
  parse(raw: unknown, where: string, origin: 'flag' | 'env' | 'file'): Settings[K];
}

const DEFS: { [K in SettingKey]: SettingDef<K> } = {
  databaseUrl: { flag: 'database-url', env: ['RHYTHM_DATABASE_URL', 'DATABASE_URL'], parse: parseDatabaseUrl },
  schema: {
    flag: 'schema',
    env: ['RHYTHM_SCHEMA'],
    parse: (raw, where) => {
      try {
        return checkSchemaName(raw);
      } catch (err) {
        throw new UsageError(`${where}: ${(err as Error).message}`);
      }
    },
  },
  logLevel: {
    flag: 'log-level',
    env: ['RHYTHM_LOG_LEVEL'],
    parse: (raw, where) => {
      if (typeof raw === 'string' && (LOG_LEVELS as readonly string[]).includes(raw.trim().toLowerCase())) return raw.trim().toLowerCase() as LogLevel;
      throw new UsageError(`${where} must be one of ${LOG_LEVELS.join(', ')}, got ${show(raw)}`);
    },
  },
  poolSize: { flag: 'pool-size', env: ['RHYTHM_POOL_SIZE'], parse: (raw, where) => parseIntValue(where, raw, 1, 1000) },
  leasePoolSize: { flag: 'lease-pool-size', env: ['RHYTHM_LEASE_POOL_SIZE'], parse: (raw, where) => parseIntValue(where, raw, 1, 1000) },
  dbTimeout: { flag: 'db-timeout', env: ['RHYTHM_DB_TIMEOUT'], parse: (raw, where) => atLeast(where, raw, 100) },
  autoMigrate: {
    flag: 'no-migrate',
    env: ['RHYTHM_AUTO_MIGRATE'],
    parse: (raw, where, origin) => (origin === 'flag' ? false : parseBool(where, raw)),
  },
  dataDir: { flag: 'data-dir', env: ['RHYTHM_DATA_DIR'], isPath: true, parse: parsePath },
  queues: { flag: 'queue', env: ['RHYTHM_QUEUES'], parse: parseQueues },
  threads: { flag: 'threads', env: ['RHYTHM_THREADS'], parse: (raw, where) => parseIntValue(where, raw, 0, MAX_THREADS) },
  tasks: { flag: 'tasks', env: ['RHYTHM_TASKS'], isPath: true, parse: parsePath },
  only: { flag: 'only', env: ['RHYTHM_ONLY'], parse: (raw, where) => parseList(where, raw) },
  concurrency: { flag: 'concurrency', env: ['RHYTHM_CONCURRENCY'], parse: (raw, where) => parseIntValue(where, raw, 1, 100_000) },
  batchSize: { flag: 'batch-size', env: ['RHYTHM_BATCH_SIZE'], parse: (raw, where) => parseIntValue(where, raw, 1, 10_000) },
  visibilityTimeout: { flag: 'visibility-timeout', env: ['RHYTHM_VISIBILITY_TIMEOUT'], parse: (raw, where) => atLeast(where, raw, 1_000) },
  pollInterval: { flag: 'poll-interval', env: ['RHYTHM_POLL_INTERVAL'], parse: (raw, where) => atLeast(where, raw, 10) },
  shutdownTimeout: { flag: 'shutdown-timeout', env: ['RHYTHM_SHUTDOWN_TIMEOUT'], parse: (raw, where) => parseDuration(where, raw) },
  internalWorker: { flag: 'internal-worker', env: ['RHYTHM_INTERNAL_WORKER'], parse: (raw, where) => parseBool(where, raw) },
  tick: { flag: 'tick', env: ['RHYTHM_TICK'], parse: (raw, where) => atLeast(where, raw, 1) },
  retention: { flag: 'retention', env: ['RHYTHM_RETENTION'], parse: (raw, where) => parseDuration(where, raw) },
};

/** A duration of at least minMs. */
function atLeast(where: string, raw: unknown, minMs: number): number {
  const ms = parseDuration(where, raw);
  if (ms < minMs) throw new UsageError(`${where} must be at least ${minMs}ms, got ${show(raw)}`);
  return ms;
}

export const SETTING_KEYS = Object.keys(DEFS) as SettingKey[];

/** The environment variables the CLI reads (for help texts and docs). */
export function envName(key: SettingKey): string[] {
  return DEFS[key].env ?? [];
}

export function defaults(command: string): Settings {
  const oneShot = ['enqueue', 'get', 'cancel', 'status', 'config'].includes(command);
  return {
    databaseUrl: undefined,
    schema: 'rhythm',
    // One-shot commands print their answer on stdout; their logs stay quiet unless asked.
    logLevel: oneShot ? 'warn' : 'info',
    poolSize: oneShot ? 2 : 10,
    dbTimeout: undefined,
    leasePoolSize: 4,
    autoMigrate: true,
    dataDir: undefined,
    queues: [{ name: 'default' }],
    threads: os.availableParallelism(),
    tasks: path.resolve('tasks'),
    only: undefined,
    concurrency: undefined,
    batchSize: undefined,
    visibilityTimeout: 30_000,
    pollInterval: 2_000,
    shutdownTimeout: 30_000,
    internalWorker: command === 'start' || command === 'scheduler',
    tick: 1_000,
    retention: 7 * 86_400_000,
  };
}

export interface ConfigFile {
  path: string;
  values: Partial<Record<SettingKey, unknown>>;
}

export interface Resolved {
  settings: Settings;
  /** Where each setting came from: "flag --x", "env X", "config <file>" or "default". */
  sources: Record<SettingKey, string>;
  file: ConfigFile | undefined;
}

/**
 * Resolves `keys` (the settings the command uses) by precedence. Settings a command does not
 * use are neither read nor validated, so e.g. a bad RHYTHM_THREADS cannot break `rhythm get`.
 */
export async function resolveSettings(
  command: string,
  flags: Parsed['values'],
  keys: readonly SettingKey[],
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Promise<Resolved> {
  const file = await loadConfigFile(flags.config as string | undefined, env, cwd);
  const settings = defaults(command) as unknown as Record<SettingKey, unknown>;
  const sources = Object.fromEntries(SETTING_KEYS.map((k) => [k, 'default'])) as Record<SettingKey, string>;
  for (const key of keys) {
    const def = DEFS[key] as SettingDef<SettingKey>;
    const flagValue = def.flag === undefined ? undefined : flags[def.flag];
    if (flagValue !== undefined && flagValue !== false) {
      settings[key] = def.parse(flagValue, `--${def.flag}`, 'flag');
      if (def.isPath) settings[key] = path.resolve(cwd, settings[key] as string);
      sources[key] = `flag --${def.flag}`;
      continue;
    }
    const envName = def.env?.find((name) => env[name] !== undefined && env[name] !== '');
    if (envName !== undefined) {
      settings[key] = def.parse(env[envName], envName, 'env');
      if (def.isPath) settings[key] = path.resolve(cwd, settings[key] as string);
      sources[key] = `env ${envName}`;
      continue;
    }
    if (file && file.values[key] !== undefined) {
      settings[key] = def.parse(file.values[key], `${file.path}: "${key}"`, 'file');
      if (def.isPath) settings[key] = path.resolve(path.dirname(file.path), settings[key] as string);
      sources[key] = `config ${file.path}`;
    }
  }
  return { settings: settings as unknown as Settings, sources, file };
}

/** Finds and reads the config file; undefined when there is none. */
export async function loadConfigFile(flag: string | undefined, env: NodeJS.ProcessEnv, cwd: string): Promise<ConfigFile | undefined> {
  let file: string;
  let where: string;
  if (flag !== undefined || (env.RHYTHM_CONFIG ?? '') !== '') {
    where = flag !== undefined ? '--config' : 'RHYTHM_CONFIG';
    file = path.resolve(cwd, flag ?? env.RHYTHM_CONFIG!);
    if (!existsSync(file) || !statSync(file).isFile()) throw new UsageError(`${where}: no config file at ${file}`);
  } else {
    const found = CONFIG_FILE_NAMES.map((n) => path.join(cwd, n)).filter((p) => existsSync(p));
    if (found.length === 0) return undefined;
    if (found.length > 1) {
      throw new UsageError(`several config files in ${cwd}: ${found.map((f) => path.basename(f)).join(', ')}; keep one, or choose with --config`);
    }
    file = found[0]!;
    where = file;
  }
  const values = await readConfigFile(file, where);
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    throw new UsageError(`${file} must hold an object of settings (keys: ${SETTING_KEYS.join(', ')}), got ${show(values)}`);
  }
  for (const key of Object.keys(values)) {
    if (!(SETTING_KEYS as string[]).includes(key)) {
      throw new UsageError(`${file}: unknown setting ${JSON.stringify(key)} (known: ${SETTING_KEYS.join(', ')})`);
    }
  }
  return { path: file, values: values as ConfigFile['values'] };
}

async function readConfigFile(file: string, where: string): Promise<unknown> {
  const ext = path.extname(file);
  if (ext === '.json') {
    const text = readFileSync(file, 'utf8');
    try {
      return JSON.parse(text);
    } catch (err) {
      const e = locateJsonError(text);
      const at = e ? `${e.message} at position ${e.position} (line ${e.line}, column ${e.column})` : (err as Error).message;
      throw new UsageError(`${file} is not valid JSON: ${at}`);
    }
  }
  if (!['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'].includes(ext)) {
    throw new UsageError(`${where}: config file ${file} must end in .json, .mjs, .js, .cjs or .ts`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (ext.endsWith('ts') && (code === 'ERR_UNKNOWN_FILE_EXTENSION' || err instanceof SyntaxError)) {
      throw new UsageError(
        `${file}: this Node.js (${process.version}) cannot load a TypeScript config file by itself. ` +
          'Use rhythm.config.json or rhythm.config.mjs, compile the file to JavaScript, ' +
          'or run with a TypeScript loader (NODE_OPTIONS="--import tsx") or on a Node.js that strips types (22.18+ / 23.6+).',
      );
    }
    throw new UsageError(`${file} failed to load: ${(err as Error).message}`);
  }
  let value: unknown = mod.default ?? mod;
  if (typeof value === 'function') value = await (value as () => unknown)();
  return value;
}

function parseDatabaseUrl(raw: unknown, where: string): string {
  try {
    checkDatabaseUrl(where, raw);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return raw;
}

function parsePath(raw: unknown, where: string): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new UsageError(`${where} must be a path, got ${show(raw)}`);
  return raw;
}

/** Flags: one spec per --queue (commas allowed too); env: comma-separated; file: array or string. */
function parseQueues(raw: unknown, where: string, origin: 'flag' | 'env' | 'file'): QueueSpec[] {
  const items: unknown[] = Array.isArray(raw) ? raw.flatMap((r) => (typeof r === 'string' ? r.split(',') : [r])) : typeof raw === 'string' ? raw.split(',') : [raw];
  const specs: QueueSpec[] = [];
  for (const item of items) {
    let spec: QueueSpec;
    if (typeof item === 'string') {
      spec = parseQueueSpec(where, item.trim());
    } else if (origin === 'file' && item !== null && typeof item === 'object' && !Array.isArray(item)) {
      const o = item as Record<string, unknown>;
      for (const k of Object.keys(o)) {
        if (!['name', 'threads', 'only'].includes(k)) throw new UsageError(`${where}: unknown queue setting ${JSON.stringify(k)} (known: name, threads, only)`);
      }
      if (typeof o.name !== 'string') throw new UsageError(`${where}: each queue object needs a "name" string, got ${show(o.name)}`);
      spec = parseQueueSpec(where, o.name);
      if (spec.threads !== undefined) throw new UsageError(`${where}: give the thread count of ${JSON.stringify(o.name)} as "threads", not in the name`);
      if (o.threads !== undefined) spec.threads = parseIntValue(`${where} threads of ${JSON.stringify(o.name)}`, o.threads, 0, MAX_THREADS);
      if (o.only !== undefined) spec.only = parseList(`${where} only of ${JSON.stringify(o.name)}`, o.only);
    } else {
      throw new UsageError(`${where}: a queue must be "name" or "name:threads"${origin === 'file' ? ' or { name, threads, only }' : ''}, got ${show(item)}`);
    }
    if (specs.some((s) => s.name === spec.name)) throw new UsageError(`${where}: queue ${JSON.stringify(spec.name)} is given twice`);
    specs.push(spec);
  }
  if (specs.length === 0) throw new UsageError(`${where}: no queue given`);
  return specs;
}

/** The effective configuration as printed at startup (secrets masked), with each value's source. */
export function describeSettings(r: Resolved, keys: readonly SettingKey[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    let value: unknown = r.settings[key];
    if (key === 'databaseUrl') value = value === undefined ? '(none: embedded Postgres)' : maskUrl(value as string);
    if (value === undefined) {
      value = key === 'only' ? '(all tasks)' : key === 'dataDir' ? path.resolve(DEFAULT_DATA_DIR) : key === 'concurrency' ? '(threads * 64, or 100 on the main thread)' : key === 'batchSize' ? '(min(concurrency, 500))' : key === 'dbTimeout' ? '(10s to connect, 30s a statement)' : '(default)';
    }
    out[key] = { value, source: r.sources[key] };
  }
  if (r.file) out.configFile = r.file.path;
  return out;
}
