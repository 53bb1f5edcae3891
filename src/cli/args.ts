/**
 * Flag parsing for the `rhythm` command: node:util parseArgs (no CLI dependency), plus the
 * value parsers every command shares. Every mistake becomes a UsageError (exit code 2) whose
 * message names the flag, environment variable or config key, and the value at fault.
 */
import { parseArgs } from 'node:util';
import { checkQueueName } from '../validate.js';

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface FlagSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

/** Parses argv strictly: unknown flags, missing values and extra positionals are usage errors. */
export function parseFlags(command: string, argv: string[], options: FlagSpecs, maxPositionals: number): Parsed {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true }) as Parsed;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) {
      // parseArgs' own messages already name the flag; keep only their first line.
      throw new UsageError(e.message.split('\n').join(' ').replace(/\s+/g, ' ').trim());
    }
    throw err;
  }
  if (parsed.positionals.length > maxPositionals) {
    const extra = parsed.positionals[maxPositionals]!;
    throw new UsageError(
      maxPositionals === 0
        ? `unexpected argument ${JSON.stringify(extra)}: \`rhythm ${command}\` takes no positional arguments`
        : `unexpected extra argument ${JSON.stringify(extra)}`,
    );
  }
  return parsed;
}

const INT = /^[+-]?\d+$/;

/** An integer within [min, max], from a flag, env variable or config value named by `where`. */
export function parseIntValue(where: string, raw: unknown, min: number, max = 2_147_483_647): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && INT.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === 2_147_483_647 ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError(`${where} must be ${range}, got ${show(raw)}`);
  }
  return n;
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/;

/** A duration: "500ms", "30s", "5m", "2h", "7d", or a bare number of milliseconds. */
export function parseDuration(where: string, raw: unknown): number {
  if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0) return raw;
  const m = typeof raw === 'string' ? DURATION.exec(raw.trim()) : null;
  if (!m) throw new UsageError(`${where} must be a duration such as 500ms, 30s, 5m, 2h or 7d (a bare number is milliseconds), got ${show(raw)}`);
  const ms = Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!);
  if (!Number.isSafeInteger(ms) || ms > 2_147_483_647) throw new UsageError(`${where} is too long: ${show(raw)}`);
  return ms;
}

/** true/false/1/0/yes/no/on/off. */
export function parseBool(where: string, raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw;
  const s = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
  if (s === 'true' || s === '1' || s === 'yes' || s === 'on') return true;
  if (s === 'false' || s === '0' || s === 'no' || s === 'off') return false;
  throw new UsageError(`${where} must be true or false, got ${show(raw)}`);
}

/** A comma-separated list (or an array in a config file) of non-empty names. */
export function parseList(where: string, raw: unknown): string[] {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
  if (!items || items.some((s) => typeof s !== 'string')) throw new UsageError(`${where} must be a comma-separated list of names, got ${show(raw)}`);
  const names = (items as string[]).map((s) => s.trim());
  if (names.length === 0 || names.some((s) => s === '')) throw new UsageError(`${where} has an empty name in ${show(raw)}`);
  return names;
}

export interface QueueSpec {
  name: string;
  /** Threads for this queue's modules; undefined: the --threads default. 0: the main thread. */
  threads?: number;
  /** Task subset for this queue (config file only); undefined: --only, or all. */
  only?: string[];
}

export const MAX_THREADS = 1024;

/**
 * `name` or `name:threads`. Queue names may contain ':', so only a trailing `:<digits>` is a
 * thread count: a queue literally named "shard:7" is written "shard:7:<threads>".
 */
export function parseQueueSpec(where: string, raw: string): QueueSpec {
  const m = /^(.*):(\d+)$/.exec(raw);
  const name = m ? m[1]! : raw;
  try {
    checkQueueName(name);
  } catch (err) {
    throw new UsageError(`${where}: ${(err as Error).message}`);
  }
  if (!m) return { name };
  return { name, threads: parseIntValue(`${where} thread count in ${JSON.stringify(raw)}`, m[2], 0, MAX_THREADS) };
}

export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
