/**
 * The saved state: one JSON document holding everything an activation needs to go on, and
 * nothing that can be rebuilt (the instruction tree is referred to by node number).
 *
 *   { format, hash, seq, env, frames }
 *
 * `env` is the scope stack (arrays of slot values), `frames` the statement stack as
 * [node, phase, x?, y?]. Values are JSON with a few tagged objects, `{"$": tag, ...}`:
 *   u undefined    t uninitialized let/const    n NaN, Infinity, -Infinity or -0
 *   s a string JSON or jsonb could not carry (NUL, lone surrogates), as UTF-16 code units
 *   h a handle     c a Promise.* combinator      e an error    o an object that has its own "$" key
 *   r the first occurrence of an object referenced more than once (i: its number, v: it)
 *   p a later reference to object number i
 * The references keep sharing and cycles: after `const a = {}; const b = a;` a change through b
 * is seen through a after any number of saves, exactly as without saving. So a script behaves
 * the same whether or not its state went through JSON at every await; the fuzz test checks it.
 */
import { FlowStateError } from './errors.js';
import type { Frame } from './interpreter.js';
import { STATE_FORMAT } from './nodes.js';
import { Closure, Combinator, ErrorValue, Handle, PENDING, TDZ, own, type CombinatorKind, type HandleKind } from './values.js';

export interface FlowState {
  /** Layout version of this document and of the node numbering it refers to. */
  format: number;
  /** The compiled source's hash: a state resumes only with the source it was made by. */
  hash: string;
  /** Last durable call sequence number used. */
  seq: number;
  env: unknown[];
  frames: unknown[];
}

export interface DecodedState {
  env: unknown[][];
  frames: Frame[];
  seq: number;
  /** Every handle the state holds, by sequence number, to record outcomes in. */
  handles: Map<number, Handle>;
}

const NUMBER_TAGS: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity, '-0': -0 };

class Encoder {
  private readonly counts = new Map<object, number>();
  private readonly ids = new Map<object, number>();

  /** First pass: which objects are reached more than once. */
  count(v: unknown): void {
    if (typeof v !== 'object' || v === null) return;
    const c = this.counts.get(v);
    if (c !== undefined) {
      if (c === 1) this.counts.set(v, 2);
      return;
    }
    this.counts.set(v, 1);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) this.count(v[i]);
    } else if (v instanceof Handle) {
      this.count(v.value);
    } else if (v instanceof Combinator) {
      this.count(v.members);
    } else {
      for (const key of Object.keys(v)) this.count((v as Record<string, unknown>)[key]);
    }
  }

  encode(v: unknown): unknown {
    switch (typeof v) {
      case 'string':
        return v.includes('\u0000') || !v.isWellFormed() ? { $: 's', v: Array.from({ length: v.length }, (_, i) => v.charCodeAt(i)) } : v;
      case 'number':
        if (Number.isFinite(v) && !Object.is(v, -0)) return v;
        return { $: 'n', v: Object.is(v, -0) ? '-0' : String(v) };
      case 'boolean':
        return v;
      case 'undefined':
        return { $: 'u' };
      case 'symbol':
        if (v === TDZ) return { $: 't' };
        break;
      case 'object': {
        if (v === null) return null;
        if (this.counts.get(v) === 2) {
          const id = this.ids.get(v);
          if (id !== undefined) return { $: 'p', i: id };
          const fresh = this.ids.size;
          this.ids.set(v, fresh);
          return { $: 'r', i: fresh, v: this.encodeObject(v) };
        }
        return this.encodeObject(v);
      }
    }
    throw new Error(`internal: cannot save a ${typeof v} in the workflow state`);
  }

  private encodeObject(v: object): unknown {
    if (Array.isArray(v)) {
      const out = new Array<unknown>(v.length);
      for (let i = 0; i < v.length; i++) out[i] = this.encode(v[i]);
      return out;
    }
    if (v instanceof Handle) {
      const h: Record<string, unknown> = { $: 'h', s: v.seq, k: v.kind, c: v.created };
      if (v.name !== '') h.n = v.name;
      if (v.kind === 'timer') h.f = v.fireAt;
      if (v.state !== PENDING) {
        h.st = v.state;
        h.v = this.encode(v.value);
        h.a = this.encode(v.at);
      }
      return h;
    }
    if (v instanceof Combinator) return { $: 'c', k: v.kind, m: this.encode(v.members) };
    if (v instanceof Closure) throw new Error('internal: a callback cannot be saved in the workflow state');
    const fields = this.encodeFields(v as Record<string, unknown>);
    if (v instanceof ErrorValue) return { $: 'e', v: fields };
    return own(v, '$') ? { $: 'o', v: fields } : fields;
  }

  private encodeFields(o: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(o)) setOwn(out, key, this.encode(o[key]));
    return out;
  }
}

