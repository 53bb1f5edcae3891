/**
 * Fuzz: randomly generated .flow scripts and outcomes. The key property of the design is that
 * saving the whole interpreter state as JSON at every await changes nothing: each script runs
 * (a) with the state kept in memory, (b) with it round-tripped through JSON.stringify/parse at
 * every await, and (c) round-tripped with outcomes delivered one per activation; all three must
 * give the same result, effects and (a, b) saved states. Scripts without timers or signals are
 * also run as a plain JavaScript async function, which must agree on the result.
 * Seeds are fixed, so a failure is reproducible; the failing script is printed.
 */
import { describe, expect, it } from 'vitest';
import { compileFlow } from '../src/workflows/index.js';
import { START, simulate, type SimResult } from './support/flow-host.js';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VARS = ['v0', 'v1', 'v2'];

class Gen {
  private names = 0;
  /** Timers, signals or races: JavaScript's own promises cannot say who wins by time. */
  timed = false;
  constructor(
    private readonly r: () => number,
    private readonly allowTimed: boolean,
  ) {}

  private int(n: number): number {
    return Math.floor(this.r() * n);
  }
  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  private fresh(prefix: string): string {
    return `${prefix}${this.names++}`;
  }

  expr(depth = 0): string {
    const leaf = depth > 2 || this.r() < 0.4;
    if (leaf) return this.pick([String(this.int(20)), this.pick(VARS), 'box.n', 'alias.n', 'log.length', 'box.list.length']);
    const a = this.expr(depth + 1);
    const b = this.expr(depth + 1);
    switch (this.int(9)) {
      case 0:
        return `(${a} + ${b})`;
      case 1:
        return `((${a} * ${b}) % 50)`;
      case 2:
        return `(${a} - ${b})`;
      case 3:
        return `(${this.cond(depth + 1)} ? ${a} : ${b})`;
      case 4:
        return `Math.max(${a}, ${b})`;
      case 5:
        return `[${a}, ${b}][1]`;
      case 6:
        return `({ k: ${a} }).k`;
      case 7:
        return `[1, 2, 3].map((q) => q * ${a}).reduce((s, q) => s + q, 0)`;
      default:
        return `(box.missing?.deep ?? ${a})`;
    }
  }

  cond(depth = 0): string {
    switch (this.int(4)) {
      case 0:
        return `${this.expr(depth + 1)} > ${this.expr(depth + 1)}`;
      case 1:
        return `${this.expr(depth + 1)} % 2 === 0`;
      case 2:
        return `!(${this.expr(depth + 1)} === ${this.int(5)})`;
      default:
        return `${this.expr(depth + 1)} < 10 && ${this.expr(depth + 1)} !== 3`;
    }
  }

  task(): string {
    return `Task.run("t", { x: ${this.expr(1)}, y: ${this.pick(VARS)} })`;
  }

  /** `await` only stands as a whole statement value: take it into a block-scoped const first. */
  private pushAwaited(awaitable: string, fallback: string): string {
    const z = this.fresh('z');
    return `{ const ${z} = await ${awaitable}; log.push(${z} ?? ${fallback}); }`;
  }

  block(depth: number, inLoop: boolean): string {
    const n = 1 + this.int(3);
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.stmt(depth, inLoop));
    return out.join('\n');
  }

  stmt(depth: number, inLoop: boolean): string {
    const simple = depth >= 3;
    const k = this.int(simple ? 9 : this.allowTimed ? 17 : 15);
    const v = this.pick(VARS);
    switch (k) {
      case 0:
        return `${v} = (${this.expr()}) % 997;`;
      case 1:
        return `${v} += ${this.expr()} % 13;`;
      case 2:
        return `log.push(${this.expr()});`;
      case 3:
        return `alias.n = (box.n + ${this.expr()}) % 101; box.list.push(alias.n);`;
      case 4:
        return `${v} = await ${this.task()};`;
      case 5: {
        const r = this.fresh('r');
        return `{ const ${r} = await ${this.task()}; log.push(${r}); }`;
      }
      case 6: {
        const [a, b] = [this.fresh('a'), this.fresh('b')];
        return `{ const [${a}, ${b}] = await Promise.all([${this.task()}, ${this.task()}]); log.push(${a} - ${b}); }`;
      }
      case 7:
        return `${v} = Math.floor(Math.random() * 100);`;
      case 8:
        if (inLoop) return this.pick([`if (${this.cond()}) break;`, `if (${this.cond()}) continue;`]);
        return `await ${this.task()};`;
      case 9:
        return `if (${this.cond()}) {\n${this.block(depth + 1, inLoop)}\n} else {\n${this.block(depth + 1, inLoop)}\n}`;
      case 10: {
        const i = this.fresh('i');
        return `for (let ${i} = 0; ${i} < ${1 + this.int(3)}; ${i}++) {\n${this.block(depth + 1, true)}\n}`;
      }
      case 11: {
        const x = this.fresh('x');
        return `for (const ${x} of [${this.int(9)}, ${this.int(9)}]) {\n${v} = (${v} + ${x}) % 97;\n${this.block(depth + 1, true)}\n}`;
      }
      case 12:
        return `try {\n${this.block(depth + 1, inLoop)}\nif (${this.cond()}) throw new Error("e" + ${this.expr()});\n${this.block(depth + 1, inLoop)}\n} catch (e) {\nlog.push(e.message);\n} finally {\nlog.push("f");\n${this.block(depth + 1, inLoop)}\n}`;
      case 13: {
        const w = this.fresh('w');
        return `{\nlet ${w} = ${this.expr()};\n${this.block(depth + 1, inLoop)}\n${w} += 1;\nlog.push(${w});\n}`;
      }
      case 14:
        return `{ let guard = 0;\nwhile (guard < ${1 + this.int(3)}) {\nguard++;\n${this.block(depth + 1, true)}\n} }`;
      case 15:
        this.timed = true;
        return this.pushAwaited(`Promise.race([${this.task()}, Timer.delay(${this.pick(['0.005', '0.01', '0.02'])})])`, '"timer"');
      default:
        this.timed = true;
        return this.pick([
          this.pushAwaited(`Promise.race([Signal.next("s"), Timer.delay(${this.pick(['0.005', '0.03'])})])`, '"no signal"'),
          `await Timer.delay(${this.pick(['0', '0.004', '0.015'])});`,
          this.pushAwaited(`Promise.any([${this.task()}, ${this.task()}])`, 'null'),
        ]);
    }
  }

  script(): string {
    const body = `${this.block(0, false)}\n${this.block(0, false)}`;
    return `let v0 = Inputs.start, v1 = 2, v2 = 3;\nconst box = { n: 0, list: [] };\nconst alias = box;\nconst log = [];\n${body}\nreturn { v0, v1, v2, box, log, same: box === alias };`;
  }
}

