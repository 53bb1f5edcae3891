/**
 * The `rhythm` command line, built from the commands and the setting definitions: each
 * setting a command reads becomes a flag whose help line gives its default and environment
 * variables, so flags, help and `rhythm config` cannot disagree with what is parsed.
 *
 * Parsing is commander's: it is well kept, generates the help and the usage errors, and
 * replaced a hand-written parser and help text. Values are not checked by commander but by
 * the settings' own parsers, after the flags, the environment and the config file are merged
 * (see config/resolve.ts), so every mistake names its flag, variable or file key.
 *
 * Exit codes: 0 ok, 1 runtime error (database unreachable, task failed under --wait, ...),
 * 2 usage error (unknown command or flag, bad value). A command's answer goes to stdout;
 * logs and errors go to stderr.
 */
import { Command as Program, CommanderError, Option } from 'commander';
import { RhythmValidationError } from '../errors.js';
import { packageVersion } from '../package-root.js';
import { SETTINGS, flagName, type LogLevel, type SettingKey } from '../config/settings.js';
import { resolveSettings } from '../config/resolve.js';
import { loadConfigFile, CONFIG_ENV, CONFIG_FILE_NAMES } from '../config/file.js';
import { describeSettings } from '../config/describe.js';
import { createLogger, type Logger } from '../logger.js';
import { CliError } from './errors.js';
import { timeoutHint } from './runtime.js';
import { processIo, line, type CliIo } from './io.js';
import type { Command, CommandContext } from './command.js';
import { workerCommand, startCommand, schedulerCommand } from './commands/run.js';
import { migrateCommand, enqueueCommand, getCommand } from './commands/admin.js';
import { listCommand, retryCommand, cancelCommand } from './commands/executions.js';
import { pauseCommand, resumeCommand, rateLimitCommand } from './commands/queues.js';
import { statusCommand } from './commands/status.js';
import { schedulesCommand } from './commands/schedules.js';
import { startWorkflowCommand, signalCommand } from './commands/workflows.js';
import { configCommand } from './commands/config.js';
import { dashboardCommand } from './commands/dashboard.js';

export const COMMANDS: readonly Command[] = [
  workerCommand,
  schedulerCommand,
  startCommand,
  migrateCommand,
  enqueueCommand,
  getCommand,
  listCommand,
  retryCommand,
  cancelCommand,
  statusCommand,
  pauseCommand,
  resumeCommand,
  rateLimitCommand,
  schedulesCommand,
  startWorkflowCommand,
  signalCommand,
  dashboardCommand,
  configCommand,
];

const GROUPS = {
  connection: 'Connection and logging:',
  worker: 'Workers:',
  internal: 'Internal worker:',
  metrics: 'Metrics:',
  dashboard: 'Dashboard:',
} as const;

/** The levels at which an info line is written. */
const INFO_LEVELS: readonly LogLevel[] = ['info', 'debug', 'trace'];

const DURATIONS = 'Durations: 500ms, 30s, 5m, 2h, 7d; a bare number is milliseconds.';

/** The flag of one setting, its help line naming the default (this command's) and the variables. */
function settingOption(command: Command, key: SettingKey): Option {
  const def = SETTINGS[key];
  let note: string;
  if (def.switchSets !== undefined) {
    note = `env: ${def.env.map((e) => `${e}=${String(def.switchSets)}`).join(' or ')}`;
  } else {
    const own = command.defaults !== undefined && key in command.defaults;
    note = `default: ${own ? String(command.defaults![key]) : (def.defaultText ?? String(def.default()))}, env: ${def.env.join(' or ')}`;
  }
  const option = new Option(def.flag, `${def.help} (${note})`).helpGroup(GROUPS[def.group]);
  if (def.repeatable) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
  return option;
}

interface Built {
  program: Program;
  /** The help text commander wrote. */
  out: () => string;
}

function build(run: (command: Command, cmd: Program) => Promise<void>): Built {
  let out = '';
  const output = { writeOut: (s: string) => (out += s), writeErr: () => undefined, outputError: () => undefined };
  const program = new Program('rhythm')
    .usage('<command> [options]')
    .description('Rhythm: a durable, multi-threaded task queue on PostgreSQL.')
    .helpCommand(false)
    .exitOverride()
    .configureOutput(output)
    .addHelpText(
      'after',
      [
        '',
        'Options of each command: rhythm <command> --help',
        'Configuration precedence: flags > environment > config file > defaults.',
        'Exit codes: 0 ok, 1 runtime error, 2 usage error.',
        'Version: rhythm --version',
      ].join('\n'),
    );
  for (const command of COMMANDS) {
    const cmd = program
      .command(command.name)
      .summary(command.summary)
      .description(command.description)
      .exitOverride()
      .configureOutput(output)
      .allowExcessArguments(true);
    // Missing arguments are the command's to report (it knows what each one is): none is required here.
    for (const a of command.arguments ?? []) cmd.argument(a.replace(/^<(.*)>$/, '[$1]'));
    if (command.arguments) cmd.usage(`[options] ${command.arguments.join(' ')}`);
    for (const option of command.options ?? []) cmd.addOption(option);
    for (const key of command.settings) cmd.addOption(settingOption(command, key));
    cmd.addOption(
      new Option(
        '--config <file>',
        `config file (default: ${CONFIG_FILE_NAMES[0]!.replace('.json', '.{json,mjs,js,cjs,ts}')} in the working folder, env: ${CONFIG_ENV})`,
      ).helpGroup(GROUPS.connection),
    );
    const flags = [...command.settings.map((k) => SETTINGS[k].flag), ...(command.options ?? []).map((o) => o.flags)];
    const after = [flags.some((f) => f.includes('<duration>')) ? DURATIONS : undefined, command.epilog].filter((t) => t !== undefined);
    if (after.length > 0) cmd.addHelpText('after', `\n${after.join('\n\n')}`);
    cmd.action(async function (this: Program) {
      await run(command, this);
    });
  }
  return { program, out: () => out };
}

