#!/usr/bin/env node
/**
 * The `rhythm` command. Subcommands: worker, scheduler, start, migrate, enqueue, get, cancel,
 * status, config; `--help` on each. Flags are parsed with node:util parseArgs: no CLI library.
 *
 * Exit codes: 0 ok, 1 runtime error (database unreachable, task failed under --wait, ...),
 * 2 usage error (unknown command or flag, bad value; the message names the flag and value).
 * A command's answer goes to stdout; logs (pino JSON lines) and errors go to stderr.
 */
import { readFileSync } from 'node:fs';
import { RhythmValidationError } from '../errors.js';
import { UsageError, parseFlags } from './args.js';
import { resolveSettings, describeSettings, type SettingKey } from './config.js';
import { CliError, createCliLogger, timeoutHint } from './runtime.js';
import { GENERAL_HELP, HELP } from './help.js';
import { print } from './output.js';
import type { Command, CommandContext } from './command.js';
import { workerCommand, startCommand, schedulerCommand } from './commands/run.js';
import { migrateCommand, enqueueCommand, getCommand, cancelCommand, configCommand } from './commands/admin.js';
import { statusCommand } from './commands/status.js';

const COMMANDS: Record<string, Command> = Object.fromEntries(
  [workerCommand, schedulerCommand, startCommand, migrateCommand, enqueueCommand, getCommand, cancelCommand, statusCommand, configCommand].map((c) => [c.name, c]),
);

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

function writeErr(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : text + '\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    writeErr(GENERAL_HELP);
    return 2;
  }
  if (name === '--help' || name === '-h') {
    await print(GENERAL_HELP);
    return 0;
  }
  if (name === 'help') {
    const topic = rest[0];
    if (topic === undefined) {
      await print(GENERAL_HELP);
      return 0;
    }
    if (!HELP[topic]) {
      writeErr(`rhythm: unknown command ${JSON.stringify(topic)}. Commands: ${Object.keys(COMMANDS).join(', ')}`);
      return 2;
    }
    await print(HELP[topic]!);
    return 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    await print(version());
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    writeErr(`rhythm: unknown command ${JSON.stringify(name)}. Commands: ${Object.keys(COMMANDS).join(', ')}\nRun 'rhythm --help' for usage.`);
    return 2;
  }
  if (wantsHelp(rest)) {
    await print(HELP[command.name]!);
    return 0;
  }
  try {
    const args = parseFlags(command.name, rest, command.flags, command.positionals);
    const resolved = await resolveSettings(command.name, args.values, command.settings);
    const log = createCliLogger(resolved.settings.logLevel);
    log.info({ command: command.name, config: describeSettings(resolved, command.settings) }, 'effective configuration');
    const where = (key: SettingKey) => {
      const src = resolved.sources[key];
      if (src.startsWith('flag ')) return src.slice(5);
      if (src.startsWith('env ')) return src.slice(4);
      if (src.startsWith('config ')) return `${src.slice(7)}: "${key}"`;
      const flag = command.flags[kebab(key)] ? `--${kebab(key)}` : key;
      return flag;
    };
    const ctx: CommandContext = { name: command.name, args, resolved, log, where };
    return await command.run(ctx);
  } catch (err) {
    if (err instanceof UsageError || err instanceof RhythmValidationError) {
      writeErr(`rhythm ${command.name}: ${err.message}\nRun 'rhythm ${command.name} --help' for usage.`);
      return 2;
    }
    const e = err as Error;
    writeErr(`rhythm ${command.name}: error: ${e?.message ?? String(err)}${err instanceof CliError ? '' : timeoutHint(err)}`);
    if (process.env.RHYTHM_DEBUG) writeErr(String(e?.stack ?? ''));
    return 1;
  }
}

function kebab(key: string): string {
  const special: Record<string, string> = { queues: 'queue', autoMigrate: 'no-migrate' };
  return special[key] ?? key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    writeErr(`rhythm: internal error: ${(err as Error)?.stack ?? err}`);
    process.exit(1);
  },
);