/** The task: a pure function of its payload that fails for some inputs. */
function t(p: { x: number; y: number }): number {
  if (Math.abs(p.x) % 7 === 3) throw new Error(`t failed for ${p.x}`);
  return (p.x * 7 + p.y) % 1000;
}

function randoms(seed: number): () => number {
  return rng(seed ^ 0x5eed);
}

function run(src: string, seed: number, mode: 'plain' | 'roundTrip' | 'oneByOne'): SimResult {
  const r = rng(seed);
  const signals = [0, 1, 2].map((i) => ({ name: 's', payload: `sig${i}`, at: START + Math.floor(r() * 60) }));
  return simulate(src, {
    inputs: { start: seed % 10 },
    tasks: { t },
    durations: { t: 10 },
    signals,
    random: randoms(seed),
    roundTrip: mode !== 'plain',
    oneByOne: mode === 'oneByOne',
    maxActivations: 2000,
  });
}

async function oracle(src: string, seed: number): Promise<unknown> {
  const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<unknown>;
  const fn = new AsyncFunction('Inputs', 'Task', 'Math', `"use strict";\n${src}`);
  const task = { run: (_name: string, p: { x: number; y: number }) => new Promise((resolve) => resolve(t(p))) };
  const math = Object.create(Math) as Math;
  Object.defineProperty(math, 'random', { value: randoms(seed) });
  try {
    return { status: 'completed', result: JSON.parse(JSON.stringify(await fn({ start: seed % 10 }, task, math))) };
  } catch (err) {
    return { status: 'failed', message: (err as Error).message };
  }
}

function outcome(r: SimResult): unknown {
  return r.status === 'completed'
    ? { status: r.status, result: r.result }
    : r.status === 'failed'
      ? { status: r.status, message: r.error?.message }
      : { status: r.status };
}

describe('fuzz: saving the state at every await changes nothing', () => {
  const SCRIPTS = 300;
  it(`${SCRIPTS} generated scripts agree across state round trips, delivery orders and plain JavaScript`, async () => {
    let compared = 0;
    let awaited = 0;
    const statuses: Record<string, number> = {};
    for (let seed = 1; seed <= SCRIPTS; seed++) {
      const g = new Gen(rng(seed * 7919), seed % 2 === 0);
      const src = g.script();
      try {
        compileFlow(src, 'fuzz.flow');
        const plain = run(src, seed, 'plain');
        const trip = run(src, seed, 'roundTrip');
        const one = run(src, seed, 'oneByOne');
        expect(trip.status).not.toBe('stuck');
        expect(outcome(trip)).toEqual(outcome(plain));
        expect(trip.effects).toEqual(plain.effects);
        expect(trip.states).toEqual(plain.states);
        expect(outcome(one)).toEqual(outcome(plain));
        expect(one.effects).toEqual(plain.effects);
        if (plain.states.length > 0) awaited++;
        statuses[plain.status] = (statuses[plain.status] ?? 0) + 1;
        if (!g.timed) {
          expect(outcome(plain)).toEqual(await oracle(src, seed));
          compared++;
        }
      } catch (err) {
        console.error(`fuzz seed ${seed} failed; script:\n${src}`);
        throw err;
      }
    }
    console.log(`fuzz: ${awaited} scripts awaited, ${compared} compared with JavaScript, outcomes ${JSON.stringify(statuses)}`);
    // The generator must produce what it claims to test.
    expect(awaited).toBeGreaterThan(SCRIPTS * 0.8);
    expect(compared).toBeGreaterThan(SCRIPTS * 0.4);
    expect(statuses.completed).toBeGreaterThan(SCRIPTS * 0.3);
    expect(statuses.failed).toBeGreaterThan(SCRIPTS * 0.05);
  });
});
