/**
 * The host interface: what the runtime calls to run a workflow, one activation at a time.
 *
 *   const flow = compileFlow(source, 'order.flow');        // FlowSyntaxError lists every problem
 *   let state = startFlow(flow, inputs, { executionId, attempt: 1 });
 *   let a = resumeFlow(flow, state, { now: Date.now() });
 *   // a.effects: children to start (keyed by seq), signals consumed; commit them with a.state
 *   // a.status === 'suspended': run again when a.waitingOn allows, with what has settled since:
 *   a = resumeFlow(flow, a.state, { now: Date.now(), outcomes: [{ seq: 1, status: 'completed', result }], signals });
 *   // until a.status is 'completed' (a.result) or 'failed' (a.error)
 *
 * An activation is pure: the same flow, state and input give the same result, and nothing
 * outside the returned value changes, so a crashed activation is simply run again from the last
 * committed state. Nothing replays: values the script got from Math.random(), Date.now() or a
 * child are in the state, not recomputed.
 */
import { applyOutcomes, waitingOn, type ChildOutcome, type Effect, type InboxSignal, type WaitingOn } from './durable.js';
import type { CompiledFlow } from './compile.js';
import { FlowStateError } from './errors.js';
import { FlowThrow, ErrorValue, TDZ, describe } from './values.js';
import { Machine } from './interpreter.js';
import { jsonCopy } from './json.js';
import { STATE_FORMAT, type ProgramNode } from './nodes.js';
import { decodeState, encodeState, type FlowState } from './state.js';

/** What a script sees as `Context`. */
export interface FlowContext {
  executionId: string;
  attempt?: number;
  [key: string]: unknown;
}

export interface FlowLimits {
  /** Statements, loop iterations and callback calls one activation may run (default 100,000). */
  maxSteps?: number;
  /** Largest saved state, in bytes of its JSON text (default 1 MiB). */
  maxStateBytes?: number;
}

export const DEFAULT_LIMITS: Required<FlowLimits> = { maxSteps: 100_000, maxStateBytes: 1024 * 1024 };

export interface ResumeInput {
  /** The host clock, ms since the epoch: Date.now() in the script, timer deadlines. */
  now: number;
  /** Math.random() in the script (default Math.random). */
  random?: () => number;
  /** Children that settled since the last activation (more is harmless: duplicates and unknown seqs are ignored). */
  outcomes?: readonly ChildOutcome[];
  /** Signals sent to this workflow and not yet consumed, oldest first. */
  signals?: readonly InboxSignal[];
  limits?: FlowLimits;
}

/** Why a workflow failed: an uncaught script error, or a guard (FlowStepLimitError, FlowStateTooLargeError). */
export interface FlowFailure {
  name: string;
  message: string;
  /** Where it was raised or thrown: `order.flow:9:14`. */
  location?: string;
  /** One line for logs: `TypeError at order.flow:9:14: cannot read 'id' of null`. */
  stack: string;
  /** Other fields of the error (a failed child's executionId, task, errors, cause), as JSON. */
  [field: string]: unknown;
}

export type Activation =
  | { status: 'suspended'; state: FlowState; effects: Effect[]; waitingOn: WaitingOn }
  | { status: 'completed'; result: unknown; effects: Effect[] }
  | { status: 'failed'; error: FlowFailure; effects: Effect[] };

/** The initial state of a workflow: nothing has run yet; the first resumeFlow runs it. */
export function startFlow(flow: CompiledFlow, inputs: unknown, context: FlowContext): FlowState {
  const program = flow.nodes[0] as ProgramNode;
  const root = new Array<unknown>(program.slots).fill(TDZ);
  root[0] = inputs;
  root[1] = context;
  return encodeState(flow.hash, 0, [root], [{ n: 0, s: 0, x: undefined, y: undefined }]);
}

