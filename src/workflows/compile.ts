/**
 * The compiler: .flow source to the numbered instruction tree (nodes.ts).
 *
 * acorn parses the source as a JavaScript module (strict mode, top-level await and return
 * allowed). Then one walk both checks and emits: every refused construct is recorded with its
 * place and a fix, and the walk goes on, so registering a file reports all of its problems at
 * once. Names are resolved here: a variable becomes a (scope level, slot) pair, an undeclared
 * name or an assignment to a const is a compile error, not a surprise in production three
 * awaits into a workflow.
 *
 * The rules that make state saving possible are enforced here: `await` only as the whole value
 * of a statement (so expressions never suspend halfway), arrow functions only as callbacks of
 * array methods (so no function value is ever stored), no classes, `this`, `new` or modules.
 */
import { createHash } from 'node:crypto';
import { parse } from 'acorn';
import { CALLBACK_METHODS, ERROR_CONSTRUCTORS, GLOBAL_CONSTANTS, GLOBAL_FUNCTIONS, NAMESPACES } from './builtins.js';
import { FlowSyntaxError, type FlowProblem } from './errors.js';
import { K, type Node, type ObjProp, type PObjectProp } from './nodes.js';
import { Closure, own } from './values.js';

/** A compiled .flow file: what startFlow and resumeFlow run. */
export interface CompiledFlow {
  fileName: string;
  source: string;
  /** sha256 of the source, hex: pins a running workflow to the version it started on. */
  hash: string;
  /** The instruction tree; node 0 is the program. */
  nodes: Node[];
}

/** An acorn (ESTree) node; the walk reads the fields each node type has. */
// biome-ignore lint/suspicious/noExplicitAny: acorn's nodes are untyped; each case reads the fields its node type has.
type ES = any;

type BindingKind = 'const' | 'let' | 'builtin' | 'refused';
interface Binding {
  slot: number;
  kind: BindingKind;
  line: number;
  col: number;
}
interface Scope {
  names: Map<string, Binding>;
}
interface Declared {
  name: string;
  kind: BindingKind;
  at: ES;
}

const CALLBACKS = [...CALLBACK_METHODS].join(', ');
const AWAIT_PLACES =
  'await is only allowed as the whole value of a statement: `const x = await ...`, `x = await ...`, `return await ...` or `await ...;` (assign it to a variable first, then use the variable)';
const ARROW_ONLY = `arrow functions are only allowed as the callback of an array method (${CALLBACKS}); for reusable logic use a loop, or a task`;

export function compileFlow(source: string, fileName: string): CompiledFlow {
  if (typeof source !== 'string') throw new TypeError('compileFlow: source must be a string');
  let ast: ES;
  try {
    ast = parse(source, {
      ecmaVersion: 'latest',
      sourceType: 'module',
      allowReturnOutsideFunction: true,
      allowAwaitOutsideFunction: true,
      locations: true,
    });
  } catch (err) {
    const e = err as SyntaxError & { loc?: { line: number; column: number } };
    const message = e.message.replace(/ \(\d+:\d+\)$/, '');
    const fixed = /Cannot use keyword 'await' outside an async function/.test(message)
      ? 'await is not allowed inside a callback: start the work in the callback (items.map((i) => Task.run(...))) and await Promise.all(...) of the result outside it'
      : message;
    throw new FlowSyntaxError(fileName, [{ line: e.loc?.line ?? 1, column: (e.loc?.column ?? 0) + 1, message: fixed }]);
  }
  const c = new Compiler();
  c.program(ast);
  if (c.problems.length > 0) {
    c.problems.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new FlowSyntaxError(fileName, c.problems);
  }
  const hash = createHash('sha256').update(source).digest('hex');
  return { fileName, source, hash, nodes: c.nodes };
}

class Compiler {
  readonly nodes: Node[] = [];
  readonly problems: FlowProblem[] = [];
  private readonly scopes: Scope[] = [];
  private arrowDepth = 0;
  private pendingLabels: string[] | null = null;

  private add(n: Omit<Node, 'line' | 'col'> & Record<string, unknown>, at: ES): number {
    this.nodes.push(shaped({ ...n, line: at.loc.start.line, col: at.loc.start.column + 1 }));
    return this.nodes.length - 1;
  }

  private problem(at: ES, message: string): void {
    this.problems.push({ line: at.loc.start.line, column: at.loc.start.column + 1, message });
  }

