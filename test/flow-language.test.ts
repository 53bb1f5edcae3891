/**
 * The .flow language's durable side through its host interface: handles, effects, awaits that
 * suspend and resume, failures that throw at the await, races, signals, guards, and the state
 * document. Pure unit tests: no database.
 */
import { describe, expect, it } from 'vitest';
import {
  compileFlow,
  resumeFlow,
  startFlow,
  FlowStateError,
  type Activation,
  type CompiledFlow,
  type FlowState,
} from '../src/workflows/index.js';
import { START, simulate } from './support/flow-host.js';

const ORDER = `
const order = Inputs;
const reserved = await Promise.all(order.items.map(i => Task.run("reserve", { sku: i.sku, qty: i.qty })));
try {
  const charge = await Task.run("charge", { orderId: order.id, amount: order.total }, { queue: "payments" });
  const approval = await Promise.race([Signal.next("approve"), Timer.delay(3600)]);
  if (approval === undefined) throw new Error("not approved within an hour");
  await Workflow.run("ship", { orderId: order.id });
  return { status: "shipped", charge: charge.id, by: approval.by };
} catch (e) {
  await Task.run("release", { reserved, reason: e.message });
  return { status: "cancelled", reason: e.message };
}`;
const ORDER_INPUTS = {
  id: 7,
  items: [
    { sku: 'a', qty: 1 },
    { sku: 'b', qty: 2 },
  ],
  total: 30,
};
const ORDER_TASKS = { reserve: (p: { sku: string }) => ({ sku: p.sku, ok: true }), charge: () => ({ id: 'ch_1' }), release: () => null };

function flow(source: string): CompiledFlow {
  return compileFlow(source, 'test.flow');
}

function first(f: CompiledFlow, inputs: unknown = null, now = START): Activation {
  return resumeFlow(f, startFlow(f, inputs, { executionId: 'wf-1', attempt: 1 }), { now });
}

function suspended(a: Activation): Extract<Activation, { status: 'suspended' }> {
  if (a.status !== 'suspended') throw new Error(`expected a suspension, got ${a.status}: ${JSON.stringify(a)}`);
  return a;
}

describe('the order workflow of the docs', () => {
  it('ships when the approval signal comes within the hour', () => {
    const r = simulate(ORDER, {
      inputs: ORDER_INPUTS,
      tasks: ORDER_TASKS,
      workflows: { ship: () => 'shipped' },
      signals: [{ name: 'approve', payload: { by: 'ana' }, at: START + 60_000 }],
    });
    expect(r.status).toBe('completed');
    expect(r.result).toEqual({ status: 'shipped', charge: 'ch_1', by: 'ana' });
    expect(r.effects.map((e) => `${e.type}:${e.seq}`)).toEqual([
      'startTask:1',
      'startTask:2',
      'startTask:3',
      'awaitSignal:4',
      'startTimer:5',
      'consumeSignal:4',
      'startWorkflow:6',
    ]);
    expect(r.effects[2]).toEqual({
      type: 'startTask',
      seq: 3,
      name: 'charge',
      payload: { orderId: 7, amount: 30 },
      options: { queue: 'payments' },
    });
  });

  it('releases the reservations when no approval comes within the hour', () => {
    const r = simulate(ORDER, { inputs: ORDER_INPUTS, tasks: ORDER_TASKS, roundTrip: true });
    expect(r.result).toEqual({ status: 'cancelled', reason: 'not approved within an hour' });
    const release = r.effects.find((e) => e.type === 'startTask' && e.name === 'release');
    expect(release).toMatchObject({
      payload: {
        reserved: [
          { sku: 'a', ok: true },
          { sku: 'b', ok: true },
        ],
        reason: 'not approved within an hour',
      },
    });
    // The hour passed on the host clock before the timer fired.
    expect(r.now).toBeGreaterThanOrEqual(START + 3600_000);
  });
});

