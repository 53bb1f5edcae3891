/**
 * The interpreter: runs compiled .flow statements on an explicit frame stack until the script
 * returns, throws, or awaits something not yet settled.
 *
 * Why a frame stack rather than JavaScript recursion: at an await the whole position (which
 * loop iteration, which try block, which finally is pending with which completion) must become
 * data that survives the process. Statements that contain other statements (blocks, loops, try,
 * switch) push a frame {n: node, s: phase or index, x, y}; simple statements run inline. An
 * await that cannot be satisfied pushes an await frame and stops; resuming is re-entering the
 * loop with the top frame. Expressions never suspend (await is refused inside them at compile
 * time), so they are evaluated by plain recursion, which is fast.
 *
 * break/continue/return/throw are completions that unwind frames until a loop, switch, label,
 * catch or finally takes them; a finally keeps the pending completion in its frame, so even
 * `return await x` inside `try { } finally { await cleanup }` resumes correctly.
 */
import {
  K,
  scopeSlots,
  type ArrowNode,
  type AwaitAssignNode,
  type DeclNode,
  type Node,
  type PVarNode,
  type TryNode,
  type VarNode,
} from './nodes.js';
import {
  type Closure,
  Combinator,
  ErrorValue,
  FlowThrow,
  Handle,
  MAX_LENGTH,
  SHORT,
  TDZ,
  add,
  arrayIndex,
  compare,
  defineOwn,
  describe,
  isAwaitable,
  iterableItems,
  looseEq,
  own,
  ownKeys,
  toKey,
  toNum,
  toStr,
  typeOf,
} from './values.js';
import { settle, type Effect, type InboxSignal } from './durable.js';
import { ARRAY_METHODS, NUMBER_METHODS, STRING_METHODS, type Method } from './builtins.js';

/** One entry of the statement stack: node, phase or index, and two per-kind slots. */
export interface Frame {
  n: number;
  s: number;
  x: unknown;
  y: unknown;
}

export const BREAK = 0;
export const CONTINUE = 1;
export const RETURN = 2;
export const THROW = 3;

/** An abrupt completion travelling up the frames (kept in a finally's frame while it runs). */
export interface Completion {
  t: number;
  v: unknown;
  l: string | null;
}

/** Stops the activation outright (the step budget); scripts cannot catch it. */
export class FlowAbort {
  constructor(readonly error: ErrorValue) {}
}

export interface MachineOptions {
  now: number;
  random: () => number;
  maxSteps: number;
  inbox: InboxSignal[];
}

export type RunResult =
  | { status: 'suspended'; awaiting: unknown }
  | { status: 'completed'; value: unknown }
  | { status: 'failed'; error: unknown; abort: boolean };

export class Machine {
  env: unknown[][] = [];
  frames: Frame[] = [];
  /** Last durable call sequence number used. */
  seq = 0;
  readonly now: number;
  readonly random: () => number;
  readonly effects: Effect[] = [];
  readonly inbox: InboxSignal[];
  /** Inbox signals consumed during this activation. */
  readonly taken = new Set<InboxSignal>();
  steps = 0;
  readonly maxSteps: number;

  /** Set when an await could not be satisfied; the top frame is its await frame. */
  private suspended = false;
  /** A completion that unwound past `base` (the end of the script or of a callback body). */
  private escaped: Completion | null = null;
  private base = 0;
  /** The statement being run, for errors raised natively (an over-long string) and a result that is not JSON. */
  cur = 0;
  /** The value of the last await that settled. */
  private awaited: unknown = undefined;

  constructor(
    readonly nodes: Node[],
    readonly fileName: string,
    options: MachineOptions,
  ) {
    this.now = options.now;
    this.random = options.random;
    this.maxSteps = options.maxSteps;
    this.inbox = options.inbox;
  }

  /** `order.flow:9:14` for node `at`. */
  where(at: number): string {
    const n = this.nodes[at];
    return `${this.fileName}:${n.line}:${n.col}`;
  }

  /** Throws a script-catchable error made at node `at`. */
  fail(name: string, at: number, message: string): never {
    throw new FlowThrow(new ErrorValue(name, message, this.where(at)));
  }

