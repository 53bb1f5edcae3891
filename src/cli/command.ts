/** The shape of one `rhythm` subcommand, and the flags they share. */
import type { Logger } from 'pino';
import type { FlagSpecs, Parsed } from './args.js';
import type { Resolved, SettingKey } from './config.js';

export interface CommandContext {
  name: string;
  args: Parsed;
  resolved: Resolved;
  log: Logger;
  /** Where a setting came from, as a flag/env/config name for error messages. */
  where(key: SettingKey): string;
}

export interface Command {
  name: string;
  flags: FlagSpecs;
  /** Most positional arguments accepted. */
  positionals: number;
  /** The settings this command reads (others are not even validated). */
  settings: readonly SettingKey[];
  run(ctx: CommandContext): Promise<number>;
}

export const CONNECTION_FLAGS: FlagSpecs = {
  'database-url': { type: 'string' },
  'data-dir': { type: 'string' },
  schema: { type: 'string' },
  'pool-size': { type: 'string' },
  'db-timeout': { type: 'string' },
  'log-level': { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export const CONNECTION_SETTINGS: readonly SettingKey[] = ['databaseUrl', 'dataDir', 'schema', 'poolSize', 'dbTimeout', 'logLevel'];

export const WORKER_FLAGS: FlagSpecs = {
  queue: { type: 'string', multiple: true },
  threads: { type: 'string' },
  tasks: { type: 'string' },
  only: { type: 'string' },
  concurrency: { type: 'string' },
  'batch-size': { type: 'string' },
  'lease-pool-size': { type: 'string' },
  'visibility-timeout': { type: 'string' },
  'poll-interval': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  'no-migrate': { type: 'boolean' },
  tick: { type: 'string' },
  retention: { type: 'string' },
};

export const WORKER_SETTINGS: readonly SettingKey[] = [
  ...CONNECTION_SETTINGS, 'leasePoolSize', 'autoMigrate', 'queues', 'threads', 'tasks', 'only', 'concurrency', 'batchSize', 'visibilityTimeout', 'pollInterval', 'shutdownTimeout', 'tick', 'retention',
];