describe('awaiting handles', () => {
  it('runs sequential tasks one activation each, passing results on', () => {
    const f = flow('let n = Inputs.n;\nfor (let i = 0; i < 3; i++) n = await Task.run("double", { n });\nreturn n;');
    const a1 = suspended(first(f, { n: 1 }));
    expect(a1.effects).toEqual([{ type: 'startTask', seq: 1, name: 'double', payload: { n: 1 }, options: {} }]);
    expect(a1.waitingOn).toEqual({ mode: 'all', children: [1], signals: [], timers: [], wakeAt: null });
    const a2 = suspended(resumeFlow(f, a1.state, { now: START + 1, outcomes: [{ seq: 1, status: 'completed', result: 2 }] }));
    expect(a2.effects).toEqual([{ type: 'startTask', seq: 2, name: 'double', payload: { n: 2 }, options: {} }]);
    const a3 = suspended(resumeFlow(f, a2.state, { now: START + 2, outcomes: [{ seq: 2, status: 'completed', result: 4 }] }));
    const done = resumeFlow(f, a3.state, { now: START + 3, outcomes: [{ seq: 3, status: 'completed', result: 8 }] });
    expect(done).toEqual({ status: 'completed', result: 8, effects: [] });
  });

  it('fans out 10 tasks with Promise.all in one activation and resumes once all are in', () => {
    const f = flow(
      'const ids = Array.from("0123456789");\nconst r = await Promise.all(ids.map((id) => Task.run("work", { id }, { queue: "high-cpu" })));\nreturn r.join("");',
    );
    const a1 = suspended(first(f));
    expect(a1.effects.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(a1.waitingOn).toMatchObject({ mode: 'all', children: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] });
    // Nine settled: still waiting, on the last one only, and nothing started twice.
    const outcomes = a1.effects.map((e) => ({ seq: e.seq, status: 'completed' as const, result: String(e.seq % 10) }));
    const a2 = suspended(resumeFlow(f, a1.state, { now: START + 5, outcomes: outcomes.slice(0, 9) }));
    expect(a2.effects).toEqual([]);
    expect(a2.waitingOn.children).toEqual([10]);
    expect(resumeFlow(f, a2.state, { now: START + 6, outcomes: outcomes.slice(9) })).toMatchObject({
      status: 'completed',
      result: '1234567890',
    });
  });

  it('does not suspend when what is awaited already settled, and keeps an outcome for a handle awaited later', () => {
    const f = flow(
      'const a = Task.run("a");\nconst b = Task.run("b");\nconst x = await a;\nconst y = await b;\nconst again = await b;\nreturn [x, y, again];',
    );
    const a1 = suspended(first(f));
    expect(a1.waitingOn.children).toEqual([1]);
    const done = resumeFlow(f, a1.state, {
      now: START,
      outcomes: [
        { seq: 2, status: 'completed', result: 'B' },
        { seq: 1, status: 'completed', result: 'A' },
      ],
    });
    expect(done).toMatchObject({ status: 'completed', result: ['A', 'B', 'B'] });
  });

  it('awaits in every statement position, evaluating assignment targets before the await as JavaScript does', () => {
    const src = `const a = await Task.run("n", 1), b = await Task.run("n", 2);
let i = 0;
const arr = [];
arr[i++] = await Task.run("n", i);
const o = { total: 10 };
o.total += await Task.run("n", 5);
let s = "x";
s += await Task.run("n", 3);
let p, q;
[p, { q }] = await Task.run("pair", null);
await Task.run("n", 0);
return { a, b, i, arr, o, s, p, q };`;
    const tasks = { n: (x: number) => x * 10, pair: () => [1, { q: 2 }] };
    const r = simulate(src, { tasks, roundTrip: true });
    expect(r.result).toEqual({ a: 10, b: 20, i: 1, arr: [10], o: { total: 60 }, s: 'x30', p: 1, q: 2 });
    expect(r.activations).toBe(8);
  });

  it('implicitly awaits a returned handle, and starts fire-and-forget children', () => {
    const f = flow('Task.run("notify", { to: "ops" });\nreturn Task.run("final");');
    const a1 = suspended(first(f));
    expect(a1.effects.map((e) => e.type === 'startTask' && e.name)).toEqual(['notify', 'final']);
    expect(a1.waitingOn.children).toEqual([2]);
    expect(resumeFlow(f, a1.state, { now: START, outcomes: [{ seq: 2, status: 'completed', result: { ok: 1 } }] })).toMatchObject({
      status: 'completed',
      result: { ok: 1 },
    });
  });

  it('copies a payload at the call: later changes to the object do not reach the child', () => {
    const f = flow('const p = { n: 1, list: [1] };\nconst h = Task.run("t", p);\np.n = 2; p.list.push(2);\nreturn await h;');
    const a1 = suspended(first(f));
    expect(a1.effects[0]).toMatchObject({ payload: { n: 1, list: [1] } });
  });

  it('names pending-handle mistakes: reading a field, putting it in a payload, returning it inside a value', () => {
    const read = simulate('const h = Task.run("t");\nreturn h.id;', { tasks: { t: () => 1 } });
    expect(read.error?.stack).toBe(`TypeError at test.flow:2:10: cannot read 'id' of a pending Task.run("t") handle: await it first`);
    const payload = simulate('const h = Task.run("t");\nawait Task.run("u", { prev: h });', { tasks: { t: () => 1 } });
    expect(payload.error?.stack).toBe(
      'TypeError at test.flow:2:7: Task.run payload.prev is a pending Task.run("t") handle; await it first',
    );
    const result = simulate('return { later: Timer.delay(5) };');
    expect(result.error?.message).toBe('workflow result.later is a pending Timer handle; await it first');
    const then = simulate('Task.run("t").then(1);');
    expect(then.error?.message).toBe(`cannot call 'then' on a pending Task.run("t") handle: await it (const result = await ...) instead`);
  });

  it('validates durable call arguments with catchable errors naming the problem', () => {
    const calls = [
      'Task.run("")',
      'Task.run("t", 1, { queeu: "x" })',
      'Task.run("t", 1, { priority: 1.5 })',
      'Task.run("t", { n: NaN })',
      'Timer.delay(-1)',
      'Timer.until("soon")',
      'Signal.next(3)',
      'Promise.all(5)',
      'Promise.race([])',
    ];
    const source = calls.map((c) => `try { ${c}; out.push("no error"); } catch (e) { out.push(e.name + ": " + e.message); }`).join('\n');
    const r = simulate(`const out = [];\n${source}\nreturn out;`);
    expect(r.result).toEqual([
      'TypeError: Task.run needs a name (a non-empty string of at most 200 characters) first, got ""',
      "TypeError: unknown Task.run option 'queeu' (known: queue, priority, maxAttempts, timeoutMs, delayMs, visibilityTimeoutMs)",
      'TypeError: Task.run option priority must be an integer, got 1.5',
      'TypeError: Task.run payload.n is NaN, which is not JSON',
      'TypeError: Timer.delay takes a number of seconds >= 0, got -1',
      'TypeError: Timer.until takes an ISO date string (like "2030-01-01T09:00:00Z") or milliseconds since the epoch, got "soon"',
      'TypeError: Signal.next needs a name (a non-empty string of at most 200 characters) first, got 3',
      'TypeError: Promise.all takes an array, got 5',
      'TypeError: Promise.race([]) would never settle: pass at least one handle',
    ]);
    // Refused calls took no sequence number and started nothing.
    expect(r.effects).toEqual([]);
  });
});