  run(): RunResult {
    this.base = 0;
    try {
      this.drive();
    } catch (err) {
      if (err instanceof FlowAbort) return { status: 'failed', error: err.error, abort: true };
      throw err;
    }
    if (this.suspended) return { status: 'suspended', awaiting: this.frames[this.frames.length - 1].x };
    const c = this.escaped;
    if (c === null) return { status: 'completed', value: undefined };
    if (c.t === RETURN) return { status: 'completed', value: c.v };
    return { status: 'failed', error: c.v, abort: false };
  }

  private drive(): void {
    const frames = this.frames;
    while (frames.length > this.base && !this.suspended && this.escaped === null) {
      const f = frames[frames.length - 1];
      try {
        this.step(f);
      } catch (err) {
        this.unwind({ t: THROW, v: this.caught(err), l: null });
      }
    }
  }

  /** The script value of a JavaScript exception; a native one (string too long) becomes a script error here. */
  private caught(err: unknown): unknown {
    if (err instanceof FlowThrow) return err.value;
    if (err instanceof FlowAbort) throw err;
    if (err instanceof Error) {
      const name =
        err instanceof RangeError
          ? 'RangeError'
          : err instanceof TypeError
            ? 'TypeError'
            : err instanceof SyntaxError
              ? 'SyntaxError'
              : 'Error';
      return new ErrorValue(name, err.message, this.where(this.cur));
    }
    throw err;
  }

  private overBudget(at: number): never {
    throw new FlowAbort(
      new ErrorValue(
        'FlowStepLimitError',
        `the workflow ran ${this.maxSteps} steps without awaiting (an endless loop?); a workflow must await (a task, a timer) at least every ${this.maxSteps} steps`,
        this.where(at),
      ),
    );
  }

  // ---- frames -------------------------------------------------------------------------

  private push(id: number, slots: number): Frame {
    const f: Frame = { n: id, s: 0, x: undefined, y: undefined };
    this.frames.push(f);
    if (slots > 0) this.env.push(newScope(slots));
    return f;
  }

  private pop(): void {
    const f = this.frames.pop()!;
    if (scopeSlots(this.nodes[f.n]) > 0) this.env.pop();
  }

  /** Starts statement `id`: simple ones run here, compound ones push a frame. */
  private enter(id: number): void {
    if (++this.steps > this.maxSteps) this.overBudget(id);
    this.cur = id;
    const n = this.nodes[id];
    switch (n.k) {
      case K.Expr:
        this.ev(n.e);
        return;
      case K.Decl:
        this.declare(id, n, 0);
        return;
      case K.Block:
        if (n.body.length > 0) this.push(id, n.slots);
        return;
      case K.If: {
        const branch = this.ev(n.test) ? n.cons : n.alt;
        if (branch >= 0) this.enter(branch);
        return;
      }
      case K.While:
      case K.DoWhile:
      case K.Try:
      case K.Labeled:
        this.push(id, 0);
        return;
      case K.For:
        this.push(id, n.slots);
        if (n.init >= 0) this.enter(n.init);
        return;
      case K.ForOf: {
        const f = this.push(id, n.slots);
        const v = this.ev(n.right);
        const items = iterableItems(v);
        if (items === undefined) {
          this.fail(
            'TypeError',
            n.right,
            `${describe(v)} is not iterable: for...of walks arrays and strings (use Object.keys, Object.values or Object.entries for an object)`,
          );
        }
        f.x = items;
        return;
      }
      case K.ForIn: {
        const f = this.push(id, n.slots);
        const v = this.ev(n.right);
        if (isAwaitable(v)) this.fail('TypeError', n.right, `cannot walk the keys of ${describe(v)}; await it first`);
        f.x = ownKeys(v);
        f.y = v;
        return;
      }
      case K.Switch: {
        const d = this.ev(n.disc);
        const f = this.push(id, n.slots);
        let start = -1;
        for (let i = 0; i < n.tests.length; i++) {
          const t = n.tests[i];
          if (t >= 0 && this.ev(t) === d) {
            start = n.starts[i];
            break;
          }
        }
        if (start < 0) {
          const def = n.tests.indexOf(-1);
          if (def >= 0) start = n.starts[def];
        }
        if (start < 0) this.pop();
        else f.s = start;
        return;
      }
      case K.Break:
      case K.Continue:
        this.unwind({ t: n.k === K.Break ? BREAK : CONTINUE, v: undefined, l: n.label });
        return;
      case K.Return: {
        let v = n.e >= 0 ? this.ev(n.e) : undefined;
        // As in an async function, returning a pending handle returns what it settles to.
        if (isAwaitable(v) && !n.inArrow) {
          if (!this.awaitValue(id, 0, v, undefined)) return;
          v = this.awaited;
        }
        this.unwind({ t: RETURN, v, l: null });
        return;
      }
      case K.Throw:
        throw new FlowThrow(this.ev(n.e));
      case K.Empty:
        return;
      case K.AwaitExpr:
        this.awaitValue(id, 0, this.ev(n.e), undefined);
        return;
      case K.AwaitAssign: {
        const y = this.assignPrelude(n);
        if (this.awaitValue(id, 0, this.ev(n.e), y)) this.assignAwaited(n, this.awaited, y);
        return;
      }
    }
    throw new Error(`internal: node ${id} (kind ${K[n.k]}) is not a statement`);
  }

