/**
 * Runtime values of the .flow language and JavaScript's conversions over them.
 *
 * Script values are plain JavaScript values (numbers, strings, arrays, plain objects), so the
 * interpreter is fast and built-ins can use the native methods. Four kinds of our own join them:
 * a Handle (a Task.run, Workflow.run, Timer or Signal.next call, pending or settled), a
 * Combinator (Promise.all/any/race/allSettled over values), an ErrorValue (what `throw` and
 * failed children produce) and a Closure (an arrow callback, which never outlives the call it
 * is passed to). All but Closure are saved in the state (state.ts).
 *
 * The conversions are written out rather than left to the native operators because a script
 * object is data: `{ toString: "x" }` must not make `"" + obj` call a property, and a pending
 * handle must not quietly become "[object Object]" in a payload.
 */

export type HandleKind = 'task' | 'workflow' | 'timer' | 'signal';
export type CombinatorKind = 'all' | 'allSettled' | 'any' | 'race';

/** Handle states. */
export const PENDING = 0;
export const FULFILLED = 1;
export const REJECTED = 2;

/** A durable call: its sequence number is its identity for the runtime (child key, timer, signal wait). */
export class Handle {
  state: number = PENDING;
  /** The result, the signal's payload, or the error (an ErrorValue) once settled. */
  value: unknown = undefined;
  /** When it settled, in host milliseconds (orders the members of a race). */
  at = 0;
  constructor(
    readonly seq: number,
    readonly kind: HandleKind,
    /** Task, workflow or signal name; '' for timers. */
    readonly name: string,
    /** Host time when the call was made. */
    readonly created: number,
    /** Timers only: when it fires. */
    readonly fireAt: number,
  ) {}
}

export class Combinator {
  constructor(
    readonly kind: CombinatorKind,
    readonly members: unknown[],
  ) {}
}

/**
 * An error as scripts see it: own data properties `name`, `message`, `location` (the
 * file:line:column where it was made or thrown) and any extra fields (a failed child's
 * `executionId`, an AggregateError's `errors`).
 */
export class ErrorValue {
  [key: string]: unknown;
  constructor(name: string, message: string, location?: string) {
    this.name = name;
    this.message = message;
    if (location !== undefined) this.location = location;
  }
}

/** An arrow callback; `node` is its Arrow node. One per node, made at compile time. */
export class Closure {
  constructor(readonly node: number) {}
}

/** The value of a `let`/`const` slot before its declaration runs. */
export const TDZ: unique symbol = Symbol('uninitialized');
/** What an optional chain (`a?.b.c`) evaluates to inside the chain once it short-circuits. */
export const SHORT: unique symbol = Symbol('short-circuit');

/** A script-level `throw` travelling up the JavaScript stack through expression evaluation. */
export class FlowThrow {
  constructor(readonly value: unknown) {}
}

const hasOwn = Object.prototype.hasOwnProperty;

export function own(o: object, key: string): boolean {
  return hasOwn.call(o, key);
}

/** Longest array a script may grow by assignment, and longest string repeat/pad may build. */
export const MAX_LENGTH = 10_000_000;

export function isAwaitable(v: unknown): v is Handle | Combinator {
  return v instanceof Handle || v instanceof Combinator;
}

/** A plain data object (not an array, handle, error or closure). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof Handle) &&
    !(v instanceof Combinator) &&
    !(v instanceof ErrorValue) &&
    !(v instanceof Closure)
  );
}

export function typeOf(v: unknown): string {
  if (v instanceof Closure) return 'function';
  const t = typeof v;
  return t === 'symbol' ? 'undefined' : t;
}

const HANDLE_CALL: Record<HandleKind, string> = {
  task: 'Task.run',
  workflow: 'Workflow.run',
  timer: 'Timer',
  signal: 'Signal.next',
};

/** How a value is named in an error message. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return v.length > 40 ? `${JSON.stringify(v.slice(0, 40))}...` : JSON.stringify(v);
  if (typeof v !== 'object') return String(v);
  if (v instanceof Handle)
    return v.kind === 'timer' ? 'a pending Timer handle' : `a pending ${HANDLE_CALL[v.kind]}(${JSON.stringify(v.name)}) handle`;
  if (v instanceof Combinator) return `a pending Promise.${v.kind}(...)`;
  if (v instanceof ErrorValue) return `an error (${String(v.name)})`;
  if (v instanceof Closure) return 'a callback';
  if (Array.isArray(v)) return 'an array';
  return 'an object';
}

export function toStr(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      return String(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'undefined':
      return 'undefined';
  }
  if (v === null) return 'null';
  if (Array.isArray(v)) return joinArray(v, ',', new Set());
  if (v instanceof ErrorValue) {
    const name = v.name === undefined ? 'Error' : toStr(v.name);
    const message = v.message === undefined ? '' : toStr(v.message);
    return message === '' ? name : name === '' ? message : `${name}: ${message}`;
  }
  if (v instanceof Handle || v instanceof Combinator) return `[${describe(v)}]`;
  if (v instanceof Closure) return '[callback]';
  return '[object Object]';
}

/** Array.prototype.join: null and undefined become '', a cycle becomes '' (as in V8). */
export function joinArray(a: unknown[], sep: string, seen: Set<unknown>): string {
  if (seen.has(a)) return '';
  seen.add(a);
  let out = '';
  for (let i = 0; i < a.length; i++) {
    if (i > 0) out += sep;
    const x = a[i];
    if (x === null || x === undefined) continue;
    out += Array.isArray(x) ? joinArray(x, ',', seen) : toStr(x);
  }
  seen.delete(a);
  return out;
}

