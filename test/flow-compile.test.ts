/**
 * The .flow compiler: what is refused when a file is registered, with the exact message and
 * place, every problem at once. No database.
 */
import { describe, expect, it } from 'vitest';
import { compileFlow, FlowSyntaxError } from '../src/workflows/index.js';
import { RhythmValidationError } from '../src/errors.js';

const CALLBACKS =
  'map, filter, find, findIndex, findLast, findLastIndex, some, every, reduce, reduceRight, forEach, flatMap, sort, toSorted';
const AWAIT =
  'await is only allowed as the whole value of a statement: `const x = await ...`, `x = await ...`, `return await ...` or `await ...;` (assign it to a variable first, then use the variable)';
const ARROW = `arrow functions are only allowed as the callback of an array method (${CALLBACKS}); for reusable logic use a loop, or a task`;

function problems(source: string): string[] {
  try {
    compileFlow(source, 'order.flow');
  } catch (err) {
    expect(err).toBeInstanceOf(FlowSyntaxError);
    return (err as FlowSyntaxError).message.split('\n');
  }
  throw new Error(`compiled without problems: ${source}`);
}

const REFUSED: [string, string][] = [
  [
    'function f() {}',
    `order.flow:1:1: function declarations are not supported: put reusable work in a task (Task.run) or a child workflow (Workflow.run), or use an arrow function as the callback of an array method (${CALLBACKS})`,
  ],
  [
    'const x = function () {};',
    `order.flow:1:11: function expressions are not supported: use an arrow function as the callback of an array method (${CALLBACKS})`,
  ],
  ['function* g() {}', 'order.flow:1:1: generator functions are not supported: use a for...of loop over an array'],
  ['class A {}', 'order.flow:1:1: classes are not supported: a workflow holds data only; use object literals ({ ... })'],
  [
    'const m = new Map();',
    "order.flow:1:11: 'new' is not supported (except new Error(message)): build data with object literals ({ ... })",
  ],
  [
    'const d = new Date();',
    "order.flow:1:11: 'new Date' is not supported: use Date.now() (milliseconds since the epoch) and Date.parse(isoString); Timer.until takes either",
  ],
  ['this.x = 1;', "order.flow:1:1: 'this' is not supported: a workflow has no object; use a variable"],
  ['import fs from "fs";', 'order.flow:1:1: import is not supported: a workflow cannot load modules; run that code in a task (Task.run)'],
  [
    'const m = import("x");',
    'order.flow:1:11: import() is not supported: a workflow cannot load modules; run that code in a task (Task.run)',
  ],
  ['export const a = 1;', 'order.flow:1:1: export is not supported: a workflow returns its result with `return`'],
  ['var x = 1;', "order.flow:1:1: 'var' is not supported: use const, or let for a variable you reassign"],
  [
    'const r = /ab+c/;',
    'order.flow:1:11: regular expressions are not supported: use string methods (includes, startsWith, split, replaceAll), or do the matching in a task',
  ],
  ['const x = 1 + await Task.run("a");', `order.flow:1:15: ${AWAIT}`],
  ['if (await Task.run("a")) {}', `order.flow:1:5: ${AWAIT}`],
  ['const o = { r: await Task.run("a") };', `order.flow:1:16: ${AWAIT}`],
  ['for (let i = await Task.run("a"); i < 1; i++) {}', `order.flow:1:14: ${AWAIT}; not in a for loop's header`],
  [
    'let x = 1; x ||= await Task.run("a");',
    'order.flow:1:18: await cannot be the value of ||= (it may not run at all): use an if statement around `x = await ...`',
  ],
  ['const f = (x) => x;', `order.flow:1:11: ${ARROW}`],
  ['const x = (() => 1)();', `order.flow:1:12: ${ARROW}`],
  [
    '[1].map(async (x) => x);',
    'order.flow:1:9: async callbacks are not supported (a callback cannot await): start the work in the callback, items.map((i) => Task.run(...)), and await Promise.all(...) of the result',
  ],
  [
    '[1].map((x) => await x);',
    'order.flow:1:16: await is not allowed inside a callback: start the work in the callback (items.map((i) => Task.run(...))) and await Promise.all(...) of the result outside it',
  ],
  ['const x = 10n;', 'order.flow:1:11: BigInt literals are not supported: workflow values are JSON; use a number or a string'],
  ['const o = { m() {} };', 'order.flow:1:13: methods, getters and setters in object literals are not supported: objects hold data only'],
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the expected message quotes the script's syntax.
  ['const t = tag`x`;', 'order.flow:1:11: tagged templates are not supported: use a plain template literal `...${x}...`'],
  ['debugger;', "order.flow:1:1: 'debugger' is not supported: remove it"],
  [
    'for await (const x of []) {}',
    'order.flow:1:1: `for await` is not supported: await Promise.all(...) of the handles, then loop over the results',
  ],
  [
    'const e = {} instanceof Map;',
    'order.flow:1:25: instanceof is only supported with Error, TypeError, RangeError, ReferenceError, SyntaxError: check a property instead (Array.isArray(x), typeof x === "object")',
  ],
  [
    'foo();',
    "order.flow:1:1: 'foo' is not defined (functions cannot be declared in a workflow: use a task, or an arrow callback of an array method)",
  ],
  ['return missing + 1;', "order.flow:1:8: 'missing' is not defined"],
  ['let f = 1; f();', "order.flow:1:12: 'f' is a variable, not a function: only built-in functions and methods can be called"],
  ['const x = 1; x = 2;', "order.flow:1:14: cannot assign to 'x': it is a const (declared at 1:7); declare it with let to reassign it"],
  [
    'for (const i of [1]) i++;',
    "order.flow:1:22: cannot assign to 'i': it is a const (declared at 1:12); declare it with let to reassign it",
  ],
  ['y = 3;', "order.flow:1:1: 'y' is not declared: declare it first with let y = ..."],
  ['Inputs = 1;', "order.flow:1:1: cannot assign to the built-in 'Inputs'; copy it into a variable (let inputs = Inputs)"],
  ['const Inputs = 2;', "order.flow:1:7: 'Inputs' is built in (the workflow's inputs); choose another name"],
  ['Task.start("a");', 'order.flow:1:6: Task.start is not supported; Task has: run()'],
  ['await Promise.first([]);', 'order.flow:1:15: Promise.first is not supported; Promise has: all(), allSettled(), any(), race()'],
  ['const m = Math;', 'order.flow:1:11: Math can only be used as Math.name(...) or Math.CONSTANT'],
  ['const m = Math.max;', 'order.flow:1:11: Math.max can only be called: Math.max(...)'],
  ['const x = ;', 'order.flow:1:11: Unexpected token'],
];