  /** Advances the top frame by one step. */
  private step(f: Frame): void {
    this.cur = f.n;
    const n = this.nodes[f.n];
    switch (n.k) {
      case K.Program:
      case K.Block:
      case K.Switch:
        if (f.s < n.body.length) this.enter(n.body[f.s++]);
        else this.pop();
        return;
      case K.While:
        if (this.ev(n.test)) this.enter(n.body);
        else this.pop();
        return;
      case K.DoWhile:
        if (f.s === 0 || this.ev(n.test)) {
          f.s = 1;
          this.enter(n.body);
        } else this.pop();
        return;
      case K.For:
        if (f.s === 1 && n.update >= 0) this.ev(n.update);
        f.s = 1;
        if (n.test < 0 || this.ev(n.test)) this.enter(n.body);
        else this.pop();
        return;
      case K.ForOf: {
        const items = f.x as unknown[];
        if (f.s >= items.length) {
          this.pop();
          return;
        }
        this.bind(n.p, items[f.s++], n.decl);
        this.enter(n.body);
        return;
      }
      case K.ForIn: {
        const keys = f.x as string[];
        while (f.s < keys.length) {
          const key = keys[f.s++];
          if (stillHasKey(f.y, key)) {
            this.bind(n.p, key, n.decl);
            this.enter(n.body);
            return;
          }
        }
        this.pop();
        return;
      }
      case K.Labeled:
        if (f.s === 0) {
          f.s = 1;
          this.enter(n.body);
        } else this.pop();
        return;
      case K.Try:
        this.stepTry(f, n);
        return;
      case K.AwaitExpr:
      case K.AwaitAssign:
      case K.Decl:
      case K.Return:
        this.resumeAwait(f, n);
        return;
    }
    throw new Error(`internal: no frame for node kind ${K[n.k]}`);
  }

  /**
   * Try phases: 0 not started, 1 in the block, 2 catch to start (x: the thrown value),
   * 3 in the catch, 4 finally to start (x: pending completion or null), 5 in the finally.
   */
  private stepTry(f: Frame, n: TryNode): void {
    switch (f.s) {
      case 0:
        f.s = 1;
        this.enter(n.block);
        return;
      case 1:
      case 3:
        if (n.fin >= 0) {
          f.s = 4;
          f.x = null;
        } else this.pop();
        return;
      case 2: {
        const thrown = f.x;
        f.x = undefined;
        f.s = 3;
        this.push(n.handler, scopeSlots(this.nodes[n.handler]));
        if (n.param >= 0) this.bind(n.param, thrown, true);
        return;
      }
      case 4:
        f.s = 5;
        this.enter(n.fin);
        return;
      default: {
        const pending = f.x as Completion | null;
        this.pop();
        if (pending !== null) this.unwind(pending);
      }
    }
  }