describe('failures', () => {
  it('throws a failed task at its await with name, message and the child execution id; compensation runs', () => {
    const r = simulate(
      `try {
  await Task.run("charge", { amount: 5 });
  return "charged";
} catch (e) {
  await Task.run("refund", { executionId: e.executionId, task: e.task });
  return [e.name, e.message, e.executionId, e.task, e.location, e instanceof Error];
}`,
      {
        tasks: {
          charge: () => {
            const err = new Error('card declined');
            err.name = 'CardError';
            throw err;
          },
          refund: () => null,
        },
      },
    );
    expect(r.result).toEqual(['CardError', 'card declined', 'task-1', 'charge', 'test.flow:2:3', true]);
    expect(r.effects[1]).toMatchObject({ name: 'refund', payload: { executionId: 'task-1', task: 'charge' } });
  });

  it('fails the workflow with an uncaught child error, keeping its fields', () => {
    const r = simulate('const x = 1;\nconst shipped = await Workflow.run("ship", { x });\nreturn shipped;', {
      workflows: {
        ship: () => {
          throw new RangeError('no carrier');
        },
      },
    });
    expect(r.status).toBe('failed');
    expect(r.error).toEqual({
      name: 'RangeError',
      message: 'no carrier',
      location: 'test.flow:2:1',
      stack: 'RangeError at test.flow:2:1: no carrier',
      executionId: 'wf-1',
      workflow: 'ship',
    });
  });

  it('catches a child workflow failure in the parent', () => {
    const r = simulate(
      'let status;\ntry { status = await Workflow.run("child", {}); } catch (e) { status = "child failed: " + e.message; }\nreturn status;',
      {
        workflows: {
          child: () => {
            throw new Error('nope');
          },
        },
      },
    );
    expect(r.result).toBe('child failed: nope');
  });

  it('throws CancelledError for a cancelled child', () => {
    const f = flow('try { await Task.run("slow"); } catch (e) { return [e.name, e.message, e.executionId]; }');
    const a1 = suspended(first(f));
    const done = resumeFlow(f, a1.state, { now: START, outcomes: [{ seq: 1, status: 'cancelled', executionId: 'ex-9' }] });
    expect(done).toMatchObject({ status: 'completed', result: ['CancelledError', "task 'slow' was cancelled", 'ex-9'] });
  });

  it('names the place of runtime errors, catchable and uncaught', () => {
    const src =
      'const order = { customer: null };\nlet msg;\ntry { msg = order.customer.id; } catch (e) { msg = [e.name, e.message, e.location]; }\nconst again = order.customer.name;';
    const r = simulate(src);
    expect(r.status).toBe('failed');
    expect(r.error?.stack).toBe("TypeError at test.flow:4:30: cannot read 'name' of null");
    const caught = simulate(src.replace(/\nconst again.*$/, '\nreturn msg;'));
    expect(caught.result).toEqual(['TypeError', "cannot read 'id' of null", 'test.flow:3:28']);
  });

  it('reports an uncaught thrown value that is not an Error', () => {
    const r = simulate('throw { code: 42 };');
    expect(r.error).toEqual({ name: 'Error', message: 'uncaught {"code":42}', stack: 'Error: uncaught {"code":42}', value: { code: 42 } });
  });

  it('keeps a pending return across an await in finally', () => {
    const r = simulate('try {\n  return await Task.run("work");\n} finally {\n  await Task.run("cleanup");\n}', {
      tasks: { work: () => 'result', cleanup: () => 'ignored' },
      roundTrip: true,
    });
    expect(r.result).toBe('result');
    expect(r.activations).toBe(3);
  });

  it('rethrows after an await in finally, and a throw in finally replaces it', () => {
    const r = simulate(
      `const log = [];
try {
  try { await Task.run("bad"); } finally { const c = await Task.run("cleanup"); log.push(c); }
} catch (e) { log.push("caught " + e.message); }
try {
  try { throw new Error("first"); } finally { await Timer.delay(1); throw new Error("second"); }
} catch (e) { log.push(e.message); }
return log;`,
      {
        tasks: {
          bad: () => {
            throw new Error('bad task');
          },
          cleanup: () => 'cleaned',
        },
        roundTrip: true,
      },
    );
    expect(r.result).toEqual(['cleaned', 'caught bad task', 'second']);
  });
});