  private lit(v: unknown, at: ES): number {
    return this.add({ k: K.Lit, v }, at);
  }

  private empty(at: ES): number {
    return this.add({ k: K.Empty }, at);
  }

  // ---- scopes -------------------------------------------------------------------------

  /** let/const (and refused function/class) names declared directly in a statement list. */
  private declaredIn(stmts: ES[]): Declared[] {
    const out: Declared[] = [];
    for (const s of stmts) {
      if (s.type === 'VariableDeclaration') {
        const kind = s.kind === 'const' ? 'const' : 'let';
        for (const d of s.declarations) for (const id of patternNames(d.id)) out.push({ name: id.name, kind, at: id });
      } else if ((s.type === 'FunctionDeclaration' || s.type === 'ClassDeclaration') && s.id) {
        out.push({ name: s.id.name, kind: 'refused', at: s.id });
      }
    }
    return out;
  }

  /** Opens a scope for `names` if there are any; returns its slot count (0: no scope opened). */
  private open(names: Declared[]): number {
    if (names.length === 0) return 0;
    const scope: Scope = { names: new Map() };
    for (const d of names) {
      if (scope.names.has(d.name)) continue; // acorn reports real redeclarations
      scope.names.set(d.name, { slot: scope.names.size, kind: d.kind, line: d.at.loc.start.line, col: d.at.loc.start.column + 1 });
    }
    this.scopes.push(scope);
    return scope.names.size;
  }

  private close(slots: number): void {
    if (slots > 0) this.scopes.pop();
  }

  private lookup(name: string): { level: number; b: Binding } | undefined {
    for (let level = this.scopes.length - 1; level >= 0; level--) {
      const b = this.scopes[level].names.get(name);
      if (b !== undefined) return { level, b };
    }
    return undefined;
  }

  private isGlobal(name: string, table: object): boolean {
    return own(table, name) && this.lookup(name) === undefined;
  }

  // ---- program and statements ---------------------------------------------------------

  program(ast: ES): void {
    this.nodes.push(null as unknown as Node); // node 0 is the program, filled in below
    const builtins: Declared[] = [
      { name: 'Inputs', kind: 'builtin', at: ast },
      { name: 'Context', kind: 'builtin', at: ast },
    ];
    const declared = this.declaredIn(ast.body);
    for (const d of declared) {
      if (d.name === 'Inputs' || d.name === 'Context')
        this.problem(d.at, `'${d.name}' is built in (the workflow's ${d.name === 'Inputs' ? 'inputs' : 'context'}); choose another name`);
    }
    const slots = this.open([...builtins, ...declared.filter((d) => d.name !== 'Inputs' && d.name !== 'Context')]);
    const body = ast.body.map((s: ES) => this.stmt(s));
    this.nodes[0] = shaped({ k: K.Program, body, slots, line: 1, col: 1 });
  }

  private takeLabels(): string[] | null {
    const labels = this.pendingLabels;
    this.pendingLabels = null;
    return labels;
  }

