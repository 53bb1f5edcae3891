/**
 * The standard library scripts can call: global functions (String, Number, parseInt...),
 * namespaces (Math, JSON, Object, Array, Number, String, Date, and the durable ones Promise,
 * Task, Workflow, Timer, Signal from durable.ts) and methods of arrays, strings and numbers.
 *
 * Namespaces are resolved at compile time (a call node holds its function), so an unknown
 * member is a compile error listing what exists. Methods are looked up by the receiver's type at
 * run time. Everything is a thin layer over the native implementation; what is written out is
 * argument checking, callbacks (arrow closures run by the interpreter) and the two values that
 * come from the host: Math.random() and Date.now().
 */
import type { Machine } from './interpreter.js';
import { combinator, signalNext, taskRun, timerDelay, timerUntil, workflowRun } from './durable.js';
import { jsonText } from './json.js';
import {
  Closure,
  MAX_LENGTH,
  describe,
  defineOwn,
  isAwaitable,
  isPlainObject,
  iterableItems,
  joinArray,
  own,
  toNum,
  toStr,
} from './values.js';

export type BuiltinFn = (m: Machine, args: unknown[], at: number) => unknown;
export type Method<T> = (m: Machine, self: T, args: unknown[], at: number) => unknown;

/** Array methods whose first argument may be an arrow function (the only place arrows are allowed). */
export const CALLBACK_METHODS = new Set([
  'map',
  'filter',
  'find',
  'findIndex',
  'findLast',
  'findLastIndex',
  'some',
  'every',
  'reduce',
  'reduceRight',
  'forEach',
  'flatMap',
  'sort',
  'toSorted',
]);

/** `new Error(...)` and friends, the only constructors. */
export const ERROR_CONSTRUCTORS = new Set(['Error', 'TypeError', 'RangeError', 'ReferenceError', 'SyntaxError']);

const num = (v: unknown): number => toNum(v);
/** Strings, numbers and booleans pass to native methods as they are; objects as their string form. */
const prim = (v: unknown): unknown => (typeof v === 'object' && v !== null ? toStr(v) : v);

function mathFn(f: (...xs: number[]) => number): BuiltinFn {
  return (_m, args) => f(...args.map(num));
}

function random(m: Machine, _args: unknown[], at: number): number {
  const r = m.random();
  if (typeof r !== 'number' || !(r >= 0 && r < 1))
    m.fail('Error', at, `the host's random source returned ${describe(r)}, not a number in [0, 1)`);
  return r;
}

const MATH_FUNCTIONS: Record<string, BuiltinFn> = { random };
for (const name of [
  'abs',
  'acos',
  'acosh',
  'asin',
  'asinh',
  'atan',
  'atan2',
  'atanh',
  'cbrt',
  'ceil',
  'cos',
  'cosh',
  'exp',
  'expm1',
  'floor',
  'fround',
  'hypot',
  'log',
  'log10',
  'log1p',
  'log2',
  'max',
  'min',
  'pow',
  'round',
  'sign',
  'sin',
  'sinh',
  'sqrt',
  'tan',
  'tanh',
  'trunc',
] as const) {
  MATH_FUNCTIONS[name] = mathFn(Math[name] as (...xs: number[]) => number);
}

function parseJson(m: Machine, args: unknown[], at: number): unknown {
  try {
    return JSON.parse(toStr(args[0]));
  } catch (err) {
    m.fail('SyntaxError', at, `JSON.parse: ${(err as Error).message}`);
  }
}

function objectArg(m: Machine, v: unknown, call: string, at: number): object {
  if (v === null || v === undefined) m.fail('TypeError', at, `${call} cannot take ${v}`);
  if (isAwaitable(v)) m.fail('TypeError', at, `${call} cannot take ${describe(v)}; await it first`);
  return typeof v === 'object' ? v : Object(v);
}

function keysOf(m: Machine, v: unknown, call: string, at: number): string[] {
  const o = objectArg(m, v, call, at);
  return Object.keys(o);
}

function valueAt(o: object, key: string): unknown {
  return (o as Record<string, unknown>)[key];
}

export interface Namespace {
  functions: Record<string, BuiltinFn>;
  constants: Record<string, unknown>;
}