describe('races, timers and signals', () => {
  const RACE =
    'const v = await Promise.race([Signal.next("approve"), Timer.delay(3600)]);\nconst w = await Signal.next("approve");\nreturn [v, w];';

  it('Promise.race of a signal and a timer: the signal wins', () => {
    const f = flow(RACE);
    const a1 = suspended(first(f));
    expect(a1.waitingOn).toEqual({
      mode: 'any',
      children: [],
      signals: [{ seq: 1, name: 'approve' }],
      timers: [{ seq: 2, fireAt: START + 3600_000 }],
      wakeAt: START + 3600_000,
    });
    const a2 = suspended(
      resumeFlow(f, a1.state, { now: START + 10, signals: [{ id: 's1', name: 'approve', payload: { by: 'ana' }, at: START + 5 }] }),
    );
    expect(a2.effects).toEqual([
      { type: 'consumeSignal', seq: 1, signalId: 's1' },
      { type: 'awaitSignal', seq: 3, name: 'approve' },
    ]);
    const done = resumeFlow(f, a2.state, { now: START + 20, signals: [{ id: 's2', name: 'approve', payload: 2 }] });
    expect(done).toMatchObject({ status: 'completed', result: [{ by: 'ana' }, 2] });
  });

  it('Promise.race of a signal and a timer: the timer wins with undefined, and the losing Signal.next swallows nothing', () => {
    const f = flow(RACE);
    const a1 = suspended(first(f));
    // Not due yet: still waiting, nothing consumed.
    expect(suspended(resumeFlow(f, a1.state, { now: START + 3599_999 })).effects).toEqual([]);
    const a2 = suspended(resumeFlow(f, a1.state, { now: START + 3600_000 }));
    expect(a2.effects).toEqual([{ type: 'awaitSignal', seq: 3, name: 'approve' }]);
    // The signal sent after the race is taken by the next Signal.next, not by the loser.
    const done = resumeFlow(f, a2.state, { now: START + 3700_000, signals: [{ id: 's1', name: 'approve', payload: 'late' }] });
    expect(done).toMatchObject({
      status: 'completed',
      result: [null, 'late'],
      effects: [{ type: 'consumeSignal', seq: 3, signalId: 's1' }],
    });
  });

  it('decides a race by time, not by the order outcomes reach the host', () => {
    const f = flow('const r = await Promise.race([Signal.next("s"), Timer.delay(10), Task.run("t")]);\nreturn r ?? "timer";');
    const a1 = suspended(first(f));
    // All three are available at once: the one that settled first wins.
    const signals = [{ id: 's1', name: 's', payload: 'signal', at: START + 9_000 }];
    expect(
      resumeFlow(f, a1.state, {
        now: START + 20_000,
        signals,
        outcomes: [{ seq: 3, status: 'completed', result: 'task', at: START + 8_000 }],
      }),
    ).toMatchObject({ result: 'task', effects: [] });
    expect(
      resumeFlow(f, a1.state, {
        now: START + 20_000,
        signals,
        outcomes: [{ seq: 3, status: 'completed', result: 'task', at: START + 11_000 }],
      }),
    ).toMatchObject({
      result: 'signal',
      effects: [{ type: 'consumeSignal', seq: 1, signalId: 's1' }],
    });
    expect(
      resumeFlow(f, a1.state, { now: START + 20_000, outcomes: [{ seq: 3, status: 'completed', result: 'task', at: START + 11_000 }] }),
    ).toMatchObject({ result: 'timer' });
  });

  it('takes a signal sent before the wait, and signals first in, first out', () => {
    const r = simulate(
      'await Timer.delay(60);\nconst a = await Signal.next("n");\nconst b = await Signal.next("n");\nconst c = await Promise.all([Signal.next("n"), Signal.next("n")]);\nreturn [a, b, c];',
      {
        signals: [1, 2, 3, 4].map((n) => ({ name: 'n', payload: n, at: START })),
        roundTrip: true,
      },
    );
    expect(r.result).toEqual([1, 2, [3, 4]]);
    expect(r.activations).toBe(2);
  });

  it('Promise.any and Promise.allSettled', () => {
    const r = simulate(
      `const settled = await Promise.allSettled([Task.run("ok"), Task.run("bad"), 7]);
const any = await Promise.any([Task.run("bad"), Task.run("ok")]);
let agg;
try { await Promise.any([Task.run("bad"), Task.run("bad")]); } catch (e) { agg = [e.name, e.errors.map((x) => x.message)]; }
return { settled, any, agg };`,
      {
        tasks: {
          ok: () => 'fine',
          bad: () => {
            throw new Error('broken');
          },
        },
      },
    );
    expect(r.result).toEqual({
      settled: [
        { status: 'fulfilled', value: 'fine' },
        { status: 'rejected', reason: { name: 'Error', message: 'broken', executionId: 'task-2', task: 'bad' } },
        { status: 'fulfilled', value: 7 },
      ],
      any: 'fine',
      agg: ['AggregateError', ['broken', 'broken']],
    });
  });

  it('Promise.all rejects with the earliest failure without waiting for the rest', () => {
    const f = flow('try { await Promise.all([Task.run("slow"), Task.run("fails")]); } catch (e) { return e.message; }');
    const a1 = suspended(first(f));
    const done = resumeFlow(f, a1.state, {
      now: START,
      outcomes: [{ seq: 2, status: 'failed', error: { name: 'Error', message: 'early' } }],
    });
    expect(done).toMatchObject({ status: 'completed', result: 'early' });
  });

  it('Timer.until takes an ISO date or epoch milliseconds', () => {
    const f = flow('await Timer.until(Inputs.iso);\nawait Timer.until(Inputs.ms);\nreturn Date.now();');
    const iso = new Date(START + 60_000).toISOString();
    const a1 = suspended(first(f, { iso, ms: START + 120_000 }));
    expect(a1.waitingOn.wakeAt).toBe(START + 60_000);
    const a2 = suspended(resumeFlow(f, a1.state, { now: START + 60_000 }));
    expect(a2.waitingOn.wakeAt).toBe(START + 120_000);
    expect(resumeFlow(f, a2.state, { now: START + 130_000 })).toMatchObject({ status: 'completed', result: START + 130_000 });
  });
});