  private stmt(s: ES): number {
    if (s.type !== 'LabeledStatement' && s.type !== 'SwitchStatement' && !isLoop(s)) this.pendingLabels = null;
    switch (s.type) {
      case 'VariableDeclaration':
        return this.declaration(s, true);
      case 'ExpressionStatement':
        return this.expressionStatement(s);
      case 'ReturnStatement': {
        const inArrow = this.arrowDepth > 0;
        if (s.argument?.type === 'AwaitExpression')
          return this.add({ k: K.Return, e: this.expr(s.argument.argument), aw: true, inArrow }, s);
        return this.add({ k: K.Return, e: s.argument ? this.expr(s.argument) : -1, aw: false, inArrow }, s);
      }
      case 'IfStatement': {
        const test = this.expr(s.test);
        const cons = this.stmt(s.consequent);
        const alt = s.alternate ? this.stmt(s.alternate) : -1;
        return this.add({ k: K.If, test, cons, alt }, s);
      }
      case 'BlockStatement':
        return this.block(s.body, s, []);
      case 'WhileStatement':
      case 'DoWhileStatement': {
        const labels = this.takeLabels();
        const test = this.expr(s.test);
        const body = this.stmt(s.body);
        return this.add({ k: s.type === 'WhileStatement' ? K.While : K.DoWhile, test, body, labels, slots: 0 }, s);
      }
      case 'ForStatement': {
        const labels = this.takeLabels();
        const decl = s.init?.type === 'VariableDeclaration' ? s.init : null;
        const slots = this.open(decl ? this.declaredIn([decl]) : []);
        let init = -1;
        if (decl) init = this.declaration(decl, false);
        else if (s.init) init = this.add({ k: K.Expr, e: this.expr(s.init) }, s.init);
        const test = s.test ? this.expr(s.test) : -1;
        const update = s.update ? this.expr(s.update) : -1;
        const body = this.stmt(s.body);
        this.close(slots);
        return this.add({ k: K.For, init, test, update, body, labels, slots }, s);
      }
      case 'ForOfStatement':
      case 'ForInStatement': {
        const labels = this.takeLabels();
        if (s.await) this.problem(s, '`for await` is not supported: await Promise.all(...) of the handles, then loop over the results');
        const decl = s.left.type === 'VariableDeclaration' ? s.left : null;
        if (decl?.kind === 'var') this.problem(decl, "'var' is not supported: use const, or let for a variable you reassign");
        const slots = this.open(decl ? this.declaredIn([decl]) : []);
        const right = this.expr(s.right);
        const p = decl ? this.pattern(decl.declarations[0].id, true) : this.pattern(s.left, false);
        const body = this.stmt(s.body);
        this.close(slots);
        return this.add({ k: s.type === 'ForOfStatement' ? K.ForOf : K.ForIn, p, decl: decl !== null, right, body, labels, slots }, s);
      }
      case 'BreakStatement':
      case 'ContinueStatement':
        return this.add({ k: s.type === 'BreakStatement' ? K.Break : K.Continue, label: s.label ? s.label.name : null }, s);
      case 'ThrowStatement':
        return this.add({ k: K.Throw, e: this.expr(s.argument) }, s);
      case 'TryStatement': {
        const block = this.block(s.block.body, s.block, []);
        let param = -1;
        let handler = -1;
        if (s.handler) {
          const h = s.handler;
          const names: Declared[] = h.param ? patternNames(h.param).map((id) => ({ name: id.name, kind: 'let' as const, at: id })) : [];
          handler = this.block(h.body.body, h.body, names, () => {
            if (h.param) param = this.pattern(h.param, true);
          });
        }
        const fin = s.finalizer ? this.block(s.finalizer.body, s.finalizer, []) : -1;
        return this.add({ k: K.Try, block, param, handler, fin, slots: 0 }, s);
      }
      case 'SwitchStatement': {
        const labels = this.takeLabels();
        const disc = this.expr(s.discriminant);
        const all = s.cases.flatMap((c: ES) => c.consequent);
        const slots = this.open(this.declaredIn(all));
        const tests: number[] = [];
        const starts: number[] = [];
        const body: number[] = [];
        for (const c of s.cases) {
          tests.push(c.test ? this.expr(c.test) : -1);
          starts.push(body.length);
          for (const st of c.consequent) body.push(this.stmt(st));
        }
        this.close(slots);
        return this.add({ k: K.Switch, disc, tests, starts, body, labels, slots }, s);
      }
      case 'LabeledStatement': {
        const labels = [...(this.pendingLabels ?? []), s.label.name];
        if (isLoop(s.body) || s.body.type === 'LabeledStatement' || s.body.type === 'SwitchStatement') {
          this.pendingLabels = labels;
          return this.stmt(s.body);
        }
        this.pendingLabels = null;
        const body = this.stmt(s.body);
        return this.add({ k: K.Labeled, labels, body, slots: 0 }, s);
      }
      case 'EmptyStatement':
        return this.empty(s);
      case 'FunctionDeclaration':
        this.problem(
          s,
          s.generator
            ? 'generator functions are not supported: use a for...of loop over an array'
            : `function declarations are not supported: put reusable work in a task (Task.run) or a child workflow (Workflow.run), or use an arrow function as the callback of an array method (${CALLBACKS})`,
        );
        return this.empty(s);
      case 'ClassDeclaration':
        this.problem(s, 'classes are not supported: a workflow holds data only; use object literals ({ ... })');
        return this.empty(s);
      case 'ImportDeclaration':
        this.problem(s, 'import is not supported: a workflow cannot load modules; run that code in a task (Task.run)');
        return this.empty(s);
      case 'ExportNamedDeclaration':
      case 'ExportDefaultDeclaration':
      case 'ExportAllDeclaration':
        this.problem(s, 'export is not supported: a workflow returns its result with `return`');
        return this.empty(s);
      case 'DebuggerStatement':
        this.problem(s, "'debugger' is not supported: remove it");
        return this.empty(s);
    }
    this.problem(s, `${s.type} is not supported`);
    return this.empty(s);
  }