  /** Pops frames until one takes the completion; past `base` it escapes (script or callback end). */
  private unwind(c: Completion): void {
    const frames = this.frames;
    while (frames.length > this.base) {
      const f = frames[frames.length - 1];
      const n = this.nodes[f.n];
      switch (n.k) {
        case K.While:
        case K.DoWhile:
        case K.For:
        case K.ForOf:
        case K.ForIn:
          if (c.t === BREAK && (c.l === null || hasLabel(n.labels, c.l))) {
            this.pop();
            return;
          }
          if (c.t === CONTINUE && (c.l === null || hasLabel(n.labels, c.l))) return;
          break;
        case K.Switch:
          if (c.t === BREAK && (c.l === null || hasLabel(n.labels, c.l))) {
            this.pop();
            return;
          }
          break;
        case K.Labeled:
          if (c.t === BREAK && c.l !== null && n.labels.includes(c.l)) {
            this.pop();
            return;
          }
          break;
        case K.Try:
          if (f.s === 1 && c.t === THROW && n.handler >= 0) {
            f.s = 2;
            f.x = c.v;
            return;
          }
          if ((f.s === 1 || f.s === 3) && n.fin >= 0) {
            f.s = 4;
            f.x = c;
            return;
          }
          break;
      }
      this.pop();
    }
    this.escaped = c;
  }

  // ---- await --------------------------------------------------------------------------

  /**
   * Awaits `v` at statement `id`: true with `awaited` set if it is settled now (a rejection
   * throws), false after pushing an await frame that the next activation resumes.
   */
  private awaitValue(id: number, s: number, v: unknown, y: unknown): boolean {
    if (!isAwaitable(v)) {
      this.awaited = v;
      return true;
    }
    const r = settle(this, v, true, null);
    if (r === null) {
      this.frames.push({ n: id, s, x: v, y });
      this.suspended = true;
      return false;
    }
    if (!r.ok) throw new FlowThrow(this.located(r.value, id));
    this.awaited = r.value;
    return true;
  }

  private resumeAwait(f: Frame, n: Node): void {
    const r = settle(this, f.x, true, null);
    if (r === null) {
      this.suspended = true;
      return;
    }
    this.pop();
    if (!r.ok) throw new FlowThrow(this.located(r.value, f.n));
    const v = r.value;
    switch (n.k) {
      case K.AwaitExpr:
        return;
      case K.AwaitAssign:
        this.assignAwaited(n, v, f.y);
        return;
      case K.Decl:
        this.bind(n.decls[f.s].p, v, true);
        this.declare(f.n, n, f.s + 1);
        return;
      case K.Return:
        this.unwind({ t: RETURN, v, l: null });
        return;
    }
  }

  /** A child's error gets the place of the await it is thrown at. */
  private located(err: unknown, at: number): unknown {
    if (err instanceof ErrorValue && err.location === undefined) err.location = this.where(at);
    return err;
  }

  private declare(id: number, n: DeclNode, from: number): void {
    const decls = n.decls;
    for (let i = from; i < decls.length; i++) {
      const d = decls[i];
      if (d.aw) {
        if (!this.awaitValue(id, i, this.ev(d.init), undefined)) return;
        this.bind(d.p, this.awaited, true);
      } else this.bind(d.p, d.init >= 0 ? this.ev(d.init) : undefined, true);
    }
  }

  /** What `t op= await e` evaluates before the await: the target object and key, the old value. */
  private assignPrelude(n: AwaitAssignNode): unknown {
    const t = this.nodes[n.t];
    if (t.k === K.PMember) {
      const o = this.ev(t.o);
      const key = t.name ?? toKey(this.ev(t.key));
      return n.op === '=' ? [o, key] : [o, key, this.getProp(o, key, n.t)];
    }
    if (t.k === K.PVar && n.op !== '=') return [this.readVar(t)];
    return undefined;
  }

  private assignAwaited(n: AwaitAssignNode, v: unknown, y: unknown): void {
    const t = this.nodes[n.t];
    const parts = y as unknown[];
    if (n.op === '=') {
      if (t.k === K.PMember) this.setProp(parts[0], parts[1] as string | number, v, n.t);
      else this.bind(n.t, v, false);
      return;
    }
    const op = n.op.slice(0, -1);
    if (t.k === K.PMember) this.setProp(parts[0], parts[1] as string | number, this.binary(op, parts[2], v, n.t), n.t);
    else this.writeVar(t as PVarNode, this.binary(op, parts[0], v, n.t));
  }

  // ---- variables and patterns ---------------------------------------------------------

  private readVar(n: VarNode | PVarNode): unknown {
    const v = this.env[n.level][n.slot];
    if (v === TDZ) this.fail('ReferenceError', this.nodeId(n), `cannot use '${n.name}' before its declaration`);
    return v;
  }

