/**
 * The executions that wait() and waitMany() resolve with, decoded on demand. A burst of waits
 * reads thousands of finished rows, and most callers look at a field or two (the status, the
 * result): parsing every payload and result and building four Dates per row, and keeping
 * that graph alive until the caller lets go of it, cost more than the read itself. So the
 * payload, the result, the four times and the attempt log are kept as read (JSON text, the
 * binary times as hex) and decoded on first access, once.
 *
 * For the caller it is a plain object like the one `get` returns: its prototype is
 * Object.prototype, its own enumerable keys are the same in the same order, JSON.stringify,
 * spread, structuredClone, util.inspect and deep equality see the same values. The decoded
 * fields are own accessor properties (their descriptors are the one visible difference);
 * assigning one replaces its value as it would on a plain object.
 */
import { inspect } from 'node:util';
import pg from 'pg';
import type { Execution } from '../types.js';
import { toAttemptLog, type StoredAttempt } from './get.js';

/** A finished row as the read returns it (see finished.ts): the decoded-late fields raw. */
export type FinishedRow = [
  id: string,
  kind: Execution['kind'],
  name: string,
  queue: string,
  status: Execution['status'],
  payload: string | null,
  result: string | null,
  error: Execution['error'],
  priority: number,
  attempts: number,
  maxAttempts: number,
  parentId: string | null,
  group: string | null,
  /** createdAt, runAt, startedAt, finishedAt: 16 characters each, see TIME_SLOT. */
  times: string,
  attemptLog: StoredAttempt[] | null,
  progress: unknown,
];

/**
 * The four times travel as one column, each in 16 characters: its binary form in hex (see
 * fromBinaryTime), or NULL_TIME: one string to read and keep instead of four.
 */
const TIME_SLOT = 16;
export const NULL_TIME = '-'.repeat(TIME_SLOT);

const JSONB_OID = 3802;

/** JSON text as pg would have parsed the jsonb column (a type parser set on pg applies too). */
function parseJson(text: string | null): unknown {
  return text === null ? null : pg.types.getTypeParser(JSONB_OID, 'text')(text);
}

function parseTime(times: string, slot: number): Date | null {
  const hex = times.slice(slot * TIME_SLOT, (slot + 1) * TIME_SLOT);
  return hex === NULL_TIME ? null : fromBinaryTime(hex);
}

/** The late fields, in the order of their bits. */
const LATE = ['payload', 'result', 'createdAt', 'runAt', 'startedAt', 'finishedAt', 'attemptLog'] as const;
type LateKey = (typeof LATE)[number];

function decode(row: FinishedRow, field: number): unknown {
  switch (field) {
    case 0:
      return parseJson(row[5]);
    case 1:
      return parseJson(row[6]);
    case 6:
      return toAttemptLog(row[14]);
    default:
      return parseTime(row[13], field - 2);
  }
}

/** The hidden state of an execution: its row, and the late fields decoded (or assigned) so far. */
let lateValue: (e: object, field: number) => unknown;
let setLateValue: (e: object, field: number, value: unknown) => void;

/**
 * Returns the object it is given from its constructor, so that a subclass's private fields
 * are added to a plain object: the cheapest way to hide state on one (no extra visible
 * property, no WeakMap entry for the collector to track).
 */
class Carrier {
  constructor(target: object) {
    // biome-ignore lint/correctness/noConstructorReturn: returning the target is the point (see the class comment).
    return target as Carrier;
  }
}

class Hidden extends Carrier {
  readonly #row: FinishedRow;
  /** Bit i set: LATE[i] is in #values. */
  #have = 0;
  #values: unknown[] | undefined;

  constructor(target: object, row: FinishedRow) {
    super(target);
    this.#row = row;
  }

  static {
    lateValue = (e, field) => {
      const h = e as Hidden;
      if (h.#have & (1 << field)) return h.#values![field];
      const value = decode(h.#row, field);
      (h.#values ??= new Array(LATE.length))[field] = value;
      h.#have |= 1 << field;
      return value;
    };
    setLateValue = (e, field, value) => {
      // A frozen plain object would refuse the assignment: so does this one.
      if (Object.isFrozen(e)) throw new TypeError(`Cannot assign to read only property '${LATE[field]}' of object`);
      const h = e as Hidden;
      (h.#values ??= new Array(LATE.length))[field] = value;
      h.#have |= 1 << field;
    };
  }
}

/** One descriptor per late field, shared by every execution (so they share one hidden class). */
function descriptor(key: LateKey): PropertyDescriptor {
  const field = LATE.indexOf(key);
  return {
    enumerable: true,
    configurable: true,
    get(this: object) {
      return lateValue(this, field);
    },
    set(this: object, value: unknown) {
      setLateValue(this, field, value);
    },
  };
}
const PAYLOAD = descriptor('payload');
const RESULT = descriptor('result');
const CREATED_AT = descriptor('createdAt');
const RUN_AT = descriptor('runAt');
const STARTED_AT = descriptor('startedAt');
const FINISHED_AT = descriptor('finishedAt');
const ATTEMPT_LOG = descriptor('attemptLog');
/** console.log and util.inspect show the values, not "[Getter/Setter]". */
const INSPECT: PropertyDescriptor = {
  value(this: object, _depth: number, options: object, show: typeof inspect) {
    return show({ ...this }, options);
  },
};

/** The execution of a finished row, its fields in the order `get` gives them. */
export function finishedExecution(r: FinishedRow): Execution {
  const e = { id: r[0], kind: r[1], name: r[2], queue: r[3], status: r[4] } as Execution;
  Object.defineProperty(e, 'payload', PAYLOAD);
  Object.defineProperty(e, 'result', RESULT);
  e.error = r[7];
  e.priority = r[8];
  e.attempts = r[9];
  e.maxAttempts = r[10];
  e.parentId = r[11];
  e.group = r[12];
  Object.defineProperty(e, 'createdAt', CREATED_AT);
  Object.defineProperty(e, 'runAt', RUN_AT);
  Object.defineProperty(e, 'startedAt', STARTED_AT);
  Object.defineProperty(e, 'finishedAt', FINISHED_AT);
  Object.defineProperty(e, 'attemptLog', ATTEMPT_LOG);
  e.progress = r[15];
  Object.defineProperty(e, inspect.custom, INSPECT);
  new Hidden(e, r);
  return e;
}

/** 2000-01-01T00:00:00Z, Postgres' epoch, in Unix milliseconds. */
const PG_EPOCH_MS = 946_684_800_000;

/**
 * A timestamptz's binary form (signed 64-bit microseconds since 2000-01-01 UTC, as 16 hex
 * digits) as a Date, its microseconds dropped as pg's own parser drops them (towards the past).
 */
export function fromBinaryTime(hex: string): Date {
  // From 2000 until the 22nd century the value is below 2^52 (its first three digits are
  // 0): exact as a plain number. Anything else takes the exact, slower BigInt path.
  if (hex.startsWith('000')) {
    const us = Number.parseInt(hex, 16);
    return new Date(PG_EPOCH_MS + (us - (us % 1000)) / 1000);
  }
  const us = BigInt.asIntN(64, BigInt(`0x${hex}`));
  let ms = us / 1000n; // truncates towards zero
  if (ms * 1000n > us) ms -= 1n;
  return new Date(PG_EPOCH_MS + Number(ms));
}