  /** A block statement; `pre` are names bound before its statements (a catch parameter), `prelude` compiles them. */
  private block(stmts: ES[], at: ES, pre: Declared[], prelude?: () => void): number {
    const slots = this.open([...pre, ...this.declaredIn(stmts)]);
    prelude?.();
    const body = stmts.map((s) => this.stmt(s));
    this.close(slots);
    return this.add({ k: K.Block, body, slots }, at);
  }

  private declaration(s: ES, statement: boolean): number {
    if (s.kind === 'var') this.problem(s, "'var' is not supported: use const, or let for a variable you reassign");
    const decls = s.declarations.map((d: ES) => {
      const p = this.pattern(d.id, true);
      if (d.init?.type === 'AwaitExpression') {
        if (!statement) {
          this.problem(d.init, `${AWAIT_PLACES}; not in a for loop's header`);
          return { p, init: this.expr(d.init.argument), aw: false };
        }
        return { p, init: this.expr(d.init.argument), aw: true };
      }
      return { p, init: d.init ? this.expr(d.init) : -1, aw: false };
    });
    return this.add({ k: K.Decl, decls }, s);
  }

  private expressionStatement(s: ES): number {
    const e = s.expression;
    if (e.type === 'AwaitExpression') return this.add({ k: K.AwaitExpr, e: this.expr(e.argument) }, s);
    if (e.type === 'AssignmentExpression' && e.right.type === 'AwaitExpression') {
      if (e.operator === '&&=' || e.operator === '||=' || e.operator === '??=') {
        this.problem(
          e.right,
          `await cannot be the value of ${e.operator} (it may not run at all): use an if statement around \`x = await ...\``,
        );
      }
      const t = this.target(e.left, e.operator);
      return this.add({ k: K.AwaitAssign, op: e.operator, t, e: this.expr(e.right.argument) }, s);
    }
    return this.add({ k: K.Expr, e: this.expr(e) }, s);
  }

  // ---- patterns and targets -----------------------------------------------------------

  /** A binding pattern (`decl`: declared here) or an assignment pattern. */
  private pattern(p: ES, decl: boolean): number {
    switch (p.type) {
      case 'Identifier':
        return decl ? this.declaredVar(p) : this.assignedVar(p);
      case 'MemberExpression':
        if (decl) break;
        return this.member(p, K.PMember);
      case 'AssignmentPattern':
        return this.add({ k: K.PDefault, p: this.pattern(p.left, decl), d: this.expr(p.right) }, p);
      case 'ObjectPattern': {
        const props: PObjectProp[] = [];
        let rest = -1;
        for (const prop of p.properties) {
          if (prop.type === 'RestElement') {
            rest = this.pattern(prop.argument, decl);
            continue;
          }
          const name = prop.computed ? null : propertyName(prop.key);
          const key = prop.computed ? this.expr(prop.key) : -1;
          props.push({ name, key, p: this.pattern(prop.value, decl) });
        }
        return this.add({ k: K.PObject, props, rest }, p);
      }
      case 'ArrayPattern': {
        const elems: number[] = [];
        let rest = -1;
        for (const el of p.elements) {
          if (el === null) elems.push(-1);
          else if (el.type === 'RestElement') rest = this.pattern(el.argument, decl);
          else elems.push(this.pattern(el, decl));
        }
        return this.add({ k: K.PArray, elems, rest }, p);
      }
    }
    this.problem(p, `cannot assign to this ${p.type}`);
    return this.lit(undefined, p);
  }

  private declaredVar(id: ES): number {
    const found = this.lookup(id.name);
    if (found === undefined) throw new Error(`internal: '${id.name}' was not predeclared`);
    return this.add({ k: K.PVar, level: found.level, slot: found.b.slot, name: id.name }, id);
  }

