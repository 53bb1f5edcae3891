/**
 * The config file: --config / RHYTHM_CONFIG, else rhythm.config.{json,mjs,js,cjs,ts} in the
 * working folder. It holds an object of settings under their keys (see settings.ts), or a
 * module whose default export is that object or a function returning it. Besides settings it
 * may declare cron schedules under "schedules" (name -> schedule options): not a setting (no
 * flag or variable could hold them), but what the processes running the internal worker make
 * the stored schedules match at start.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { RhythmValidationError } from '../errors.js';
import { SETTING_KEYS, type SettingKey } from './settings.js';
import { parseJsonText } from './json-text.js';
import { show } from './parse.js';

export const CONFIG_FILE_NAMES = ['rhythm.config.json', 'rhythm.config.mjs', 'rhythm.config.js', 'rhythm.config.cjs', 'rhythm.config.ts'];

/** The environment variable naming the config file (the file cannot name itself). */
export const CONFIG_ENV = 'RHYTHM_CONFIG';

/** The key of the declared schedules. */
export const SCHEDULES_KEY = 'schedules';

export interface ConfigFile {
  path: string;
  values: Partial<Record<SettingKey, unknown>>;
  /** The declared cron schedules by name (unchecked here: syncSchedules checks every entry); undefined when the file has no "schedules". */
  schedules?: Record<string, unknown>;
}

/** Finds and reads the config file; undefined when there is none. */
export async function loadConfigFile(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Promise<ConfigFile | undefined> {
  let file: string;
  let where: string;
  const named = env[CONFIG_ENV] ?? '';
  if (flag !== undefined || named !== '') {
    where = flag !== undefined ? '--config' : CONFIG_ENV;
    file = path.resolve(cwd, flag ?? named);
    if (!existsSync(file) || !statSync(file).isFile()) throw new RhythmValidationError(`${where}: no config file at ${file}`);
  } else {
    const found = CONFIG_FILE_NAMES.map((n) => path.join(cwd, n)).filter((p) => existsSync(p));
    if (found.length === 0) return undefined;
    if (found.length > 1) {
      throw new RhythmValidationError(
        `several config files in ${cwd}: ${found.map((f) => path.basename(f)).join(', ')}; keep one, or choose with --config`,
      );
    }
    file = found[0]!;
    where = file;
  }
  const values = await readConfigFile(file, where);
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    throw new RhythmValidationError(`${file} must hold an object of settings (keys: ${SETTING_KEYS.join(', ')}), got ${show(values)}`);
  }
  const { [SCHEDULES_KEY]: schedules, ...settings } = values as Record<string, unknown>;
  for (const key of Object.keys(settings)) {
    if (!(SETTING_KEYS as string[]).includes(key)) {
      throw new RhythmValidationError(
        `${file}: unknown setting ${JSON.stringify(key)} (known: ${[...SETTING_KEYS, SCHEDULES_KEY].join(', ')})`,
      );
    }
  }
  if (schedules === undefined) return { path: file, values: settings as ConfigFile['values'] };
  if (schedules === null || typeof schedules !== 'object' || Array.isArray(schedules)) {
    throw new RhythmValidationError(
      `${file}: "${SCHEDULES_KEY}" must be an object of schedules by name ({ "nightly": { "cron": "0 3 * * *", "task": "report" } }), got ${show(schedules)}`,
    );
  }
  return { path: file, values: settings as ConfigFile['values'], schedules: schedules as Record<string, unknown> };
}

async function readConfigFile(file: string, where: string): Promise<unknown> {
  const ext = path.extname(file);
  if (ext === '.json') return parseJsonText(file, readFileSync(file, 'utf8'));
  if (!['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'].includes(ext)) {
    throw new RhythmValidationError(`${where}: config file ${file} must end in .json, .mjs, .js, .cjs or .ts`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (ext.endsWith('ts') && (code === 'ERR_UNKNOWN_FILE_EXTENSION' || err instanceof SyntaxError)) {
      throw new RhythmValidationError(
        `${file}: this Node.js (${process.version}) cannot load a TypeScript config file by itself. ` +
          'Use rhythm.config.json or rhythm.config.mjs, compile the file to JavaScript, ' +
          'or run with a TypeScript loader (NODE_OPTIONS="--import tsx") or on a Node.js that strips types (22.18+ / 23.6+).',
      );
    }
    throw new RhythmValidationError(`${file} failed to load: ${(err as Error).message}`);
  }
  let value: unknown = mod.default ?? mod;
  if (typeof value === 'function') value = await (value as () => unknown)();
  return value;
}