describe('values from the host', () => {
  it('keeps Math.random() and Date.now() values across a resume: they are state, not replayed', () => {
    const f = flow(
      'const r = Math.random();\nconst t = Date.now();\nawait Task.run("t");\nreturn { r, t, r2: Math.random(), t2: Date.now() };',
    );
    let calls = 0;
    const a1 = suspended(resumeFlow(f, startFlow(f, null, { executionId: 'wf-1' }), { now: 1000, random: () => (calls++, 0.25) }));
    const state = JSON.parse(JSON.stringify(a1.state)) as FlowState;
    const done = resumeFlow(f, state, {
      now: 2000,
      random: () => (calls++, 0.75),
      outcomes: [{ seq: 1, status: 'completed', result: null }],
    });
    expect(done).toMatchObject({ result: { r: 0.25, t: 1000, r2: 0.75, t2: 2000 } });
    expect(calls).toBe(2);
  });

  it('gives Inputs and Context to the script', () => {
    const f = flow('return [Inputs.a, Context.executionId, Context.attempt];');
    expect(resumeFlow(f, startFlow(f, { a: 1 }, { executionId: 'ex-1', attempt: 2 }), { now: 0 })).toMatchObject({
      result: [1, 'ex-1', 2],
    });
  });

  it('ignores outcomes for handles it does not hold and outcomes delivered twice', () => {
    const f = flow('await Task.run("a");\nreturn await Task.run("b");');
    const a1 = suspended(first(f));
    const a2 = suspended(
      resumeFlow(f, a1.state, {
        now: START,
        outcomes: [
          { seq: 1, status: 'completed', result: 1 },
          { seq: 99, status: 'completed', result: 'stray' },
        ],
      }),
    );
    const a3 = suspended(
      resumeFlow(f, a2.state, { now: START, outcomes: [{ seq: 1, status: 'failed', error: { message: 'late duplicate' } }] }),
    );
    expect(a3.waitingOn.children).toEqual([2]);
    expect(resumeFlow(f, a3.state, { now: START, outcomes: [{ seq: 2, status: 'completed', result: 'b' }] })).toMatchObject({
      result: 'b',
    });
  });
});

