/**
 * A simulated host for .flow workflows: drives compileFlow/startFlow/resumeFlow the way the
 * runtime will, with tasks and child workflows as plain functions that settle after a set
 * duration on a simulated clock, timers that fire when the clock reaches them, and signals
 * sent at set times. No database: it exercises the language and its host interface alone.
 */
import {
  compileFlow,
  resumeFlow,
  startFlow,
  type Activation,
  type ChildOutcome,
  type CompiledFlow,
  type Effect,
  type FlowFailure,
  type FlowLimits,
  type FlowState,
  type InboxSignal,
} from '../../src/workflows/index.js';

// biome-ignore lint/suspicious/noExplicitAny: each test's child function reads its own input shape.
export type ChildFn = (input: any) => unknown;

export interface SimOptions {
  inputs?: unknown;
  tasks?: Record<string, ChildFn>;
  workflows?: Record<string, ChildFn>;
  /** How long a task or workflow takes on the simulated clock (ms; default 10). */
  durations?: Record<string, number>;
  /** Signals sent to the workflow, each at a time (ms on the simulated clock). */
  signals?: { name: string; payload: unknown; at: number }[];
  /** Round-trip the state through JSON.stringify/parse between activations. */
  roundTrip?: boolean;
  /** Deliver at most one settled outcome per activation (more activations). */
  oneByOne?: boolean;
  random?: () => number;
  limits?: FlowLimits;
  start?: number;
  /** Stop after this many activations (an endless wait is a test failure, not a hang). */
  maxActivations?: number;
}

export interface SimResult {
  status: 'completed' | 'failed' | 'stuck';
  result?: unknown;
  error?: FlowFailure;
  activations: number;
  effects: Effect[];
  /** The saved states in order (JSON text), for size and content checks. */
  states: string[];
  now: number;
}

interface Child {
  seq: number;
  settleAt: number;
  outcome: ChildOutcome;
}

export const START = 1_700_000_000_000;

export function simulate(source: string | CompiledFlow, options: SimOptions = {}): SimResult {
  const flow = typeof source === 'string' ? compileFlow(source, 'test.flow') : source;
  let now = options.start ?? START;
  let state: FlowState = startFlow(flow, options.inputs ?? null, { executionId: 'wf-1', attempt: 1 });
  const children: Child[] = [];
  const sent: (InboxSignal & { sentAt: number })[] = (options.signals ?? []).map((s, i) => ({
    id: `sig-${i}`,
    name: s.name,
    payload: s.payload,
    at: s.at,
    sentAt: s.at,
  }));
  const effects: Effect[] = [];
  const states: string[] = [];
  let outcomes: ChildOutcome[] = [];
  let wakeAt: number | null = null;
  const max = options.maxActivations ?? 10_000;
  for (let n = 1; n <= max; n++) {
    const inbox = sent.filter((s) => s.sentAt <= now).map(({ sentAt: _, ...s }) => s);
    const a: Activation = resumeFlow(flow, state, { now, outcomes, signals: inbox, random: options.random, limits: options.limits });
    for (const e of a.effects) {
      effects.push(e);
      if (e.type === 'startTask' || e.type === 'startWorkflow') {
        const fn = (e.type === 'startTask' ? options.tasks : options.workflows)?.[e.name];
        const executionId = `${e.type === 'startTask' ? 'task' : 'wf'}-${e.seq}`;
        const settleAt = now + (options.durations?.[e.name] ?? 10);
        let outcome: ChildOutcome;
        if (!fn)
          outcome = {
            seq: e.seq,
            status: 'failed',
            error: { name: 'Error', message: `no handler for ${e.name}` },
            executionId,
            at: settleAt,
          };
        else {
          try {
            outcome = {
              seq: e.seq,
              status: 'completed',
              result: fn(e.type === 'startTask' ? e.payload : e.inputs) ?? null,
              executionId,
              at: settleAt,
            };
          } catch (err) {
            outcome = {
              seq: e.seq,
              status: 'failed',
              error: { name: (err as Error).name, message: (err as Error).message },
              executionId,
              at: settleAt,
            };
          }
        }
        children.push({ seq: e.seq, settleAt, outcome });
      } else if (e.type === 'consumeSignal') {
        const i = sent.findIndex((s) => s.id === e.signalId);
        if (i < 0) throw new Error(`host: consumed unknown signal ${e.signalId}`);
        sent.splice(i, 1);
      }
    }
    if (a.status === 'completed') return { status: 'completed', result: a.result, activations: n, effects, states, now };
    if (a.status === 'failed') return { status: 'failed', error: a.error, activations: n, effects, states, now };
    const text = JSON.stringify(a.state);
    states.push(text);
    state = options.roundTrip ? (JSON.parse(text) as FlowState) : a.state;
    wakeAt = a.waitingOn.wakeAt;
    // Advance the clock to the next event: a child settling, a timer, a signal arriving.
    const times = [...children.map((c) => c.settleAt), ...sent.filter((s) => s.sentAt > now).map((s) => s.sentAt)];
    if (wakeAt !== null && wakeAt > now) times.push(wakeAt);
    const waitingSignal = sent.some((s) => s.sentAt <= now && a.waitingOn.signals.some((w) => w.name === s.name));
    if (times.length === 0 && !waitingSignal) return { status: 'stuck', activations: n, effects, states, now };
    if (!waitingSignal || times.length > 0) now = Math.max(now, Math.min(...times));
    children.sort((x, y) => x.settleAt - y.settleAt || x.seq - y.seq);
    const due = children.filter((c) => c.settleAt <= now);
    const deliver = options.oneByOne ? due.slice(0, 1) : due;
    for (const c of deliver) children.splice(children.indexOf(c), 1);
    outcomes = deliver.map((c) => c.outcome);
  }
  return { status: 'stuck', activations: max, effects, states, now };
}