export const NAMESPACES: Record<string, Namespace> = {
  Math: {
    functions: MATH_FUNCTIONS,
    constants: {
      PI: Math.PI,
      E: Math.E,
      LN2: Math.LN2,
      LN10: Math.LN10,
      LOG2E: Math.LOG2E,
      LOG10E: Math.LOG10E,
      SQRT2: Math.SQRT2,
      SQRT1_2: Math.SQRT1_2,
    },
  },
  JSON: {
    functions: {
      parse: parseJson,
      stringify: (m, args, at) => jsonText(m, args[0], args[2], at),
    },
    constants: {},
  },
  Object: {
    functions: {
      keys: (m, args, at) => keysOf(m, args[0], 'Object.keys', at),
      values: (m, args, at) => {
        const o = objectArg(m, args[0], 'Object.values', at);
        return Object.keys(o).map((k) => valueAt(o, k));
      },
      entries: (m, args, at) => {
        const o = objectArg(m, args[0], 'Object.entries', at);
        return Object.keys(o).map((k) => [k, valueAt(o, k)]);
      },
      fromEntries: (m, args, at) => {
        const items = args[0];
        if (!Array.isArray(items))
          return m.fail('TypeError', at, `Object.fromEntries takes an array of [key, value] pairs, got ${describe(items)}`);
        const o: Record<string, unknown> = {};
        for (const pair of items) {
          if (!Array.isArray(pair)) m.fail('TypeError', at, `Object.fromEntries: ${describe(pair)} is not a [key, value] pair`);
          defineOwn(o, toStr(pair[0]), pair[1]);
        }
        return o;
      },
      assign: (m, args, at) => {
        const target = args[0];
        if (!isPlainObject(target)) return m.fail('TypeError', at, `Object.assign needs an object to assign to, got ${describe(target)}`);
        for (let i = 1; i < args.length; i++) {
          const src = args[i];
          if (src === null || src === undefined) continue;
          const o = objectArg(m, src, 'Object.assign', at);
          for (const k of Object.keys(o)) defineOwn(target, k, valueAt(o, k));
        }
        return target;
      },
      is: (_m, args) => Object.is(args[0], args[1]),
      hasOwn: (m, args, at) => own(objectArg(m, args[0], 'Object.hasOwn', at), toStr(args[1])),
    },
    constants: {},
  },
  Array: {
    functions: {
      isArray: (_m, args) => Array.isArray(args[0]),
      from: (m, args, at) => {
        const items = iterableItems(args[0]);
        if (items === undefined) return m.fail('TypeError', at, `Array.from takes an array or a string, got ${describe(args[0])}`);
        return items.slice();
      },
      of: (_m, args) => args,
    },
    constants: {},
  },
  Number: {
    functions: {
      isInteger: (_m, args) => Number.isInteger(args[0]),
      isSafeInteger: (_m, args) => Number.isSafeInteger(args[0]),
      isFinite: (_m, args) => Number.isFinite(args[0]),
      isNaN: (_m, args) => Number.isNaN(args[0]),
      parseFloat: (_m, args) => Number.parseFloat(toStr(args[0])),
      parseInt: (_m, args) => Number.parseInt(toStr(args[0]), args[1] === undefined ? undefined : num(args[1])),
    },
    constants: {
      MAX_SAFE_INTEGER: Number.MAX_SAFE_INTEGER,
      MIN_SAFE_INTEGER: Number.MIN_SAFE_INTEGER,
      EPSILON: Number.EPSILON,
      MAX_VALUE: Number.MAX_VALUE,
      MIN_VALUE: Number.MIN_VALUE,
      POSITIVE_INFINITY: Infinity,
      NEGATIVE_INFINITY: -Infinity,
      NaN,
    },
  },
  String: {
    functions: {
      fromCharCode: (_m, args) => String.fromCharCode(...args.map(num)),
      fromCodePoint: (m, args, at) => {
        try {
          return String.fromCodePoint(...args.map(num));
        } catch (err) {
          m.fail('RangeError', at, (err as Error).message);
        }
      },
    },
    constants: {},
  },
  Date: {
    functions: {
      now: (m) => m.now,
      parse: (_m, args) => Date.parse(toStr(args[0])),
    },
    constants: {},
  },
  Promise: {
    functions: { all: combinator('all'), allSettled: combinator('allSettled'), any: combinator('any'), race: combinator('race') },
    constants: {},
  },
  Task: { functions: { run: taskRun }, constants: {} },
  Workflow: { functions: { run: workflowRun }, constants: {} },
  Timer: { functions: { delay: timerDelay, until: timerUntil }, constants: {} },
  Signal: { functions: { next: signalNext }, constants: {} },
};

export const GLOBAL_FUNCTIONS: Record<string, BuiltinFn> = {
  String: (_m, args) => (args.length === 0 ? '' : toStr(args[0])),
  Number: (_m, args) => (args.length === 0 ? 0 : num(args[0])),
  Boolean: (_m, args) => !!args[0],
  parseInt: (_m, args) => Number.parseInt(toStr(args[0]), args[1] === undefined ? undefined : num(args[1])),
  parseFloat: (_m, args) => Number.parseFloat(toStr(args[0])),
  isNaN: (_m, args) => Number.isNaN(num(args[0])),
  isFinite: (_m, args) => Number.isFinite(num(args[0])),
};

