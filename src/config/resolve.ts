/**
 * Where each setting's value comes from, in order of precedence:
 *   1. a command-line flag,
 *   2. an environment variable (the first non-empty one the setting names),
 *   3. the config file,
 *   4. the default (which a command may override, e.g. quieter logs for one-shot commands).
 * Each resolved value remembers its source, so `rhythm config` and the startup log can say
 * why a value is what it is. The library reads the environment through fromEnvironment().
 */
import path from 'node:path';
import { SETTINGS, SETTING_KEYS, flagName, type SettingDef, type SettingKey, type Settings } from './settings.js';
import type { ConfigFile } from './file.js';

export interface Sourced<T> {
  value: T;
  /** "flag --x", "env X", "config <file>" or "default". */
  source: string;
}

function def<K extends SettingKey>(key: K): SettingDef<Settings[K]> {
  return SETTINGS[key] as unknown as SettingDef<Settings[K]>;
}

/** The setting from its environment variables, parsed and checked; undefined when none is set. */
export function fromEnvironment<K extends SettingKey>(
  key: K,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Sourced<Settings[K]> | undefined {
  const d = def(key);
  const name = d.env.find((n) => env[n] !== undefined && env[n] !== '');
  if (name === undefined) return undefined;
  const value = d.parse(env[name], name, 'env');
  return { value: d.isPath ? (path.resolve(cwd, value as string) as Settings[K]) : value, source: `env ${name}` };
}

/** The setting from the environment, else its default: how the library fills an option not given. */
export function environmentOrDefault<K extends SettingKey>(key: K): Settings[K] {
  const found = fromEnvironment(key);
  return found ? found.value : def(key).default();
}

export interface Resolved {
  settings: Settings;
  sources: Record<SettingKey, string>;
  file: ConfigFile | undefined;
}

export interface SettingSources {
  /** Raw values of the flags given on the command line. */
  flags: Partial<Record<SettingKey, unknown>>;
  env?: NodeJS.ProcessEnv;
  file?: ConfigFile;
  cwd?: string;
  /** Defaults of this command that differ from the settings' own. */
  defaults?: Partial<Settings>;
}

/**
 * Resolves `keys` (the settings a command uses) by precedence. Settings a command does not
 * use are neither read nor checked, so a bad RHYTHM_THREADS cannot break `rhythm get`.
 */
export function resolveSettings(keys: readonly SettingKey[], from: SettingSources): Resolved {
  const env = from.env ?? process.env;
  const cwd = from.cwd ?? process.cwd();
  const settings: Record<string, unknown> = {};
  const sources = {} as Record<SettingKey, string>;
  for (const key of SETTING_KEYS) {
    const d = def(key);
    const overridden = from.defaults !== undefined && key in from.defaults;
    settings[key] = overridden ? from.defaults![key] : d.default(cwd);
    sources[key] = 'default';
    if (!keys.includes(key)) continue;
    const flag = from.flags[key];
    if (flag !== undefined) {
      const where = `--${flagName(key)}`;
      const value = d.switchSets !== undefined ? d.switchSets : d.parse(flag, where, 'flag');
      settings[key] = d.isPath ? path.resolve(cwd, value as string) : value;
      sources[key] = `flag ${where}`;
      continue;
    }
    const fromEnv = fromEnvironment(key, env, cwd);
    if (fromEnv) {
      settings[key] = fromEnv.value;
      sources[key] = fromEnv.source;
      continue;
    }
    const file = from.file;
    if (file && file.values[key] !== undefined) {
      const value = d.parse(file.values[key], `${file.path}: "${key}"`, 'file');
      settings[key] = d.isPath ? path.resolve(path.dirname(file.path), value as string) : value;
      sources[key] = `config ${file.path}`;
    }
  }
  return { settings: settings as Settings, sources, file: from.file };
}
