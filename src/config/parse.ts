/**
 * Parsers for setting values as people write them: in a flag, an environment variable or a
 * config file. Each takes the raw value and `where` (the flag, variable or file key it came
 * from) and throws a RhythmValidationError naming both when the value is wrong.
 */
import { RhythmValidationError } from '../errors.js';
import { checkInteger, checkQueueName } from '../validate.js';

/** How a value is shown in an error: strings quoted, structures as JSON. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** An integer within [min, max], from text or a number. */
export function parseInteger(where: string, raw: unknown, min: number, max?: number): number {
  return checkInteger(where, raw, min, max, true);
}

/** A host name or IP address to listen on. */
export function parseHost(where: string, raw: unknown): string {
  const host = typeof raw === 'string' ? raw.trim() : '';
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._:-]{1,253})$/.test(host)) {
    throw new RhythmValidationError(`${where} must be a host name or IP address such as 127.0.0.1 or 0.0.0.0, got ${show(raw)}`);
  }
  // An IPv6 address may come bracketed, as in a URL; listen() wants it bare.
  return host.replace(/^\[(.*)\]$/, '$1');
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/;
const MAX_DURATION_MS = 2_147_483_647;

/**
 * A duration in ms: "500ms", "30s", "5m", "2h", "7d", or a bare number of milliseconds. At most
 * what a timer can wait (24.8 days) unless `maxMs` says more (a duration that only reaches SQL).
 */
export function parseDuration(where: string, raw: unknown, minMs = 0, maxMs = MAX_DURATION_MS): number {
  let ms: number;
  if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0) {
    ms = raw;
  } else {
    const m = typeof raw === 'string' ? DURATION.exec(raw.trim()) : null;
    if (!m)
      throw new RhythmValidationError(
        `${where} must be a duration such as 500ms, 30s, 5m, 2h or 7d (a bare number is milliseconds), got ${show(raw)}`,
      );
    ms = Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!);
  }
  if (ms > maxMs) throw new RhythmValidationError(`${where} is too long (at most ${formatDuration(maxMs)}), got ${show(raw)}`);
  if (ms < minMs) throw new RhythmValidationError(`${where} must be at least ${minMs}ms, got ${show(raw)}`);
  return ms;
}

/** 950 -> "950ms", 1_500 -> "1.5s", 61_000 -> "1m 1s", 90_061_000 -> "1d 1h". */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ];
  const parts: string[] = [];
  let rest = ms;
  for (const [u, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0 || parts.length > 0) parts.push(`${n}${u}`);
    rest -= n * size;
    if (parts.length === 2) break;
  }
  return parts.filter((p) => !/^0[a-z]$/.test(p)).join(' ');
}

/** true/false/1/0/yes/no/on/off. */
export function parseBool(where: string, raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw;
  const s = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
  if (s === 'true' || s === '1' || s === 'yes' || s === 'on') return true;
  if (s === 'false' || s === '0' || s === 'no' || s === 'off') return false;
  throw new RhythmValidationError(`${where} must be true or false, got ${show(raw)}`);
}

/** One of a fixed set of words (case-insensitive). */
export function parseChoice<T extends string>(where: string, raw: unknown, choices: readonly T[]): T {
  const s = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
  if (s !== undefined && (choices as readonly string[]).includes(s)) return s as T;
  throw new RhythmValidationError(`${where} must be one of ${choices.join(', ')}, got ${show(raw)}`);
}

/** A comma-separated list (or an array in a config file) of non-empty names. */
export function parseList(where: string, raw: unknown): string[] {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
  if (!items || items.some((s) => typeof s !== 'string'))
    throw new RhythmValidationError(`${where} must be a comma-separated list of names, got ${show(raw)}`);
  const names = (items as string[]).map((s) => s.trim());
  if (names.length === 0 || names.some((s) => s === '')) throw new RhythmValidationError(`${where} has an empty name in ${show(raw)}`);
  return names;
}

/** A non-empty path (made absolute by the resolver). */
export function parsePath(where: string, raw: unknown): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new RhythmValidationError(`${where} must be a path, got ${show(raw)}`);
  return raw;
}

/** Prefixes a check's own message with where the value came from. */
export function named<T>(where: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof RhythmValidationError) throw new RhythmValidationError(`${where}: ${err.message}`);
    throw err;
  }
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
  named(where, () => checkQueueName(name));
  if (!m) return { name };
  return { name, threads: parseInteger(`${where} thread count in ${JSON.stringify(raw)}`, m[2], 0, MAX_THREADS) };
}

/**
 * Queues to serve. From flags: one spec per --queue (commas allowed too); from the environment:
 * comma-separated; from a config file: an array of specs or { name, threads, only } objects.
 */
export function parseQueues(where: string, raw: unknown, fromFile: boolean): QueueSpec[] {
  const items: unknown[] = Array.isArray(raw)
    ? raw.flatMap((r) => (typeof r === 'string' ? r.split(',') : [r]))
    : typeof raw === 'string'
      ? raw.split(',')
      : [raw];
  const specs: QueueSpec[] = [];
  for (const item of items) {
    let spec: QueueSpec;
    if (typeof item === 'string') {
      spec = parseQueueSpec(where, item.trim());
    } else if (fromFile && item !== null && typeof item === 'object' && !Array.isArray(item)) {
      const o = item as Record<string, unknown>;
      for (const k of Object.keys(o)) {
        if (!['name', 'threads', 'only'].includes(k))
          throw new RhythmValidationError(`${where}: unknown queue setting ${JSON.stringify(k)} (known: name, threads, only)`);
      }
      if (typeof o.name !== 'string')
        throw new RhythmValidationError(`${where}: each queue object needs a "name" string, got ${show(o.name)}`);
      spec = parseQueueSpec(where, o.name);
      if (spec.threads !== undefined)
        throw new RhythmValidationError(`${where}: give the thread count of ${JSON.stringify(o.name)} as "threads", not in the name`);
      if (o.threads !== undefined) spec.threads = parseInteger(`${where} threads of ${JSON.stringify(o.name)}`, o.threads, 0, MAX_THREADS);
      if (o.only !== undefined) spec.only = parseList(`${where} only of ${JSON.stringify(o.name)}`, o.only);
    } else {
      throw new RhythmValidationError(
        `${where}: a queue must be "name" or "name:threads"${fromFile ? ' or { name, threads, only }' : ''}, got ${show(item)}`,
      );
    }
    if (specs.some((s) => s.name === spec.name))
      throw new RhythmValidationError(`${where}: queue ${JSON.stringify(spec.name)} is given twice`);
    specs.push(spec);
  }
  if (specs.length === 0) throw new RhythmValidationError(`${where}: no queue given`);
  return specs;
}