describe('guards', () => {
  it('fails an endless loop on the step budget with a clear error', () => {
    const r = simulate('let i = 0;\nwhile (true) {\n  i++;\n}', { limits: { maxSteps: 10_000 } });
    expect(r.status).toBe('failed');
    expect(r.error?.name).toBe('FlowStepLimitError');
    expect(r.error?.stack).toMatch(
      /^FlowStepLimitError at test\.flow:2:14: the workflow ran 10000 steps without awaiting \(an endless loop\?\)/,
    );
  });

  it('cannot catch the step limit, also inside a callback', () => {
    const r = simulate('try { [1, 2].forEach((x) => { while (true) {} }); } catch (e) { return "caught"; }', {
      limits: { maxSteps: 1000 },
    });
    expect(r.error?.name).toBe('FlowStepLimitError');
  });

  it('counts steps per activation: a long workflow that awaits is fine', () => {
    const r = simulate(
      'let total = 0;\nfor (let round = 0; round < 5; round++) {\n  for (let i = 0; i < 150; i++) total += i;\n  await Timer.delay(1);\n}\nreturn total;',
      { limits: { maxSteps: 500 } },
    );
    expect(r).toMatchObject({ status: 'completed', result: 5 * 11175, activations: 6 });
  });

  it('fails a workflow whose saved state would be too large', () => {
    const r = simulate(
      'const big = [];\nfor (let i = 0; i < 5000; i++) big.push("item " + i);\nawait Timer.delay(1);\nreturn big.length;',
      { limits: { maxStateBytes: 20_000 } },
    );
    expect(r.status).toBe('failed');
    expect(r.error?.name).toBe('FlowStateTooLargeError');
    expect(r.error?.message).toMatch(
      /^the workflow state is \d+ bytes, over the limit of 20000: keep large data in task results and pass ids between steps$/,
    );
    expect(r.error?.location).toBe('test.flow:3:1');
  });

  it('fails, not crashes, on data nested too deeply to save', () => {
    const deep = 'let list = null;\nfor (let i = 0; i < 200000; i++) list = { next: list };\n';
    const saved = simulate(`${deep}await Timer.delay(1);`, { limits: { maxSteps: 1_000_000 } });
    expect(saved.error).toMatchObject({ name: 'FlowStateTooLargeError', message: 'the workflow state is nested too deeply to save' });
    const returned = simulate(`${deep}return list;`, { limits: { maxSteps: 1_000_000 } });
    expect(returned.error).toMatchObject({ name: 'RangeError', message: 'the workflow result is nested too deeply to save' });
    const passed = simulate(`${deep}try { Task.run("t", list); } catch (e) { return e.name; }`, { limits: { maxSteps: 1_000_000 } });
    expect(passed.result).toBe('RangeError');
  });

  it('refuses a state from another source or format', () => {
    const f = flow('await Timer.delay(1);');
    const a1 = suspended(first(f));
    const other = flow('await Timer.delay(2);');
    expect(() => resumeFlow(other, a1.state, { now: START })).toThrow(FlowStateError);
    expect(() => resumeFlow(other, a1.state, { now: START })).toThrow(/resume a workflow with the source version it started on/);
    expect(() => resumeFlow(f, { ...a1.state, format: 99 }, { now: START })).toThrow(/format 99/);
    expect(() =>
      resumeFlow(
        f,
        {
          ...a1.state,
          frames: [
            [0, 1],
            [9999, 0],
          ],
        },
        { now: START },
      ),
    ).toThrow(/damaged state/);
    expect(() => resumeFlow(f, { ...a1.state, env: [[{ $: 'p', i: 7 }]] }, { now: START })).toThrow(/damaged state/);
    expect(() => resumeFlow(f, a1.state, { now: START, limits: { maxSteps: 0 } })).toThrow(
      'resumeFlow: limits.maxSteps must be an integer >= 1, got 0',
    );
  });
});

