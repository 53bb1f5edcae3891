/**
 * Every setting of Rhythm, each defined once: its config-file key (the key of SETTINGS), its
 * command-line flag, its environment variables, how its value is parsed and checked, its
 * default and its help line. The `rhythm` command builds its flags, its --help and
 * `rhythm config` from this table, and the library reads its environment variables through
 * it (see environment.ts), so a setting cannot be spelled or checked two ways.
 */
import os from 'node:os';
import path from 'node:path';
import { MAX_DELAY_MS, checkDatabaseUrl, checkSchemaName } from '../validate.js';
import { checkDashboardToken } from '../dashboard/security.js';
import {
  MAX_THREADS,
  named,
  parseBool,
  parseChoice,
  parseDuration,
  parseHost,
  parseInteger,
  parseList,
  parsePath,
  parseQueues,
  type QueueSpec,
} from './parse.js';

/** Where a raw value came from: text (a flag or an environment variable) or a config file. */
export type Origin = 'flag' | 'env' | 'file';

/** The help section a setting is listed under. */
export type SettingGroup = 'connection' | 'worker' | 'internal' | 'metrics' | 'dashboard';

export interface SettingDef<T> {
  /** The flag as commander spells it: '--pool-size <n>', or '--no-migrate' for a switch. */
  flag: string;
  /** For a switch (a flag without a value): the value it sets. */
  switchSets?: T;
  /** The flag may be repeated; its values arrive as a list. */
  repeatable?: boolean;
  /** Environment variables, strongest first. */
  env: readonly string[];
  group: SettingGroup;
  /** One line for --help. */
  help: string;
  /** The default; `cwd` is the working folder a relative path is resolved against (the process's by default). */
  default(cwd?: string): T;
  /** How --help and `rhythm config` show the default when default() does not say it well. */
  defaultText?: string;
  /** A path: made absolute against the working folder, or the config file's folder. */
  isPath?: boolean;
  parse(raw: unknown, where: string, origin: Origin): T;
}