/** What the command's flags say about the settings: the values given on the command line only. */
function flagValues(command: Command, cmd: Program): Partial<Record<SettingKey, unknown>> {
  const flags: Partial<Record<SettingKey, unknown>> = {};
  for (const key of command.settings) {
    const option = cmd.options.find((o) => o.long === `--${flagName(key)}`)!;
    const attribute = option.attributeName();
    if (cmd.getOptionValueSource(attribute) === 'cli') flags[key] = cmd.getOptionValue(attribute);
  }
  return flags;
}

async function runCommand(command: Command, cmd: Program, io: CliIo): Promise<number> {
  const opts = cmd.opts() as Record<string, unknown>;
  const file = await loadConfigFile(opts.config as string | undefined, io.env, io.cwd);
  const resolved = resolveSettings(command.settings, {
    flags: flagValues(command, cmd),
    env: io.env,
    cwd: io.cwd,
    file,
    defaults: command.defaults,
  });
  const { settings, sources } = resolved;
  // Made on first use: pino is not loaded by a command that logs nothing (a usage error, `config`).
  let logger: Logger | undefined;
  const log = () => (logger ??= createLogger({ level: settings.logLevel, format: settings.logFormat, fd: 2, destination: io.logs }));
  if (INFO_LEVELS.includes(settings.logLevel)) {
    log().info({ command: command.name, config: describeSettings(resolved, command.settings) }, 'effective configuration');
  }
  const variadic = command.arguments?.some((a) => a.endsWith('...]') || a.endsWith('...>')) ?? false;
  const max = variadic ? Infinity : (command.arguments?.length ?? 0);
  if (cmd.args.length > max) {
    const extra = cmd.args[max]!;
    throw new RhythmValidationError(
      max === 0
        ? `unexpected argument ${JSON.stringify(extra)}: \`rhythm ${command.name}\` takes no positional arguments`
        : `unexpected extra argument ${JSON.stringify(extra)}`,
    );
  }
  const where = (key: SettingKey) => {
    const src = sources[key];
    if (src.startsWith('env ')) return src.slice(4);
    if (src.startsWith('config ')) return `${src.slice(7)}: "${key}"`;
    return `--${flagName(key)}`;
  };
  const ctx: CommandContext = {
    name: command.name,
    args: cmd.args,
    options: opts,
    settings,
    resolved,
    get log() {
      return log();
    },
    io,
    print: (text) => io.out(line(text)),
    where,
  };
  return command.run(ctx);
}

/** A commander usage error in our words: one line, naming the flag. */
function usageMessage(err: CommanderError, cmd: Program | undefined): string {
  let message = err.message.replace(/^error: /, '');
  const withValue = /^unknown option '(--[^=']+)=/.exec(message);
  if (withValue && cmd?.options.some((o) => o.long === withValue[1] && !o.required && !o.optional)) {
    message = `option '${withValue[1]}' does not take an argument`;
  }
  return message;
}

/**
 * Runs the command line `argv` (without node and the script); resolves to the exit code.
 * `io` replaces the process's streams, environment and working folder (see io.ts).
 */
export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  const writeErr = (text: string) => io.err(line(text));
  let code = 0;
  const { program, out } = build(async (command, cmd) => {
    code = await runCommand(command, cmd, io);
  });
  const names = COMMANDS.map((c) => c.name);
  let [name] = argv;
  if (name === undefined) {
    writeErr(program.helpInformation());
    return 2;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    await io.out(line(packageVersion()));
    return 0;
  }
  if (name === 'help') {
    const topic = argv[1];
    if (topic === undefined) argv = ['--help'];
    else if (names.includes(topic)) argv = [topic, '--help'];
    else {
      writeErr(`rhythm: unknown command ${JSON.stringify(topic)}. Commands: ${names.join(', ')}`);
      return 2;
    }
    name = argv[0]!;
  }
  if (name !== '--help' && name !== '-h' && !names.includes(name)) {
    writeErr(`rhythm: unknown command ${JSON.stringify(name)}. Commands: ${names.join(', ')}\nRun 'rhythm --help' for usage.`);
    return 2;
  }
  const cmd = program.commands.find((c) => c.name() === name);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') {
        await io.out(line(out()));
        return 0;
      }
      writeErr(`rhythm ${name}: ${usageMessage(err, cmd)}\nRun 'rhythm ${name} --help' for usage.`);
      return 2;
    }
    if (err instanceof RhythmValidationError) {
      writeErr(`rhythm ${name}: ${err.message}\nRun 'rhythm ${name} --help' for usage.`);
      return 2;
    }
    const e = err as Error;
    writeErr(`rhythm ${name}: error: ${e?.message ?? String(err)}${err instanceof CliError ? '' : timeoutHint(err)}`);
    if (io.env.RHYTHM_DEBUG) writeErr(String(e?.stack ?? ''));
    return 1;
  }
}