function setOwn(o: Record<string, unknown>, key: string, v: unknown): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value: v, writable: true, enumerable: true, configurable: true });
  else o[key] = v;
}

export function encodeState(hash: string, seq: number, env: unknown[][], frames: Frame[]): FlowState {
  const enc = new Encoder();
  enc.count(env);
  for (const f of frames) {
    enc.count(f.x);
    enc.count(f.y);
  }
  const encodedEnv = env.map((scope) => enc.encode(scope));
  const encodedFrames = frames.map((f) => {
    const out: unknown[] = [f.n, f.s];
    if (f.x !== undefined || f.y !== undefined) out.push(enc.encode(f.x));
    if (f.y !== undefined) out.push(enc.encode(f.y));
    return out;
  });
  return { format: STATE_FORMAT, hash, seq, env: encodedEnv, frames: encodedFrames };
}

class Decoder {
  private readonly refs: unknown[] = [];
  readonly handles = new Map<number, Handle>();

  decode(x: unknown, id = -1): unknown {
    if (typeof x !== 'object' || x === null) {
      if (id >= 0) throw new FlowStateError('damaged state: a shared reference to a non-object');
      return x;
    }
    if (Array.isArray(x)) {
      const a = new Array<unknown>(x.length);
      if (id >= 0) this.refs[id] = a;
      for (let i = 0; i < x.length; i++) a[i] = this.decode(x[i]);
      return a;
    }
    const o = x as Record<string, unknown>;
    const tag = o.$;
    if (tag === undefined) return this.fields(o, {}, id);
    switch (tag) {
      case 'u':
        return undefined;
      case 't':
        return TDZ;
      case 'n':
        if (typeof o.v === 'string' && own(NUMBER_TAGS, o.v)) return NUMBER_TAGS[o.v];
        break;
      case 's':
        if (Array.isArray(o.v)) return String.fromCharCode(...(o.v as number[]));
        break;
      case 'o':
        return this.fields(o.v as Record<string, unknown>, {}, id);
      case 'e':
        return this.fields(o.v as Record<string, unknown>, new ErrorValue('', ''), id);
      case 'h': {
        const h = new Handle(
          o.s as number,
          o.k as HandleKind,
          (o.n as string | undefined) ?? '',
          o.c as number,
          (o.f as number | undefined) ?? 0,
        );
        if (id >= 0) this.refs[id] = h;
        if (o.st !== undefined) {
          h.state = o.st as number;
          h.value = this.decode(o.v);
          h.at = this.decode(o.a) as number;
        }
        this.handles.set(h.seq, h);
        return h;
      }
      case 'c': {
        const members: unknown[] = [];
        const c = new Combinator(o.k as CombinatorKind, members);
        if (id >= 0) this.refs[id] = c;
        const decoded = this.decode(o.m);
        if (!Array.isArray(decoded)) break;
        for (const m of decoded) members.push(m);
        return c;
      }
      case 'r':
        return this.decode(o.v, o.i as number);
      case 'p':
        if (typeof o.i === 'number' && o.i < this.refs.length) return this.refs[o.i];
        break;
    }
    throw new FlowStateError(`damaged state: cannot read ${JSON.stringify(x).slice(0, 80)}`);
  }

  private fields(src: Record<string, unknown>, target: Record<string, unknown>, id: number): Record<string, unknown> {
    if (typeof src !== 'object' || src === null) throw new FlowStateError('damaged state: object fields missing');
    if (id >= 0) this.refs[id] = target;
    if (target instanceof ErrorValue) {
      delete target.name;
      delete target.message;
    }
    for (const key of Object.keys(src)) setOwn(target, key, this.decode(src[key]));
    return target;
  }
}

export function decodeState(state: FlowState): DecodedState {
  if (!Array.isArray(state.env) || !Array.isArray(state.frames) || typeof state.seq !== 'number') {
    throw new FlowStateError('damaged state: env, frames or seq missing');
  }
  const dec = new Decoder();
  const env = state.env.map((scope) => {
    const s = dec.decode(scope);
    if (!Array.isArray(s)) throw new FlowStateError('damaged state: a scope is not an array');
    return s;
  });
  const frames = state.frames.map((raw): Frame => {
    if (!Array.isArray(raw) || typeof raw[0] !== 'number' || typeof raw[1] !== 'number')
      throw new FlowStateError('damaged state: bad frame');
    return { n: raw[0], s: raw[1], x: raw.length > 2 ? dec.decode(raw[2]) : undefined, y: raw.length > 3 ? dec.decode(raw[3]) : undefined };
  });
  return { env, frames, seq: state.seq, handles: dec.handles };
}