describe('.flow compile errors', () => {
  for (const [source, message] of REFUSED) {
    it(`refuses ${source}`, () => {
      expect(problems(source)).toEqual([message]);
    });
  }

  it('reports every problem at once, in source order, with a class holding the list', () => {
    const source = [
      'var total = 0;', //
      'function add(a, b) { return a + b; }',
      'const r = /x/;',
      'for (const item of Inputs.items) {',
      '  total = add(total, item.price * (await Task.run("price", item)));',
      '}',
      'return this.total;',
    ].join('\n');
    let error: FlowSyntaxError | undefined;
    try {
      compileFlow(source, 'order.flow');
    } catch (err) {
      error = err as FlowSyntaxError;
    }
    expect(error).toBeInstanceOf(FlowSyntaxError);
    expect(error).toBeInstanceOf(RhythmValidationError);
    expect(error!.name).toBe('FlowSyntaxError');
    expect(error!.fileName).toBe('order.flow');
    expect(error!.problems.map((p) => [p.line, p.column])).toEqual([
      [1, 1],
      [2, 1],
      [3, 11],
      [5, 36],
      [7, 8],
    ]);
    expect(error!.message.split('\n')).toHaveLength(5);
    expect(error!.message.split('\n')[3]).toBe(`order.flow:5:36: ${AWAIT}`);
    // A call to the refused function is not reported a second time as undefined.
    expect(error!.message).not.toContain("'add' is not defined");
  });

  it('compiles the same source to the same tree and hash, and another source to another hash', () => {
    const src = 'const a = await Task.run("x", Inputs);\nreturn a;';
    const a = compileFlow(src, 'a.flow');
    const b = compileFlow(src, 'a.flow');
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.hash).toBe(a.hash);
    expect(JSON.stringify(b.nodes)).toBe(JSON.stringify(a.nodes));
    expect(compileFlow(`${src}\n`, 'a.flow').hash).not.toBe(a.hash);
  });

  it('accepts the whole supported language', () => {
    const source = `
      const { items = [], id } = Inputs;
      let total = 0, log = [];
      outer: for (const [i, item] of items.entries ? [] : []) { continue outer; }
      for (let i = 0; i < items.length; i++) total += items[i].price ?? 0;
      for (const k in Inputs) log.push(k);
      while (total > 100) total -= 10;
      do { total++; } while (total < 0);
      switch (id % 3) { case 0: log.push('zero'); break; default: log.push('other'); }
      const all = await Promise.all(items.map((i) => Task.run('price', i)));
      const first = await Promise.race([Signal.next('go'), Timer.delay(60)]);
      const late = Timer.until('2030-01-01T00:00:00Z');
      let x;
      x = await Workflow.run('child', { all }, { queue: 'flows' });
      try { throw new RangeError(\`bad \${total}\`); } catch (e) { log.push(e.message); } finally { log.push('done'); }
      const s = JSON.stringify({ total, r: Math.random(), at: Date.now(), ctx: Context.executionId });
      return { total, all, first, x, s, keys: Object.keys(Inputs), late: typeof late, opt: Inputs?.a?.b };
    `;
    expect(() => compileFlow(source, 'order.flow')).not.toThrow();
  });
});