export function toNum(v: unknown): number {
  switch (typeof v) {
    case 'number':
      return v;
    case 'string':
      return Number(v);
    case 'boolean':
      return v ? 1 : 0;
    case 'undefined':
      return NaN;
  }
  if (v === null) return 0;
  if (Array.isArray(v)) return Number(toStr(v));
  return NaN;
}

/** ToPrimitive for operators: objects turn into their string form. */
export function toPrim(v: unknown): unknown {
  return typeof v === 'object' && v !== null ? toStr(v) : v;
}

export function add(l: unknown, r: unknown): unknown {
  if (typeof l === 'number' && typeof r === 'number') return l + r;
  if (typeof l === 'string' && typeof r === 'string') return l + r;
  const a = toPrim(l);
  const b = toPrim(r);
  if (typeof a === 'string' || typeof b === 'string') return toStr(a) + toStr(b);
  return toNum(a) + toNum(b);
}

/** `<`, `<=`, `>`, `>=`: strings compare as strings, everything else as numbers. */
export function compare(op: string, l: unknown, r: unknown): boolean {
  let a = l;
  let b = r;
  if (!(typeof a === 'number' && typeof b === 'number')) {
    a = toPrim(a);
    b = toPrim(b);
    if (!(typeof a === 'string' && typeof b === 'string')) {
      a = toNum(a);
      b = toNum(b);
    }
  }
  switch (op) {
    case '<':
      return (a as number) < (b as number);
    case '<=':
      return (a as number) <= (b as number);
    case '>':
      return (a as number) > (b as number);
    default:
      return (a as number) >= (b as number);
  }
}

/** `==`: JavaScript's loose equality without calling anything on a script object. */
export function looseEq(l: unknown, r: unknown): boolean {
  if (l === null || l === undefined) return r === null || r === undefined;
  if (r === null || r === undefined) return false;
  const lo = typeof l === 'object';
  const ro = typeof r === 'object';
  if (lo && ro) return l === r;
  const a = lo ? toStr(l) : l;
  const b = ro ? toStr(r) : r;
  // biome-ignore lint/suspicious/noDoubleEquals: the script's == is JavaScript's loose equality, on primitives here.
  return (a as string | number | boolean) == (b as string | number | boolean);
}

/** A property key from a computed member: numbers stay numbers (array indexes), others become strings. */
export function toKey(v: unknown): string | number {
  return typeof v === 'number' ? v : toStr(v);
}

/** The index an array key names, or -1. */
export function arrayIndex(key: string | number): number {
  if (typeof key === 'number') return Number.isInteger(key) && key >= 0 && key < 4294967295 ? key : -1;
  if (key.length === 0 || key.length > 10) return -1;
  const n = Number(key);
  return Number.isInteger(n) && n >= 0 && n < 4294967295 && String(n) === key ? n : -1;
}

/** Own property keys as for-in, Object.keys and object spread see them. */
export function ownKeys(v: unknown): string[] {
  if (typeof v === 'string') return Array.from({ length: v.length }, (_, i) => String(i));
  if (typeof v !== 'object' || v === null) return [];
  if (Array.isArray(v)) return Array.from({ length: v.length }, (_, i) => String(i));
  return Object.keys(v);
}

/** Sets an own data property, also for the key "__proto__" (which plain assignment would treat as the prototype). */
export function defineOwn(o: Record<string, unknown>, key: string, v: unknown): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value: v, writable: true, enumerable: true, configurable: true });
  else o[key] = v;
}

/** The elements a for-of loop or a spread walks: an array itself, or a string's characters. */
export function iterableItems(v: unknown): unknown[] | undefined {
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return Array.from(v);
  return undefined;
}