function setting<T>(def: SettingDef<T>): SettingDef<T> {
  return def;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const LOG_FORMATS = ['auto', 'pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Relative to the working directory. */
export const DEFAULT_DATA_DIR = '.rhythm/pgdata';

export const SETTINGS = {
  databaseUrl: setting<string | undefined>({
    flag: '--database-url <url>',
    env: ['RHYTHM_DATABASE_URL', 'DATABASE_URL'],
    group: 'connection',
    help: 'Postgres URL; without one, the embedded Postgres on the data folder is used',
    default: () => undefined,
    defaultText: 'none: embedded Postgres',
    parse(raw, where) {
      checkDatabaseUrl(where, raw);
      return raw;
    },
  }),
  dataDir: setting<string>({
    flag: '--data-dir <dir>',
    env: ['RHYTHM_DATA_DIR'],
    group: 'connection',
    help: 'data folder of the embedded Postgres, used when no database URL is set; kept across runs',
    default: (cwd = process.cwd()) => path.resolve(cwd, DEFAULT_DATA_DIR),
    defaultText: DEFAULT_DATA_DIR,
    isPath: true,
    parse: (raw, where) => parsePath(where, raw),
  }),
  schema: setting<string>({
    flag: '--schema <name>',
    env: ['RHYTHM_SCHEMA'],
    group: 'connection',
    help: "schema of Rhythm's tables; several apps can share a database",
    default: () => 'rhythm',
    parse: (raw, where) => named(where, () => checkSchemaName(raw)),
  }),
  poolSize: setting<number>({
    flag: '--pool-size <n>',
    env: ['RHYTHM_POOL_SIZE'],
    group: 'connection',
    help: 'database connections of this process',
    default: () => 10,
    parse: (raw, where) => parseInteger(where, raw, 1, 1000),
  }),
  dbTimeout: setting<number | undefined>({
    flag: '--db-timeout <duration>',
    env: ['RHYTHM_DB_TIMEOUT'],
    group: 'connection',
    help: 'most time to connect, and for each statement, before giving up on the database',
    default: () => undefined,
    defaultText: '10s to connect, 30s a statement',
    parse: (raw, where) => parseDuration(where, raw, 100),
  }),
  logLevel: setting<LogLevel>({
    flag: '--log-level <level>',
    env: ['RHYTHM_LOG_LEVEL'],
    group: 'connection',
    help: `log level: ${LOG_LEVELS.join('|')}`,
    default: () => 'info',
    parse: (raw, where) => parseChoice(where, raw, LOG_LEVELS),
  }),
  logFormat: setting<LogFormat>({
    flag: '--log-format <format>',
    env: ['RHYTHM_LOG_FORMAT'],
    group: 'connection',
    help: 'log lines: pretty (for people), json (one object a line), or auto: pretty on a terminal, else json',
    default: () => 'auto',
    parse: (raw, where) => parseChoice(where, raw, LOG_FORMATS),
  }),
  queues: setting<QueueSpec[]>({
    flag: '--queue <name[:threads]>',
    repeatable: true,
    env: ['RHYTHM_QUEUES'],
    group: 'worker',
    help: 'a queue to serve, with its own thread count; repeat for several queues (env: a,b:4); a queue whose name ends in ":<digits>" needs an explicit count',
    default: () => [{ name: 'default' }],
    defaultText: 'default',
    parse: (raw, where, origin) => parseQueues(where, raw, origin === 'file'),
  }),
  threads: setting<number>({
    flag: '--threads <n>',
    env: ['RHYTHM_THREADS'],
    group: 'worker',
    help: 'threads of each queue given without ":threads"; 0 runs the task modules on the main thread (I/O-bound tasks)',
    default: () => os.availableParallelism(),
    defaultText: 'CPU count',
    parse: (raw, where) => parseInteger(where, raw, 0, MAX_THREADS),
  }),
  tasks: setting<string>({
    flag: '--tasks <dir>',
    env: ['RHYTHM_TASKS'],
    group: 'worker',
    help: "folder of task modules, one per task (a task's name is its module's `name` export, else its file name), and of *.flow workflows (named after the file)",
    default: (cwd = process.cwd()) => path.resolve(cwd, 'tasks'),
    defaultText: './tasks',
    isPath: true,
    parse: (raw, where) => parsePath(where, raw),
  }),
  only: setting<string[] | undefined>({
    flag: '--only <a,b>',
    env: ['RHYTHM_ONLY'],
    group: 'worker',
    help: 'register only these tasks and workflows',
    default: () => undefined,
    defaultText: 'all of the folder',
    parse: (raw, where) => parseList(where, raw),
  }),
  concurrency: setting<number | undefined>({
    flag: '--concurrency <n>',
    env: ['RHYTHM_CONCURRENCY'],
    group: 'worker',
    help: 'most handlers running at once on the main thread (with threads: most tasks handed to them)',
    default: () => undefined,
    defaultText: '100 on the main thread; with threads, as many as keep each thread a few batches ahead',
    parse: (raw, where) => parseInteger(where, raw, 1, 100_000),
  }),
  batchSize: setting<number | undefined>({
    flag: '--batch-size <n>',
    env: ['RHYTHM_BATCH_SIZE'],
    group: 'worker',
    help: 'most tasks per claim (tasks are claimed ahead by the measured finish rate)',
    default: () => undefined,
    defaultText: '500',
    parse: (raw, where) => parseInteger(where, raw, 1, 10_000),
  }),
  leasePoolSize: setting<number>({
    flag: '--lease-pool-size <n>',
    env: ['RHYTHM_LEASE_POOL_SIZE'],
    group: 'worker',
    help: 'connections for claims and lease extensions, shared by the queues of this process',
    default: () => 4,
    parse: (raw, where) => parseInteger(where, raw, 1, 1000),
  }),
  visibilityTimeout: setting<number>({
    flag: '--visibility-timeout <duration>',
    env: ['RHYTHM_VISIBILITY_TIMEOUT'],
    group: 'worker',
    help: 'lease of claimed tasks, extended every third of it',
    default: () => 30_000,
    defaultText: '30s',
    parse: (raw, where) => parseDuration(where, raw, 1_000),
  }),
  pollInterval: setting<number>({
    flag: '--poll-interval <duration>',
    env: ['RHYTHM_POLL_INTERVAL'],
    group: 'worker',
    help: 'fallback poll when no notification arrives',
    default: () => 2_000,
    defaultText: '2s',
    parse: (raw, where) => parseDuration(where, raw, 10),
  }),
  shutdownTimeout: setting<number>({
    flag: '--shutdown-timeout <duration>',
    env: ['RHYTHM_SHUTDOWN_TIMEOUT'],
    group: 'worker',
    help: 'on SIGTERM/SIGINT, how long in-flight tasks may finish before they are aborted and handed back; a second signal stops at once (exit code 130), even with the database down',
    default: () => 30_000,
    defaultText: '30s',
    parse: (raw, where) => parseDuration(where, raw),
  }),
  autoMigrate: setting<boolean>({
    flag: '--no-migrate',
    switchSets: false,
    env: ['RHYTHM_AUTO_MIGRATE'],
    group: 'worker',
    help: 'do not apply pending migrations at startup',
    default: () => true,
    defaultText: 'migrate',
    parse: (raw, where) => parseBool(where, raw),
  }),
  internalWorker: setting<boolean>({
    flag: '--internal-worker',
    switchSets: true,
    env: ['RHYTHM_INTERNAL_WORKER'],
    group: 'internal',
    help: 'also run the internal worker (delays, retries, lease recovery, pruning) in this process',
    default: () => false,
    parse: (raw, where) => parseBool(where, raw),
  }),
  tick: setting<number>({
    flag: '--tick <duration>',
    env: ['RHYTHM_TICK'],
    group: 'internal',
    help: "time between the internal worker's passes",
    default: () => 1_000,
    defaultText: '1s',
    parse: (raw, where) => parseDuration(where, raw, 1),
  }),
  metricsPort: setting<number | undefined>({
    flag: '--metrics-port <port>',
    env: ['RHYTHM_METRICS_PORT'],
    group: 'metrics',
    help: 'serve Prometheus metrics at http://<metrics-host>:<port>/metrics (9464 is the usual port; 0 picks a free one)',
    default: () => undefined,
    defaultText: 'no metrics',
    parse: (raw, where) => parseInteger(where, raw, 0, 65_535),
  }),
  metricsHost: setting<string>({
    flag: '--metrics-host <address>',
    env: ['RHYTHM_METRICS_HOST'],
    group: 'metrics',
    help: 'address the metrics server listens on; 0.0.0.0 for every interface (e.g. in a container)',
    default: () => '127.0.0.1',
    parse: (raw, where) => parseHost(where, raw),
  }),
  retention: setting<number>({
    flag: '--retention <duration>',
    env: ['RHYTHM_RETENTION'],
    group: 'internal',
    help: 'delete completed and cancelled executions older than this; 0 keeps them',
    default: () => 7 * 86_400_000,
    defaultText: '7d',
    parse: (raw, where) => parseDuration(where, raw, 0, MAX_DELAY_MS),
  }),
  failedRetention: setting<number>({
    flag: '--failed-retention <duration>',
    env: ['RHYTHM_FAILED_RETENTION'],
    group: 'internal',
    help: 'delete failed executions (the dead letters `rhythm retry` runs again) older than this; 0 keeps them',
    default: () => 30 * 86_400_000,
    defaultText: '30d',
    parse: (raw, where) => parseDuration(where, raw, 0, MAX_DELAY_MS),
  }),
  dashboardPort: setting<number>({
    flag: '--port <n>',
    env: ['RHYTHM_DASHBOARD_PORT'],
    group: 'dashboard',
    help: 'port of the web dashboard (0: any free port)',
    default: () => 8080,
    parse: (raw, where) => parseInteger(where, raw, 0, 65_535),
  }),
  dashboardHost: setting<string>({
    flag: '--host <address>',
    env: ['RHYTHM_DASHBOARD_HOST'],
    group: 'dashboard',
    help: 'address the web dashboard binds; any but a loopback address requires a token',
    default: () => '127.0.0.1',
    parse: (raw, where) => parseHost(where, raw),
  }),
  dashboardToken: setting<string | undefined>({
    flag: '--token <token>',
    env: ['RHYTHM_DASHBOARD_TOKEN'],
    group: 'dashboard',
    help: 'token every dashboard request must carry (required when bound beyond this machine); prefer the variable to the flag, which other users can see in the process list',
    default: () => undefined,
    defaultText: 'none: local only, actions use a token made at start',
    parse: (raw, where) => checkDashboardToken(raw, where),
  }),
};

export type SettingKey = keyof typeof SETTINGS;
export type Settings = { [K in SettingKey]: (typeof SETTINGS)[K] extends SettingDef<infer T> ? T : never };
export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

/** The flag's long name without dashes or value: '--pool-size <n>' -> 'pool-size'. */
export function flagName(key: SettingKey): string {
  return SETTINGS[key].flag.split(' ')[0]!.replace(/^--/, '');
}
