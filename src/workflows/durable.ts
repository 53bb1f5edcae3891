/**
 * Durable calls and their settlement: Task.run, Workflow.run, Timer.delay/until, Signal.next,
 * and Promise.all/allSettled/any/race over them.
 *
 * A durable call does nothing by itself: it takes the next call sequence number, returns a
 * Handle (plain data, saved with the state) and records an effect for the host, which starts
 * the child keyed by (workflow, sequence), so a re-run activation never starts one twice.
 * An await settles from what the host supplied: child outcomes by sequence number, the clock
 * (timers fire when `now` reaches them), and the inbox of signals sent to the workflow.
 *
 * Signals are consumed only when an await needs them: a Signal.next handle awaited directly or
 * inside Promise.all/allSettled takes the oldest waiting signal of its name; inside
 * Promise.race/any it takes one only if it wins. So a Signal.next that lost a race consumes
 * nothing, and the next signal of that name waits for the next Signal.next the script awaits
 * (first in, first out). Losing tasks and workflows keep running; their outcome is kept only
 * if the script still holds the handle (awaiting it later returns it).
 *
 * Races are decided by time, not by the order outcomes reach the host: each settled member has
 * a time (a child's `at` from the host, a timer's fire time, a signal's sending time but no
 * earlier than the Signal.next call), the earliest wins, ties go to the first in the array.
 */
import type { Machine } from './interpreter.js';
import { jsonCopy } from './json.js';
import {
  Combinator,
  ErrorValue,
  FULFILLED,
  Handle,
  PENDING,
  REJECTED,
  describe,
  isPlainObject,
  type CombinatorKind,
  type HandleKind,
} from './values.js';

/** What the host must do after an activation, in call order. */
export type Effect =
  | { type: 'startTask'; seq: number; name: string; payload: unknown; options: TaskCallOptions }
  | { type: 'startWorkflow'; seq: number; name: string; inputs: unknown; options: WorkflowCallOptions }
  /** A timer was made; the host may record it (waitingOn.wakeAt is what wakes the workflow). */
  | { type: 'startTimer'; seq: number; fireAt: number }
  /** A Signal.next was made; the host may record it (waitingOn says when it is awaited). */
  | { type: 'awaitSignal'; seq: number; name: string }
  /** Inbox signal `signalId` was taken by Signal.next call `seq`: delete it in the same commit. */
  | { type: 'consumeSignal'; seq: number; signalId: string };

export interface TaskCallOptions {
  queue?: string;
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  delayMs?: number;
  visibilityTimeoutMs?: number;
}

export interface WorkflowCallOptions {
  queue?: string;
  priority?: number;
}

/** A settled child (task or workflow), by the sequence number of the call that started it. */
export type ChildOutcome = {
  seq: number;
  executionId?: string;
  /** When it settled (ms since epoch); decides races. Defaults to the activation's `now`. */
  at?: number;
} & ({ status: 'completed'; result: unknown } | { status: 'failed'; error: { name?: string; message?: string } } | { status: 'cancelled' });

/** A signal sent to the workflow and not yet consumed, oldest first. */
export interface InboxSignal {
  id: string;
  name: string;
  payload: unknown;
  /** When it was sent (ms since epoch). Defaults to the activation's `now`. */
  at?: number;
}

/** What a suspended workflow waits for, so the host knows when to run it again. */
export interface WaitingOn {
  /**
   * 'all': resuming helps only once every listed child has settled (or one failed), every
   * listed signal is available and wakeAt has passed; 'any': any one of them may be enough.
   */
  mode: 'all' | 'any';
  children: number[];
  signals: { seq: number; name: string }[];
  timers: { seq: number; fireAt: number }[];
  /** The time the timers allow progress: the earliest ('any') or latest ('all') fire time. */
  wakeAt: number | null;
}

export interface Settled {
  ok: boolean;
  value: unknown;
  at: number;
}

const TASK_OPTIONS: Record<string, 'string' | 'int' | 'posint' | 'ms'> = {
  queue: 'string',
  priority: 'int',
  maxAttempts: 'posint',
  timeoutMs: 'ms',
  delayMs: 'ms',
  visibilityTimeoutMs: 'ms',
};
const WORKFLOW_OPTIONS: Record<string, 'string' | 'int' | 'posint' | 'ms'> = { queue: 'string', priority: 'int' };
const MAX_NAME = 200;

function checkName(m: Machine, call: string, name: unknown, at: number): string {
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME) {
    m.fail('TypeError', at, `${call} needs a name (a non-empty string of at most ${MAX_NAME} characters) first, got ${describe(name)}`);
  }
  return name;
}

