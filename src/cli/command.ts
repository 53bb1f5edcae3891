/** The shape of one `rhythm` subcommand, and the setting lists commands share. */
import type { Option } from 'commander';
import type { Logger } from 'pino';
import type { Resolved } from '../config/resolve.js';
import type { SettingKey, Settings } from '../config/settings.js';
import type { CliIo } from './io.js';

export interface CommandContext {
  name: string;
  /** Positional arguments. */
  args: string[];
  /** Values of the command's own flags (those that are not settings), by commander's attribute name. */
  options: Record<string, unknown>;
  settings: Settings;
  resolved: Resolved;
  log: Logger;
  /** The streams, environment and working folder of this run. */
  io: CliIo;
  /** Writes (part of) the command's answer as whole lines; resolves once it is written. */
  print(text: string): Promise<void>;
  /** Where a setting came from, as a flag, variable or config key for error messages. */
  where(key: SettingKey): string;
}

export interface Command {
  name: string;
  /** One line in the overview. */
  summary: string;
  /** What --help says under the usage line. */
  description: string;
  /** Positional arguments as the usage line shows them ('[task]'); no more are accepted. */
  arguments?: string[];
  /** The settings this command reads: offered as flags and checked; the others are ignored. */
  settings: readonly SettingKey[];
  /** This command's defaults that differ from the settings' own. */
  defaults?: Partial<Settings>;
  /** Flags of this command alone (not settings). */
  options?: Option[];
  /** Text after the options in --help (examples). */
  epilog?: string;
  run(ctx: CommandContext): Promise<number>;
}

export const CONNECTION_SETTINGS: readonly SettingKey[] = [
  'databaseUrl',
  'dataDir',
  'schema',
  'poolSize',
  'dbTimeout',
  'logLevel',
  'logFormat',
];

export const WORKER_SETTINGS: readonly SettingKey[] = [
  ...CONNECTION_SETTINGS,
  'queues',
  'threads',
  'tasks',
  'only',
  'concurrency',
  'batchSize',
  'leasePoolSize',
  'visibilityTimeout',
  'pollInterval',
  'shutdownTimeout',
  'autoMigrate',
  'tick',
  'retention',
  'failedRetention',
  'metricsPort',
  'metricsHost',
];

/**
 * Commands that answer and exit: only their answer is printed at the default level (their logs
 * are for --log-level info or debug), and they need few connections.
 */
export const ONE_SHOT_DEFAULTS: Partial<Settings> = { logLevel: 'warn', poolSize: 2 };