  private writeVar(n: PVarNode, v: unknown): void {
    const scope = this.env[n.level];
    if (scope[n.slot] === TDZ) this.fail('ReferenceError', this.nodeId(n), `cannot assign to '${n.name}' before its declaration`);
    scope[n.slot] = v;
  }

  /** Node ids are only needed on error paths, so nodes do not carry their own id. */
  private nodeId(n: Node): number {
    return this.nodes.indexOf(n);
  }

  /** Binds a pattern: `decl` for declarations (const/let/params), else assignment. */
  private bind(id: number, v: unknown, decl: boolean): void {
    const p = this.nodes[id];
    switch (p.k) {
      case K.PVar:
        if (decl) this.env[p.level][p.slot] = v;
        else this.writeVar(p, v);
        return;
      case K.PMember: {
        const o = this.ev(p.o);
        this.setProp(o, p.name ?? toKey(this.ev(p.key)), v, id);
        return;
      }
      case K.PDefault:
        this.bind(p.p, v === undefined ? this.ev(p.d) : v, decl);
        return;
      case K.PObject: {
        if (v === null || v === undefined) this.fail('TypeError', id, `cannot destructure ${describe(v)}`);
        const used: string[] = [];
        for (const prop of p.props) {
          const key = prop.name ?? toStr(toKey(this.ev(prop.key)));
          used.push(key);
          this.bind(prop.p, this.getProp(v, key, id), decl);
        }
        if (p.rest >= 0) {
          const rest: Record<string, unknown> = {};
          for (const key of ownKeys(v)) if (!used.includes(key)) defineOwn(rest, key, this.getProp(v, key, id));
          this.bind(p.rest, rest, decl);
        }
        return;
      }
      case K.PArray: {
        const items = iterableItems(v);
        if (items === undefined) this.fail('TypeError', id, `cannot destructure ${describe(v)} as an array: it is not iterable`);
        for (let i = 0; i < p.elems.length; i++) if (p.elems[i] >= 0) this.bind(p.elems[i], items[i], decl);
        if (p.rest >= 0) this.bind(p.rest, items.slice(p.elems.length), decl);
        return;
      }
    }
    throw new Error(`internal: node kind ${K[p.k]} is not a pattern`);
  }

  // ---- properties ---------------------------------------------------------------------

  getProp(o: unknown, key: string | number, at: number): unknown {
    if (typeof o === 'object' && o !== null) {
      if (Array.isArray(o)) {
        if (key === 'length') return o.length;
        const i = arrayIndex(key);
        return i >= 0 ? o[i] : undefined;
      }
      if (o instanceof Handle || o instanceof Combinator) {
        this.fail('TypeError', at, `cannot read '${key}' of ${describe(o)}: await it first`);
      }
      const k = typeof key === 'string' ? key : String(key);
      return own(o, k) ? (o as Record<string, unknown>)[k] : undefined;
    }
    if (typeof o === 'string') {
      if (key === 'length') return o.length;
      const i = arrayIndex(key);
      return i >= 0 ? o[i] : undefined;
    }
    if (o === null || o === undefined) this.fail('TypeError', at, `cannot read '${key}' of ${o}`);
    return undefined;
  }

  setProp(o: unknown, key: string | number, v: unknown, at: number): void {
    if (typeof o === 'object' && o !== null) {
      if (Array.isArray(o)) {
        if (key === 'length') {
          const len = toNum(v);
          if (!Number.isInteger(len) || len < 0 || len > MAX_LENGTH) this.fail('RangeError', at, `invalid array length ${describe(v)}`);
          while (o.length < len) o.push(undefined);
          o.length = len;
          return;
        }
        const i = arrayIndex(key);
        if (i < 0)
          this.fail(
            'TypeError',
            at,
            `cannot set '${key}' on an array: arrays hold elements at indexes 0, 1, ...; use an object for named fields`,
          );
        if (i > o.length) {
          if (i > MAX_LENGTH) this.fail('RangeError', at, `array index ${i} is too large (at most ${MAX_LENGTH})`);
          // No holes: they would not survive saving the state as JSON.
          while (o.length < i) o.push(undefined);
        }
        o[i] = v;
        return;
      }
      if (o instanceof Handle || o instanceof Combinator) this.fail('TypeError', at, `cannot set '${key}' on ${describe(o)}`);
      defineOwn(o as Record<string, unknown>, typeof key === 'string' ? key : String(key), v);
      return;
    }
    this.fail('TypeError', at, `cannot set '${key}' on ${describe(o)}`);
  }