  private assignedVar(id: ES): number {
    const found = this.lookup(id.name);
    if (found === undefined) {
      if (this.isGlobal(id.name, NAMESPACES) || this.isGlobal(id.name, GLOBAL_FUNCTIONS) || this.isGlobal(id.name, GLOBAL_CONSTANTS)) {
        this.problem(id, `cannot assign to the built-in '${id.name}'`);
      } else this.problem(id, `'${id.name}' is not declared: declare it first with let ${id.name} = ...`);
      return this.lit(undefined, id);
    }
    const b = found.b;
    if (b.kind === 'const')
      this.problem(id, `cannot assign to '${id.name}': it is a const (declared at ${b.line}:${b.col}); declare it with let to reassign it`);
    if (b.kind === 'builtin')
      this.problem(id, `cannot assign to the built-in '${id.name}'; copy it into a variable (let ${id.name.toLowerCase()} = ${id.name})`);
    return this.add({ k: K.PVar, level: found.level, slot: b.slot, name: id.name }, id);
  }

  /** The left side of `=` (any pattern) or of a compound assignment / update (a variable or member). */
  private target(left: ES, op: string): number {
    if (op !== '=' && left.type !== 'Identifier' && left.type !== 'MemberExpression') {
      this.problem(left, `cannot use ${op} on a destructuring pattern`);
      return this.lit(undefined, left);
    }
    return this.pattern(left, false);
  }

  private member(e: ES, k: K.Member | K.PMember | K.Delete): number {
    const o = this.expr(e.object);
    const name = e.computed ? null : e.property.name;
    const key = e.computed ? this.expr(e.property) : -1;
    // Errors here ("cannot read 'id' of null") point at the property.
    if (k === K.Member) return this.add({ k, o, name, key, opt: !!e.optional }, e.property);
    return this.add({ k, o, name, key }, e.property);
  }

  // ---- expressions --------------------------------------------------------------------

  private exprs(list: ES[]): { ids: number[]; spread: boolean } {
    let spread = false;
    const ids = list.map((a) => {
      if (a === null) return -1;
      if (a.type === 'SpreadElement') {
        spread = true;
        return this.add({ k: K.Spread, e: this.expr(a.argument) }, a);
      }
      return this.expr(a);
    });
    return { ids, spread };
  }