function checkOptions(m: Machine, call: string, options: unknown, known: Record<string, string>, at: number): Record<string, unknown> {
  if (options === undefined) return {};
  if (!isPlainObject(options)) m.fail('TypeError', at, `${call} options must be an object, got ${describe(options)}`);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(options)) {
    const kind = known[key];
    if (kind === undefined) m.fail('TypeError', at, `unknown ${call} option '${key}' (known: ${Object.keys(known).join(', ')})`);
    const v = options[key];
    if (v === undefined) continue;
    const ok =
      kind === 'string'
        ? typeof v === 'string' && v !== ''
        : typeof v === 'number' && Number.isInteger(v) && (kind === 'int' ? true : kind === 'posint' ? v >= 1 : v >= 0);
    if (!ok) {
      const want =
        kind === 'string'
          ? 'a non-empty string'
          : kind === 'int'
            ? 'an integer'
            : kind === 'posint'
              ? 'an integer >= 1'
              : 'a whole number of milliseconds >= 0';
      m.fail('TypeError', at, `${call} option ${key} must be ${want}, got ${describe(v)}`);
    }
    out[key] = v;
  }
  return out;
}

function newHandle(m: Machine, kind: HandleKind, name: string, fireAt: number): Handle {
  return new Handle(++m.seq, kind, name, m.now, fireAt);
}

/** Task.run and Workflow.run: the same call, differing in the effect and the options they take. */
function startChild(kind: 'task' | 'workflow'): (m: Machine, args: unknown[], at: number) => Handle {
  const call = kind === 'task' ? 'Task.run' : 'Workflow.run';
  const what = kind === 'task' ? `${call} payload` : `${call} inputs`;
  const known = kind === 'task' ? TASK_OPTIONS : WORKFLOW_OPTIONS;
  return (m, args, at) => {
    const name = checkName(m, call, args[0], at);
    const data = jsonCopy(m, args[1] === undefined ? null : args[1], what, at);
    const options = checkOptions(m, call, args[2], known, at);
    const h = newHandle(m, kind, name, 0);
    m.effects.push(
      kind === 'task'
        ? { type: 'startTask', seq: h.seq, name, payload: data, options }
        : { type: 'startWorkflow', seq: h.seq, name, inputs: data, options },
    );
    return h;
  };
}

export const taskRun = startChild('task');
export const workflowRun = startChild('workflow');

function timer(m: Machine, fireAt: number): Handle {
  const h = newHandle(m, 'timer', '', fireAt);
  m.effects.push({ type: 'startTimer', seq: h.seq, fireAt });
  return h;
}

export function timerDelay(m: Machine, args: unknown[], at: number): Handle {
  const s = args[0];
  if (typeof s !== 'number' || !Number.isFinite(s) || s < 0)
    m.fail('TypeError', at, `Timer.delay takes a number of seconds >= 0, got ${describe(s)}`);
  return timer(m, m.now + Math.round(s * 1000));
}

export function timerUntil(m: Machine, args: unknown[], at: number): Handle {
  const d = args[0];
  const t = typeof d === 'string' ? Date.parse(d) : typeof d === 'number' ? d : NaN;
  if (!Number.isFinite(t)) {
    m.fail(
      'TypeError',
      at,
      `Timer.until takes an ISO date string (like "2030-01-01T09:00:00Z") or milliseconds since the epoch, got ${describe(d)}`,
    );
  }
  return timer(m, t);
}

export function signalNext(m: Machine, args: unknown[], at: number): Handle {
  const name = checkName(m, 'Signal.next', args[0], at);
  const h = newHandle(m, 'signal', name, 0);
  m.effects.push({ type: 'awaitSignal', seq: h.seq, name });
  return h;
}

export function combinator(kind: CombinatorKind): (m: Machine, args: unknown[], at: number) => Combinator {
  return (m, args, at) => {
    const items = args[0];
    if (!Array.isArray(items)) return m.fail('TypeError', at, `Promise.${kind} takes an array, got ${describe(items)}`);
    if (kind === 'race' && items.length === 0) m.fail('TypeError', at, 'Promise.race([]) would never settle: pass at least one handle');
    return new Combinator(kind, items.slice());
  };
}

/** Records host outcomes in the handles they belong to; outcomes for handles the state no longer holds are dropped. */
export function applyOutcomes(handles: Map<number, Handle>, outcomes: readonly ChildOutcome[], now: number): void {
  for (const o of outcomes) {
    const h = handles.get(o.seq);
    if (h === undefined || h.state !== PENDING || (h.kind !== 'task' && h.kind !== 'workflow')) continue;
    h.at = typeof o.at === 'number' && Number.isFinite(o.at) ? o.at : now;
    const what = `${h.kind} '${h.name}'`;
    if (o.status === 'completed') {
      h.state = FULFILLED;
      h.value = o.result;
      continue;
    }
    h.state = REJECTED;
    const err =
      o.status === 'failed'
        ? new ErrorValue(
            typeof o.error?.name === 'string' && o.error.name !== '' ? o.error.name : 'Error',
            typeof o.error?.message === 'string' ? o.error.message : `${what} failed`,
          )
        : new ErrorValue('CancelledError', `${what} was cancelled`);
    if (o.executionId !== undefined) err.executionId = o.executionId;
    err[h.kind] = h.name;
    h.value = err;
  }
}