describe('the saved state', () => {
  it('keeps sharing, cycles and values JSON lacks through a JSON round trip', () => {
    const src = `
const shared = { n: 1 };
const box = { a: shared, b: shared, list: [shared] };
box.self = box;
const odd = { u: undefined, nan: NaN, inf: -Infinity, negZero: -0, "$": "dollar", nul: "a\\u0000b", lone: "\\ud800" };
const proto = JSON.parse('{"__proto__": {"x": 1}}');
const err = new TypeError("kept");
let later;
const pending = Task.run("t");
await Timer.delay(1);
box.b.n = 2;
later = 'set after';
const v = await pending;
return [shared.n, box.list[0] === box.a, box.self === box, Object.keys(odd), odd.u === undefined, odd.nan !== odd.nan, odd.inf === -Infinity, Object.is(odd.negZero, -0),
  odd.$, odd.nul.length, odd.lone.length, Object.keys(proto), proto.__proto__.x, err.name, err.message, err instanceof TypeError, later, v];`;
    const plain = simulate(src, { tasks: { t: () => 'T' } });
    const roundTrip = simulate(src, { tasks: { t: () => 'T' }, roundTrip: true });
    expect(plain.error).toBeUndefined();
    expect(roundTrip.result).toEqual(plain.result);
    expect(roundTrip.result).toEqual([
      2,
      true,
      true,
      ['u', 'nan', 'inf', 'negZero', '$', 'nul', 'lone'],
      true,
      true,
      true,
      true,
      'dollar',
      3,
      1,
      ['__proto__'],
      1,
      'TypeError',
      'kept',
      true,
      'set after',
      'T',
    ]);
    // Nothing in the state is something JSON (or Postgres jsonb) could not carry.
    for (const text of roundTrip.states) {
      expect(text).not.toContain('\\u0000');
      expect(text.isWellFormed()).toBe(true);
    }
  });

  it('names statements by number and stays small', () => {
    const f = flow(ORDER);
    const a1 = suspended(first(f, ORDER_INPUTS));
    const text = JSON.stringify(a1.state);
    expect(text.length).toBeLessThan(500);
    expect(a1.state.frames.every((fr) => Array.isArray(fr) && typeof fr[0] === 'number')).toBe(true);
    expect(text).not.toContain('reserve",{'); // no source or instruction tree in the state
  });
});