  private expr(e: ES): number {
    switch (e.type) {
      case 'Literal':
        if (e.regex) {
          this.problem(
            e,
            'regular expressions are not supported: use string methods (includes, startsWith, split, replaceAll), or do the matching in a task',
          );
          return this.lit(undefined, e);
        }
        if (e.bigint !== undefined) {
          this.problem(e, 'BigInt literals are not supported: workflow values are JSON; use a number or a string');
          return this.lit(undefined, e);
        }
        return this.lit(e.value, e);
      case 'Identifier':
        return this.identifier(e);
      case 'TemplateLiteral': {
        const quasis = e.quasis.map((q: ES) => q.value.cooked as string);
        const exprs = e.expressions.map((x: ES) => this.expr(x));
        return this.add({ k: K.Tpl, quasis, exprs }, e);
      }
      case 'ArrayExpression': {
        const { ids, spread } = this.exprs(e.elements);
        const items = ids.map((id, i) => (id < 0 ? this.lit(undefined, e.elements[i] ?? e) : id));
        return this.add({ k: K.Arr, items, spread }, e);
      }
      case 'ObjectExpression': {
        const props: ObjProp[] = [];
        for (const p of e.properties) {
          if (p.type === 'SpreadElement') {
            props.push({ key: null, ck: -1, v: this.expr(p.argument), spread: true });
            continue;
          }
          if (p.kind !== 'init' || p.method) {
            this.problem(p, 'methods, getters and setters in object literals are not supported: objects hold data only');
            continue;
          }
          const key = p.computed ? null : propertyName(p.key);
          const ck = p.computed ? this.expr(p.key) : -1;
          props.push({ key, ck, v: this.expr(p.value), spread: false });
        }
        return this.add({ k: K.Obj, props }, e);
      }
      case 'MemberExpression': {
        if (e.object.type === 'Identifier' && this.isGlobal(e.object.name, NAMESPACES)) {
          const ns = NAMESPACES[e.object.name];
          const name = e.computed ? null : e.property.name;
          if (name !== null && own(ns.constants, name)) return this.lit(ns.constants[name], e);
          if (name !== null && own(ns.functions, name))
            this.problem(e, `${e.object.name}.${name} can only be called: ${e.object.name}.${name}(...)`);
          else this.problem(e.property, this.unknownMember(e.object.name, name));
          return this.lit(undefined, e);
        }
        if (e.object.type === 'Super') {
          this.problem(e.object, "'super' is not supported");
          return this.lit(undefined, e);
        }
        return this.member(e, K.Member);
      }
      case 'ChainExpression':
        return this.add({ k: K.Chain, e: this.expr(e.expression) }, e);
      case 'CallExpression':
        return this.call(e);
      case 'NewExpression':
        if (e.callee.type === 'Identifier' && ERROR_CONSTRUCTORS.has(e.callee.name) && this.lookup(e.callee.name) === undefined) {
          const { ids, spread } = this.exprs(e.arguments);
          return this.add({ k: K.NewError, ctor: e.callee.name, args: ids, spread }, e);
        }
        this.problem(
          e,
          e.callee.type === 'Identifier' && e.callee.name === 'Date'
            ? "'new Date' is not supported: use Date.now() (milliseconds since the epoch) and Date.parse(isoString); Timer.until takes either"
            : "'new' is not supported (except new Error(message)): build data with object literals ({ ... })",
        );
        this.exprs(e.arguments);
        return this.lit(undefined, e);
      case 'UnaryExpression':
        if (e.operator === 'delete') {
          if (e.argument.type !== 'MemberExpression' || e.argument.optional) {
            this.problem(e, 'delete only works on a property: delete obj.key');
            return this.lit(true, e);
          }
          return this.member(e.argument, K.Delete);
        }
        return this.add({ k: K.Unary, op: e.operator, a: this.expr(e.argument) }, e);
      case 'BinaryExpression':
        if (e.operator === 'instanceof') {
          const v = this.expr(e.left);
          if (e.right.type === 'Identifier' && ERROR_CONSTRUCTORS.has(e.right.name))
            return this.add({ k: K.InstanceOf, v, ctor: e.right.name }, e);
          this.problem(
            e.right,
            `instanceof is only supported with ${[...ERROR_CONSTRUCTORS].join(', ')}: check a property instead (Array.isArray(x), typeof x === "object")`,
          );
          return this.lit(false, e);
        }
        if (e.left.type === 'PrivateIdentifier') {
          this.problem(e.left, 'private names are not supported');
          return this.lit(false, e);
        }
        return this.add({ k: K.Binary, op: e.operator, l: this.expr(e.left), r: this.expr(e.right) }, e);
      case 'LogicalExpression':
        return this.add({ k: K.Logical, op: e.operator, l: this.expr(e.left), r: this.expr(e.right) }, e);
      case 'ConditionalExpression':
        return this.add({ k: K.Cond, t: this.expr(e.test), c: this.expr(e.consequent), a: this.expr(e.alternate) }, e);
      case 'AssignmentExpression': {
        if (e.right.type === 'AwaitExpression') this.problem(e.right, AWAIT_PLACES);
        const t = this.target(e.left, e.operator);
        const v = this.expr(e.right);
        return this.add({ k: K.Assign, op: e.operator, t, v }, e);
      }
      case 'UpdateExpression':
        return this.add({ k: K.Update, op: e.operator, prefix: e.prefix, t: this.target(e.argument, e.operator) }, e);
      case 'SequenceExpression':
        return this.add({ k: K.Seq, es: e.expressions.map((x: ES) => this.expr(x)) }, e);
      case 'ArrowFunctionExpression':
        this.problem(e, ARROW_ONLY);
        return this.lit(undefined, e);
      case 'AwaitExpression':
        this.problem(e, AWAIT_PLACES);
        this.expr(e.argument);
        return this.lit(undefined, e);
      case 'ThisExpression':
        this.problem(e, "'this' is not supported: a workflow has no object; use a variable");
        return this.lit(undefined, e);
      case 'FunctionExpression':
        this.problem(
          e,
          e.generator
            ? 'generator functions are not supported: use a for...of loop over an array'
            : `function expressions are not supported: use an arrow function as the callback of an array method (${CALLBACKS})`,
        );
        return this.lit(undefined, e);
      case 'ClassExpression':
        this.problem(e, 'classes are not supported: a workflow holds data only; use object literals ({ ... })');
        return this.lit(undefined, e);
      case 'TaggedTemplateExpression':
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the message shows the script's own syntax.
        this.problem(e, 'tagged templates are not supported: use a plain template literal `...${x}...`');
        return this.lit(undefined, e);
      case 'ImportExpression':
        this.problem(e, 'import() is not supported: a workflow cannot load modules; run that code in a task (Task.run)');
        return this.lit(undefined, e);
      case 'MetaProperty':
        this.problem(e, `${e.meta.name}.${e.property.name} is not supported`);
        return this.lit(undefined, e);
    }
    this.problem(e, `${e.type} is not supported`);
    return this.lit(undefined, e);
  }