/**
 * Settles `v` if it can be settled now. With `commit`, signals are consumed; without, the
 * inbox signals it would take are only reserved in `reserved` (to pick a race's winner).
 */
export function settle(m: Machine, v: unknown, commit: boolean, reserved: Set<InboxSignal> | null): Settled | null {
  if (v instanceof Handle) return settleHandle(m, v, commit, reserved);
  if (!(v instanceof Combinator)) return { ok: true, value: v, at: -Infinity };
  const members = v.members;
  switch (v.kind) {
    case 'all':
    case 'allSettled': {
      const values = new Array<unknown>(members.length);
      let at = -Infinity;
      let pending = false;
      let rejected: Settled | null = null;
      for (let i = 0; i < members.length; i++) {
        const r = settle(m, members[i], commit, reserved);
        if (r === null) {
          pending = true;
          continue;
        }
        if (r.at > at) at = r.at;
        if (v.kind === 'allSettled') values[i] = r.ok ? { status: 'fulfilled', value: r.value } : { status: 'rejected', reason: r.value };
        else if (r.ok) values[i] = r.value;
        else if (rejected === null || r.at < rejected.at) rejected = r;
      }
      if (rejected !== null) return rejected;
      return pending ? null : { ok: true, value: values, at };
    }
    case 'race':
    case 'any': {
      let best = -1;
      let bestAt = Infinity;
      let pending = false;
      const errors = new Array<unknown>(members.length);
      let lastAt = -Infinity;
      for (let i = 0; i < members.length; i++) {
        const r = settle(m, members[i], false, new Set(reserved));
        if (r === null) {
          pending = true;
          continue;
        }
        if (v.kind === 'any' && !r.ok) {
          errors[i] = r.value;
          if (r.at > lastAt) lastAt = r.at;
          continue;
        }
        if (best < 0 || r.at < bestAt) {
          best = i;
          bestAt = r.at;
        }
      }
      if (best >= 0) return settle(m, members[best], commit, reserved);
      if (v.kind === 'race' || pending) return null;
      const err = new ErrorValue('AggregateError', 'every handle passed to Promise.any was rejected');
      err.errors = errors;
      return { ok: false, value: err, at: lastAt };
    }
  }
}

function settleHandle(m: Machine, h: Handle, commit: boolean, reserved: Set<InboxSignal> | null): Settled | null {
  if (h.state !== PENDING) return { ok: h.state === FULFILLED, value: h.value, at: h.at };
  if (h.kind === 'timer') {
    if (m.now < h.fireAt) return null;
    // A timer that has fired is settled whoever looks: that is not a choice, so peeking may record it.
    h.state = FULFILLED;
    h.value = undefined;
    h.at = h.fireAt;
    return { ok: true, value: undefined, at: h.at };
  }
  if (h.kind !== 'signal') return null;
  let found: InboxSignal | undefined;
  for (const s of m.inbox) {
    if (s.name === h.name && !m.taken.has(s) && !reserved?.has(s)) {
      found = s;
      break;
    }
  }
  if (found === undefined) return null;
  const sentAt = typeof found.at === 'number' && Number.isFinite(found.at) ? found.at : m.now;
  const at = Math.max(sentAt, h.created);
  if (!commit) {
    reserved?.add(found);
    return { ok: true, value: found.payload, at };
  }
  m.taken.add(found);
  m.effects.push({ type: 'consumeSignal', seq: h.seq, signalId: found.id });
  h.state = FULFILLED;
  h.value = found.payload;
  h.at = at;
  return { ok: true, value: found.payload, at };
}

/** The pending handles an await still needs, for the host's wake-up decision. */
export function waitingOn(awaiting: unknown): WaitingOn {
  const out: WaitingOn = { mode: 'all', children: [], signals: [], timers: [], wakeAt: null };
  if (
    awaiting instanceof Combinator &&
    (awaiting.kind === 'any' || awaiting.kind === 'race' || awaiting.members.some((x) => x instanceof Combinator))
  ) {
    out.mode = 'any';
  }
  const seen = new Set<Handle>();
  const walk = (v: unknown): void => {
    if (v instanceof Combinator) {
      for (const x of v.members) walk(x);
      return;
    }
    if (!(v instanceof Handle) || v.state !== PENDING || seen.has(v)) return;
    seen.add(v);
    if (v.kind === 'timer') out.timers.push({ seq: v.seq, fireAt: v.fireAt });
    else if (v.kind === 'signal') out.signals.push({ seq: v.seq, name: v.name });
    else out.children.push(v.seq);
  };
  walk(awaiting);
  if (out.timers.length > 0) {
    const times = out.timers.map((t) => t.fireAt);
    out.wakeAt = out.mode === 'any' ? Math.min(...times) : Math.max(...times);
  }
  return out;
}