  // ---- expressions --------------------------------------------------------------------

  ev(id: number): unknown {
    const n = this.nodes[id];
    switch (n.k) {
      case K.Lit:
        return n.v;
      case K.Var: {
        const v = this.env[n.level][n.slot];
        if (v === TDZ) this.fail('ReferenceError', id, `cannot use '${n.name}' before its declaration`);
        return v;
      }
      case K.Member: {
        const o = this.ev(n.o);
        if (o === SHORT || (n.opt && (o === null || o === undefined))) return SHORT;
        return this.getProp(o, n.name ?? toKey(this.ev(n.key)), id);
      }
      case K.Binary:
        return this.binary(n.op, this.ev(n.l), this.ev(n.r), id);
      case K.Logical: {
        const l = this.ev(n.l);
        switch (n.op) {
          case '&&':
            return l ? this.ev(n.r) : l;
          case '||':
            return l ? l : this.ev(n.r);
          default:
            return l === null || l === undefined ? this.ev(n.r) : l;
        }
      }
      case K.Call: {
        const o = this.ev(n.o);
        if (o === SHORT || (n.optMember && (o === null || o === undefined))) return SHORT;
        const name = n.name ?? toStr(toKey(this.ev(n.key)));
        return this.callMethod(o, name, this.args(n.args, n.spread), id, n.optCall);
      }
      case K.Builtin:
        return n.f(this, this.args(n.args, n.spread), id);
      case K.Arr:
        return this.args(n.items, n.spread);
      case K.Obj: {
        const o: Record<string, unknown> = {};
        for (const p of n.props) {
          if (p.spread) this.spreadInto(o, this.ev(p.v), p.v);
          else defineOwn(o, p.key ?? toStr(toKey(this.ev(p.ck))), this.ev(p.v));
        }
        return o;
      }
      case K.Tpl: {
        let s = n.quasis[0];
        for (let i = 0; i < n.exprs.length; i++) s += toStr(this.ev(n.exprs[i])) + n.quasis[i + 1];
        return s;
      }
      case K.Unary: {
        const v = this.ev(n.a);
        switch (n.op) {
          case '!':
            return !v;
          case '-':
            return -toNum(v);
          case '+':
            return toNum(v);
          case '~':
            return ~toNum(v);
          case 'typeof':
            return typeOf(v);
          default:
            return undefined; // void
        }
      }
      case K.Cond:
        return this.ev(n.t) ? this.ev(n.c) : this.ev(n.a);
      case K.Assign:
        return this.assign(n.op, n.t, n.v, id);
      case K.Update: {
        const t = this.nodes[n.t];
        let old: number;
        let o: unknown;
        let key: string | number = '';
        if (t.k === K.PVar) old = toNum(this.readVar(t));
        else if (t.k === K.PMember) {
          o = this.ev(t.o);
          key = t.name ?? toKey(this.ev(t.key));
          old = toNum(this.getProp(o, key, id));
        } else throw new Error('internal: bad update target');
        const next = n.op === '++' ? old + 1 : old - 1;
        if (t.k === K.PVar) this.writeVar(t, next);
        else this.setProp(o, key, next, id);
        return n.prefix ? next : old;
      }
      case K.Seq: {
        let v: unknown;
        for (const e of n.es) v = this.ev(e);
        return v;
      }
      case K.Chain: {
        const v = this.ev(n.e);
        return v === SHORT ? undefined : v;
      }
      case K.Arrow:
        return n.closure;
      case K.NewError: {
        const args = this.args(n.args, n.spread);
        const err = new ErrorValue(n.ctor, args[0] === undefined ? '' : toStr(args[0]), this.where(id));
        const opts = args[1];
        if (typeof opts === 'object' && opts !== null && own(opts, 'cause')) err.cause = (opts as Record<string, unknown>).cause;
        return err;
      }
      case K.Delete: {
        const o = this.ev(n.o);
        const key = n.name ?? toKey(this.ev(n.key));
        if (Array.isArray(o)) {
          const i = arrayIndex(key);
          if (i < 0) this.fail('TypeError', id, `cannot delete '${key}' of an array`);
          // Leaves undefined rather than a hole, which JSON could not keep.
          if (i < o.length) o[i] = undefined;
          return true;
        }
        if (typeof o !== 'object' || o === null || isAwaitable(o)) this.fail('TypeError', id, `cannot delete '${key}' of ${describe(o)}`);
        delete (o as Record<string, unknown>)[typeof key === 'string' ? key : String(key)];
        return true;
      }
      case K.InstanceOf: {
        const v = this.ev(n.v);
        return v instanceof ErrorValue && (n.ctor === 'Error' || v.name === n.ctor);
      }
    }
    throw new Error(`internal: node kind ${K[n.k]} is not an expression`);
  }