  private identifier(e: ES): number {
    const found = this.lookup(e.name);
    if (found !== undefined) {
      if (found.b.kind === 'refused') return this.lit(undefined, e); // already reported at its declaration
      return this.add({ k: K.Var, level: found.level, slot: found.b.slot, name: e.name }, e);
    }
    if (own(GLOBAL_CONSTANTS, e.name)) return this.lit(GLOBAL_CONSTANTS[e.name], e);
    if (own(NAMESPACES, e.name)) {
      this.problem(
        e,
        `${e.name} can only be used as ${e.name}.name(...)${Object.keys(NAMESPACES[e.name].constants).length > 0 ? ` or ${e.name}.CONSTANT` : ''}`,
      );
    } else if (own(GLOBAL_FUNCTIONS, e.name) || ERROR_CONSTRUCTORS.has(e.name)) {
      this.problem(e, `${e.name} can only be called: ${e.name}(...)`);
    } else this.problem(e, `'${e.name}' is not defined`);
    return this.lit(undefined, e);
  }

  private unknownMember(ns: string, name: string | null): string {
    const fns = Object.keys(NAMESPACES[ns].functions);
    const consts = Object.keys(NAMESPACES[ns].constants);
    const has = [...fns.map((f) => `${f}()`), ...consts].join(', ');
    return `${ns}${name === null ? '[...]' : `.${name}`} is not supported; ${ns} has: ${has}`;
  }

  private call(e: ES): number {
    const callee = e.callee;
    if (callee.type === 'Identifier') {
      const found = this.lookup(callee.name);
      if (found === undefined && own(GLOBAL_FUNCTIONS, callee.name)) {
        const { ids, spread } = this.exprs(e.arguments);
        return this.add({ k: K.Builtin, f: GLOBAL_FUNCTIONS[callee.name], name: callee.name, args: ids, spread }, e);
      }
      if (found === undefined && ERROR_CONSTRUCTORS.has(callee.name)) {
        const { ids, spread } = this.exprs(e.arguments);
        return this.add({ k: K.NewError, ctor: callee.name, args: ids, spread }, e);
      }
      this.exprs(e.arguments);
      if (found === undefined) {
        if (own(NAMESPACES, callee.name))
          this.problem(callee, `${callee.name} cannot be called itself: call one of its functions, ${callee.name}.name(...)`);
        else
          this.problem(
            callee,
            `'${callee.name}' is not defined (functions cannot be declared in a workflow: use a task, or an arrow callback of an array method)`,
          );
      } else if (found.b.kind !== 'refused') {
        this.problem(callee, `'${callee.name}' is a variable, not a function: only built-in functions and methods can be called`);
      }
      return this.lit(undefined, e);
    }
    if (callee.type === 'MemberExpression' && callee.object.type === 'Identifier' && this.isGlobal(callee.object.name, NAMESPACES)) {
      const ns = callee.object.name;
      const name = callee.computed ? null : callee.property.name;
      const { ids, spread } = this.exprs(e.arguments);
      if (name === null || !own(NAMESPACES[ns].functions, name)) {
        this.problem(callee.property, this.unknownMember(ns, name));
        return this.lit(undefined, e);
      }
      return this.add({ k: K.Builtin, f: NAMESPACES[ns].functions[name], name: `${ns}.${name}`, args: ids, spread }, e);
    }
    if (callee.type === 'MemberExpression' && callee.object.type !== 'Super') {
      const o = this.expr(callee.object);
      const name = callee.computed ? null : callee.property.name;
      const key = callee.computed ? this.expr(callee.property) : -1;
      const argList: ES[] = e.arguments;
      let spread = false;
      const args = argList.map((a, i) => {
        if (a.type === 'ArrowFunctionExpression' && i === 0 && name !== null && CALLBACK_METHODS.has(name)) return this.arrow(a);
        if (a.type === 'SpreadElement') {
          spread = true;
          return this.add({ k: K.Spread, e: this.expr(a.argument) }, a);
        }
        return this.expr(a);
      });
      return this.add({ k: K.Call, o, name, key, args, spread, optMember: !!callee.optional, optCall: !!e.optional }, callee.property);
    }
    this.exprs(e.arguments);
    if (callee.type === 'ArrowFunctionExpression' || callee.type === 'FunctionExpression') this.problem(callee, ARROW_ONLY);
    else this.problem(callee, 'only built-in functions and methods can be called');
    return this.lit(undefined, e);
  }