/** Values that are plain identifiers in JavaScript. */
export const GLOBAL_CONSTANTS: Record<string, unknown> = { undefined: undefined, NaN, Infinity };

// ---- methods ---------------------------------------------------------------------------

function callback(m: Machine, v: unknown, method: string, at: number): Closure {
  if (!(v instanceof Closure)) m.fail('TypeError', at, `${method} takes an arrow function, like ${method}((x) => ...), got ${describe(v)}`);
  return v;
}

function checkLength(m: Machine, n: number, at: number): void {
  if (n > MAX_LENGTH) m.fail('RangeError', at, `the result would be ${n} long, over the limit of ${MAX_LENGTH}`);
}

/** Sorts like Array.prototype.sort: undefined last, then the comparator or string order. */
function sortInPlace(m: Machine, a: unknown[], cmp: unknown, at: number): unknown[] {
  if (cmp === undefined) {
    const keyed = a.filter((x) => x !== undefined).map((x) => [toStr(x), x] as const);
    const undef = a.length - keyed.length;
    keyed.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    for (let i = 0; i < keyed.length; i++) a[i] = keyed[i][1];
    for (let i = keyed.length; i < keyed.length + undef; i++) a[i] = undefined;
    return a;
  }
  const c = callback(m, cmp, 'sort', at);
  return a.sort((x, y) => {
    const r = num(m.call(c, [x, y]));
    return Number.isNaN(r) ? 0 : r;
  });
}

function reduce(m: Machine, a: unknown[], args: unknown[], at: number, right: boolean): unknown {
  const name = right ? 'reduceRight' : 'reduce';
  const c = callback(m, args[0], name, at);
  const len = a.length;
  let i = right ? len - 1 : 0;
  const step = right ? -1 : 1;
  let acc: unknown;
  if (args.length >= 2) acc = args[1];
  else {
    if (len === 0) m.fail('TypeError', at, `${name} of an empty array needs an initial value`);
    acc = a[i];
    i += step;
  }
  for (; right ? i >= 0 : i < len; i += step) acc = m.call(c, [acc, a[i], i, a]);
  return acc;
}

const arrayMethods: Record<string, Method<unknown[]>> = {
  map: (m, a, args, at) => {
    const c = callback(m, args[0], 'map', at);
    const len = a.length;
    const out = new Array<unknown>(len);
    for (let i = 0; i < len; i++) out[i] = m.call(c, [a[i], i, a]);
    return out;
  },
  filter: (m, a, args, at) => {
    const c = callback(m, args[0], 'filter', at);
    const out: unknown[] = [];
    const len = a.length;
    for (let i = 0; i < len; i++) if (m.call(c, [a[i], i, a])) out.push(a[i]);
    return out;
  },
  flatMap: (m, a, args, at) => {
    const c = callback(m, args[0], 'flatMap', at);
    const out: unknown[] = [];
    const len = a.length;
    for (let i = 0; i < len; i++) {
      const r = m.call(c, [a[i], i, a]);
      if (Array.isArray(r)) for (const x of r) out.push(x);
      else out.push(r);
    }
    return out;
  },
  forEach: (m, a, args, at) => {
    const c = callback(m, args[0], 'forEach', at);
    const len = a.length;
    for (let i = 0; i < len; i++) m.call(c, [a[i], i, a]);
    return undefined;
  },
  find: (m, a, args, at) => {
    const c = callback(m, args[0], 'find', at);
    for (let i = 0; i < a.length; i++) if (m.call(c, [a[i], i, a])) return a[i];
    return undefined;
  },
  findIndex: (m, a, args, at) => {
    const c = callback(m, args[0], 'findIndex', at);
    for (let i = 0; i < a.length; i++) if (m.call(c, [a[i], i, a])) return i;
    return -1;
  },
  findLast: (m, a, args, at) => {
    const c = callback(m, args[0], 'findLast', at);
    for (let i = a.length - 1; i >= 0; i--) if (m.call(c, [a[i], i, a])) return a[i];
    return undefined;
  },
  findLastIndex: (m, a, args, at) => {
    const c = callback(m, args[0], 'findLastIndex', at);
    for (let i = a.length - 1; i >= 0; i--) if (m.call(c, [a[i], i, a])) return i;
    return -1;
  },
  some: (m, a, args, at) => {
    const c = callback(m, args[0], 'some', at);
    for (let i = 0; i < a.length; i++) if (m.call(c, [a[i], i, a])) return true;
    return false;
  },
  every: (m, a, args, at) => {
    const c = callback(m, args[0], 'every', at);
    for (let i = 0; i < a.length; i++) if (!m.call(c, [a[i], i, a])) return false;
    return true;
  },
  reduce: (m, a, args, at) => reduce(m, a, args, at, false),
  reduceRight: (m, a, args, at) => reduce(m, a, args, at, true),
  sort: (m, a, args, at) => sortInPlace(m, a, args[0], at),
  toSorted: (m, a, args, at) => sortInPlace(m, a.slice(), args[0], at),
  push: (m, a, args, at) => {
    checkLength(m, a.length + args.length, at);
    for (const x of args) a.push(x);
    return a.length;
  },
  pop: (_m, a) => a.pop(),
  shift: (_m, a) => a.shift(),
  unshift: (m, a, args, at) => {
    checkLength(m, a.length + args.length, at);
    return a.unshift(...args);
  },
  slice: (_m, a, args) => a.slice(args[0] === undefined ? undefined : num(args[0]), args[1] === undefined ? undefined : num(args[1])),
  splice: (m, a, args, at) => {
    checkLength(m, a.length + args.length, at);
    if (args.length === 0) return [];
    if (args.length === 1) return a.splice(num(args[0]));
    return a.splice(num(args[0]), num(args[1]), ...args.slice(2));
  },
  concat: (m, a, args, at) => {
    const out = a.slice();
    for (const x of args) {
      if (Array.isArray(x)) for (const y of x) out.push(y);
      else out.push(x);
    }
    checkLength(m, out.length, at);
    return out;
  },
  join: (_m, a, args) => joinArray(a, args[0] === undefined ? ',' : toStr(args[0]), new Set()),
  indexOf: (_m, a, args) => a.indexOf(args[0], args[1] === undefined ? undefined : num(args[1])),
  lastIndexOf: (_m, a, args) => (args.length > 1 ? a.lastIndexOf(args[0], num(args[1])) : a.lastIndexOf(args[0])),
  includes: (_m, a, args) => a.includes(args[0], args[1] === undefined ? undefined : num(args[1])),
  reverse: (_m, a) => a.reverse(),
  toReversed: (_m, a) => a.slice().reverse(),
  fill: (_m, a, args) =>
    a.fill(args[0], args[1] === undefined ? undefined : num(args[1]), args[2] === undefined ? undefined : num(args[2])),
  flat: (_m, a, args) => a.flat(args[0] === undefined ? 1 : num(args[0])),
  at: (_m, a, args) => a.at(num(args[0])),
  toString: (_m: Machine, a: unknown[]) => joinArray(a, ',', new Set()),
};