  private assign(op: string, tid: number, vid: number, at: number): unknown {
    const t = this.nodes[tid];
    if (op === '=') {
      if (t.k === K.PMember) {
        const o = this.ev(t.o);
        const key = t.name ?? toKey(this.ev(t.key));
        const v = this.ev(vid);
        this.setProp(o, key, v, at);
        return v;
      }
      const v = this.ev(vid);
      this.bind(tid, v, false);
      return v;
    }
    let o: unknown;
    let key: string | number = '';
    let old: unknown;
    if (t.k === K.PVar) old = this.readVar(t);
    else if (t.k === K.PMember) {
      o = this.ev(t.o);
      key = t.name ?? toKey(this.ev(t.key));
      old = this.getProp(o, key, at);
    } else throw new Error('internal: bad compound assignment target');
    let v: unknown;
    switch (op) {
      case '&&=':
        if (!old) return old;
        v = this.ev(vid);
        break;
      case '||=':
        if (old) return old;
        v = this.ev(vid);
        break;
      case '??=':
        if (old !== null && old !== undefined) return old;
        v = this.ev(vid);
        break;
      default:
        v = this.binary(op.slice(0, -1), old, this.ev(vid), at);
    }
    if (t.k === K.PVar) this.writeVar(t, v);
    else this.setProp(o, key, v, at);
    return v;
  }

  binary(op: string, l: unknown, r: unknown, at: number): unknown {
    if (typeof l === 'number' && typeof r === 'number') {
      switch (op) {
        case '+':
          return l + r;
        case '-':
          return l - r;
        case '*':
          return l * r;
        case '/':
          return l / r;
        case '%':
          return l % r;
        case '<':
          return l < r;
        case '<=':
          return l <= r;
        case '>':
          return l > r;
        case '>=':
          return l >= r;
        case '===':
          return l === r;
        case '!==':
          return l !== r;
      }
    }
    switch (op) {
      case '===':
        return l === r;
      case '!==':
        return l !== r;
      case '==':
        return looseEq(l, r);
      case '!=':
        return !looseEq(l, r);
      case '+':
        return add(l, r);
      case '-':
        return toNum(l) - toNum(r);
      case '*':
        return toNum(l) * toNum(r);
      case '/':
        return toNum(l) / toNum(r);
      case '%':
        return toNum(l) % toNum(r);
      case '**':
        return toNum(l) ** toNum(r);
      case '<':
      case '<=':
      case '>':
      case '>=':
        return compare(op, l, r);
      case '&':
        return toNum(l) & toNum(r);
      case '|':
        return toNum(l) | toNum(r);
      case '^':
        return toNum(l) ^ toNum(r);
      case '<<':
        return toNum(l) << toNum(r);
      case '>>':
        return toNum(l) >> toNum(r);
      case '>>>':
        return toNum(l) >>> toNum(r);
      case 'in':
        return this.hasKey(r, l, at);
    }
    throw new Error(`internal: unknown operator ${op}`);
  }

  private hasKey(o: unknown, key: unknown, at: number): boolean {
    if (typeof o !== 'object' || o === null || isAwaitable(o))
      this.fail('TypeError', at, `cannot use 'in' to look for a key in ${describe(o)}`);
    const k = toKey(key);
    if (Array.isArray(o)) {
      if (k === 'length') return true;
      const i = arrayIndex(k);
      return i >= 0 && i < o.length;
    }
    return own(o, typeof k === 'string' ? k : String(k));
  }