  private arrow(e: ES): number {
    if (e.async)
      this.problem(
        e,
        'async callbacks are not supported (a callback cannot await): start the work in the callback, items.map((i) => Task.run(...)), and await Promise.all(...) of the result',
      );
    const id = this.nodes.length;
    this.nodes.push(null as unknown as Node);
    const names: Declared[] = [];
    for (const p of e.params) for (const n of patternNames(p)) names.push({ name: n.name, kind: 'let', at: n });
    const level = this.scopes.length;
    const slots = this.open(names);
    const params: number[] = [];
    let rest = -1;
    for (const p of e.params) {
      if (p.type === 'RestElement') rest = this.pattern(p.argument, true);
      else params.push(this.pattern(p, true));
    }
    this.arrowDepth++;
    const savedLabels = this.pendingLabels;
    this.pendingLabels = null;
    const exprBody = e.body.type !== 'BlockStatement';
    const body = exprBody ? this.expr(e.body) : this.block(e.body.body, e.body, []);
    this.pendingLabels = savedLabels;
    this.arrowDepth--;
    this.close(slots);
    this.nodes[id] = shaped({
      k: K.Arrow,
      params,
      rest,
      body,
      exprBody,
      level,
      slots,
      closure: new Closure(id),
      line: e.loc.start.line,
      col: e.loc.start.column + 1,
    });
    return id;
  }
}

/**
 * Every node gets the same object layout (all fields, in one order), whatever its kind: the
 * interpreter's `switch (node.k)` and field reads then see one hidden class instead of forty,
 * which V8 serves from a monomorphic inline cache (measured: a third less time per statement).
 */
class NodeLayout {
  k = 0;
  line = 0;
  col = 0;
  body: unknown = -1;
  slots = 0;
  e = -1;
  op = '';
  t = -1;
  decls: unknown = null;
  test = -1;
  cons = -1;
  alt = -1;
  labels: unknown = null;
  init = -1;
  update = -1;
  p = -1;
  decl = false;
  right = -1;
  label: unknown = null;
  aw = false;
  inArrow = false;
  block = -1;
  param = -1;
  handler = -1;
  fin = -1;
  disc = -1;
  tests: unknown = null;
  starts: unknown = null;
  v: unknown = undefined;
  level = 0;
  slot = 0;
  name: unknown = null;
  items: unknown = null;
  spread = false;
  props: unknown = null;
  quasis: unknown = null;
  exprs: unknown = null;
  o = -1;
  key = -1;
  opt = false;
  args: unknown = null;
  optMember = false;
  optCall = false;
  f: unknown = null;
  ctor = '';
  a = -1;
  l = -1;
  r = -1;
  c = -1;
  prefix = false;
  es: unknown = null;
  params: unknown = null;
  rest = -1;
  exprBody = false;
  closure: unknown = null;
  d = -1;
  elems: unknown = null;
}

function shaped(fields: Record<string, unknown>): Node {
  return Object.assign(new NodeLayout(), fields) as unknown as Node;
}

function isLoop(s: ES): boolean {
  return (
    s.type === 'WhileStatement' ||
    s.type === 'DoWhileStatement' ||
    s.type === 'ForStatement' ||
    s.type === 'ForOfStatement' ||
    s.type === 'ForInStatement'
  );
}

function propertyName(key: ES): string {
  if (key.type === 'Identifier') return key.name;
  return String(key.value);
}

/** The identifiers a binding pattern declares. */
function patternNames(p: ES): ES[] {
  switch (p.type) {
    case 'Identifier':
      return [p];
    case 'AssignmentPattern':
      return patternNames(p.left);
    case 'RestElement':
      return patternNames(p.argument);
    case 'ObjectPattern':
      return p.properties.flatMap((prop: ES) => patternNames(prop.type === 'RestElement' ? prop : prop.value));
    case 'ArrayPattern':
      return p.elements.filter((el: ES) => el !== null).flatMap((el: ES) => patternNames(el));
  }
  return [];
}