/** Runs one activation: from the saved state until the script completes, fails or waits. */
export function resumeFlow(flow: CompiledFlow, state: FlowState, input: ResumeInput): Activation {
  if (typeof state !== 'object' || state === null) throw new FlowStateError(`resumeFlow: state must be an object, got ${describe(state)}`);
  if (state.format !== STATE_FORMAT) {
    throw new FlowStateError(`workflow state has format ${String(state.format)}, this version of Rhythm reads format ${STATE_FORMAT}`);
  }
  if (state.hash !== flow.hash) {
    throw new FlowStateError(
      `workflow state was saved by source ${String(state.hash).slice(0, 12)}, not by ${flow.fileName} as compiled (${flow.hash.slice(0, 12)}): resume a workflow with the source version it started on`,
    );
  }
  if (typeof input?.now !== 'number' || !Number.isFinite(input.now))
    throw new TypeError(`resumeFlow: now must be a finite number of ms, got ${describe(input?.now)}`);
  const maxSteps = limit('maxSteps', input.limits?.maxSteps ?? DEFAULT_LIMITS.maxSteps);
  const maxStateBytes = limit('maxStateBytes', input.limits?.maxStateBytes ?? DEFAULT_LIMITS.maxStateBytes);

  const decoded = decodeState(state);
  if (decoded.frames.some((f) => f.n < 0 || f.n >= flow.nodes.length) || decoded.env.length === 0) {
    throw new FlowStateError('damaged state: it refers to statements this flow does not have');
  }
  const m = new Machine(flow.nodes, flow.fileName, {
    now: input.now,
    random: input.random ?? Math.random,
    maxSteps,
    inbox: input.signals ? [...input.signals] : [],
  });
  m.env = decoded.env;
  m.frames = decoded.frames;
  m.seq = decoded.seq;
  if (input.outcomes) applyOutcomes(decoded.handles, input.outcomes, input.now);

  const r = m.run();
  const effects = m.effects;
  if (r.status === 'failed') return { status: 'failed', error: failure(m, r.error), effects };
  if (r.status === 'completed') {
    try {
      return { status: 'completed', result: jsonCopy(m, r.value, 'workflow result', m.cur), effects };
    } catch (err) {
      if (err instanceof FlowThrow) return { status: 'failed', error: failure(m, err.value), effects };
      if (err instanceof RangeError)
        return { status: 'failed', error: guardFailure(m, 'RangeError', 'the workflow result is nested too deeply to save'), effects };
      throw err;
    }
  }

  let saved: FlowState;
  let bytes: number;
  try {
    saved = encodeState(flow.hash, m.seq, m.env, m.frames);
    bytes = Buffer.byteLength(JSON.stringify(saved));
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    return {
      status: 'failed',
      error: guardFailure(m, 'FlowStateTooLargeError', 'the workflow state is nested too deeply to save'),
      effects,
    };
  }
  if (bytes > maxStateBytes) {
    return {
      status: 'failed',
      error: guardFailure(
        m,
        'FlowStateTooLargeError',
        `the workflow state is ${bytes} bytes, over the limit of ${maxStateBytes}: keep large data in task results and pass ids between steps`,
      ),
      effects,
    };
  }
  return { status: 'suspended', state: saved, effects, waitingOn: waitingOn(r.awaiting) };
}

function limit(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    throw new TypeError(`resumeFlow: limits.${name} must be an integer >= 1, got ${describe(v)}`);
  return v;
}

function guardFailure(m: Machine, name: string, message: string): FlowFailure {
  const top = m.frames[m.frames.length - 1];
  return failure(m, new ErrorValue(name, message, top ? m.where(top.n) : undefined));
}

function failure(m: Machine, thrown: unknown): FlowFailure {
  if (!(thrown instanceof ErrorValue)) {
    let text: string;
    let value: unknown;
    try {
      value = jsonCopy(m, thrown, 'thrown value', 0);
      text = JSON.stringify(value) ?? String(thrown);
    } catch {
      value = undefined;
      text = describe(thrown);
    }
    const message = `uncaught ${text}`;
    return { name: 'Error', message, stack: `Error: ${message}`, ...(value === undefined ? {} : { value }) };
  }
  const name = typeof thrown.name === 'string' ? thrown.name : 'Error';
  const message = typeof thrown.message === 'string' ? thrown.message : describe(thrown.message);
  const location = typeof thrown.location === 'string' ? thrown.location : undefined;
  const out: FlowFailure = { name, message, stack: location ? `${name} at ${location}: ${message}` : `${name}: ${message}` };
  if (location) out.location = location;
  for (const key of Object.keys(thrown)) {
    if (key === 'name' || key === 'message' || key === 'location' || key === 'stack') continue;
    try {
      out[key] = jsonCopy(m, thrown[key], key, 0);
    } catch {
      out[key] = describe(thrown[key]);
    }
  }
  return out;
}