const STRING_NATIVE = [
  'at',
  'charAt',
  'charCodeAt',
  'codePointAt',
  'concat',
  'endsWith',
  'includes',
  'indexOf',
  'lastIndexOf',
  'localeCompare',
  'normalize',
  'replace',
  'replaceAll',
  'slice',
  'split',
  'startsWith',
  'substring',
  'toLowerCase',
  'toUpperCase',
  'toString',
  'trim',
  'trimEnd',
  'trimStart',
] as const;

const stringMethods: Record<string, Method<string>> = {
  padStart: (m, s, args, at) => {
    checkLength(m, num(args[0]), at);
    return s.padStart(num(args[0]), args[1] === undefined ? undefined : toStr(args[1]));
  },
  padEnd: (m, s, args, at) => {
    checkLength(m, num(args[0]), at);
    return s.padEnd(num(args[0]), args[1] === undefined ? undefined : toStr(args[1]));
  },
  repeat: (m, s, args, at) => {
    const n = num(args[0]);
    if (!(n >= 0) || n === Infinity) m.fail('RangeError', at, `repeat count must be a number >= 0, got ${describe(args[0])}`);
    checkLength(m, s.length * n, at);
    return s.repeat(n);
  },
};
for (const name of STRING_NATIVE) {
  const f = String.prototype[name] as (...xs: unknown[]) => unknown;
  stringMethods[name] = (_m, s, args) => f.apply(s, args.map(prim));
}

const numberMethods: Record<string, Method<number>> = {
  toFixed: (m, n, args, at) => {
    try {
      return n.toFixed(args[0] === undefined ? undefined : num(args[0]));
    } catch (err) {
      m.fail('RangeError', at, (err as Error).message);
    }
  },
  toPrecision: (m, n, args, at) => {
    try {
      return n.toPrecision(args[0] === undefined ? undefined : num(args[0]));
    } catch (err) {
      m.fail('RangeError', at, (err as Error).message);
    }
  },
  toString: (m: Machine, n: number, args: unknown[], at: number) => {
    try {
      return n.toString(args[0] === undefined ? undefined : num(args[0]));
    } catch (err) {
      m.fail('RangeError', at, (err as Error).message);
    }
  },
};

export const ARRAY_METHODS = new Map(Object.entries(arrayMethods)) as Map<string, Method<unknown>>;
export const STRING_METHODS = new Map(Object.entries(stringMethods)) as Map<string, Method<unknown>>;
export const NUMBER_METHODS = new Map(Object.entries(numberMethods)) as Map<string, Method<unknown>>;