  /** Evaluates call arguments or array items, expanding spreads. */
  private args(ids: number[], spread: boolean): unknown[] {
    const out = new Array<unknown>(ids.length);
    if (!spread) {
      for (let i = 0; i < ids.length; i++) out[i] = this.ev(ids[i]);
      return out;
    }
    out.length = 0;
    for (const id of ids) {
      const n = this.nodes[id];
      if (n.k !== K.Spread) {
        out.push(this.ev(id));
        continue;
      }
      const v = this.ev(n.e);
      const items = iterableItems(v);
      if (items === undefined)
        this.fail('TypeError', id, `cannot spread ${describe(v)} into a list: only arrays and strings can be spread there`);
      for (const x of items) out.push(x);
    }
    return out;
  }

  private spreadInto(o: Record<string, unknown>, v: unknown, at: number): void {
    if (v === null || v === undefined) return;
    if (isAwaitable(v)) this.fail('TypeError', at, `cannot spread ${describe(v)}: await it first`);
    if (typeof v === 'string' || Array.isArray(v)) {
      const items = v as ArrayLike<unknown>;
      for (let i = 0; i < items.length; i++) o[String(i)] = items[i];
      return;
    }
    if (typeof v !== 'object') return;
    for (const key of Object.keys(v)) defineOwn(o, key, (v as Record<string, unknown>)[key]);
  }

  private callMethod(o: unknown, name: string, args: unknown[], at: number, optCall: boolean): unknown {
    let method: Method<unknown> | undefined;
    if (Array.isArray(o)) method = ARRAY_METHODS.get(name);
    else if (typeof o === 'string') method = STRING_METHODS.get(name);
    else if (typeof o === 'number') method = NUMBER_METHODS.get(name);
    else if (o === null || o === undefined) this.fail('TypeError', at, `cannot read '${name}' of ${o}`);
    else if (isAwaitable(o)) {
      this.fail('TypeError', at, `cannot call '${name}' on ${describe(o)}: await it (const result = await ...) instead`);
    }
    if (method !== undefined) return method(this, o, args, at);
    // The two Object.prototype methods scripts commonly call on data (an own property of that name wins).
    if (typeof o !== 'object' || !own(o as object, name)) {
      if (name === 'toString') return toStr(o);
      if (name === 'hasOwnProperty' && typeof o === 'object') return this.hasKey(o, args[0], at);
    }
    if (optCall && this.getProp(o, name, at) === undefined) return SHORT;
    this.fail('TypeError', at, `${describe(o)} has no method '${name}'${typeof o === 'object' ? ' (objects hold data only)' : ''}`);
  }

  /** Calls an arrow callback with `args`. */
  call(c: Closure, args: unknown[]): unknown {
    const n = this.nodes[c.node] as ArrowNode;
    if (++this.steps > this.maxSteps) this.overBudget(c.node);
    const env = this.env;
    const depth = env.length;
    if (n.slots > 0) env.push(newScope(n.slots));
    try {
      for (let i = 0; i < n.params.length; i++) this.bind(n.params[i], args[i], true);
      if (n.rest >= 0) this.bind(n.rest, args.slice(n.params.length), true);
      if (n.exprBody) return this.ev(n.body);
      return this.runBody(n.body);
    } finally {
      env.length = depth;
    }
  }

  /** Runs a callback's block body to its end on the same frame stack, above the current frames. */
  private runBody(block: number): unknown {
    const frames = this.frames;
    const base = frames.length;
    const savedBase = this.base;
    const savedCur = this.cur;
    this.base = base;
    try {
      this.enter(block);
      this.drive();
      const c = this.escaped;
      this.escaped = null;
      if (c === null) return undefined;
      if (c.t === RETURN) return c.v;
      throw new FlowThrow(c.v);
    } finally {
      frames.length = base;
      this.base = savedBase;
      this.cur = savedCur;
    }
  }
}

function newScope(slots: number): unknown[] {
  const scope = new Array<unknown>(slots);
  scope.fill(TDZ);
  return scope;
}

function hasLabel(labels: string[] | null, label: string): boolean {
  return labels?.includes(label) ?? false;
}

/** for-in skips keys deleted during the loop. */
function stillHasKey(o: unknown, key: string): boolean {
  if (Array.isArray(o)) return Number(key) < o.length;
  if (typeof o === 'object' && o !== null) return own(o, key);
  return true;
}
