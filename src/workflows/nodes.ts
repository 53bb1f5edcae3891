/**
 * The instruction tree a .flow script compiles to.
 *
 * Nodes live in one array and refer to each other by index. The saved interpreter state names
 * statements by index only, never by content, so it stays small, and any worker rebuilds the
 * same tree from the same source: the compiler numbers nodes in source order, deterministically.
 * Changing that numbering (or what a frame's fields mean) changes STATE_FORMAT, since states
 * saved under the old numbering would resume at the wrong place.
 *
 * Names are resolved at compile time: a variable is a (level, slot) pair into the scope stack,
 * a built-in call holds its function. Expression nodes are evaluated recursively (they never
 * suspend: `await` is only allowed at statement level); statements run on an explicit frame
 * stack that is saved whole at an await.
 */
import type { BuiltinFn } from './builtins.js';
import type { Closure } from './values.js';

/** Bumped whenever node numbering, frame layout or the value encoding changes. */
export const STATE_FORMAT = 1;

export enum K {
  // statements
  Program,
  Block,
  Expr,
  AwaitExpr,
  AwaitAssign,
  Decl,
  If,
  While,
  DoWhile,
  For,
  ForOf,
  ForIn,
  Break,
  Continue,
  Return,
  Throw,
  Try,
  Switch,
  Labeled,
  Empty,
  // expressions
  Lit,
  Var,
  Arr,
  Obj,
  Tpl,
  Member,
  Call,
  Builtin,
  NewError,
  Unary,
  Binary,
  Logical,
  Cond,
  Assign,
  Update,
  Seq,
  Arrow,
  Chain,
  Spread,
  Delete,
  InstanceOf,
  // patterns: declaration bindings and assignment targets
  PVar,
  PMember,
  PObject,
  PArray,
  PDefault,
}

interface At {
  /** 1-based line and column of the place an error here should name. */
  line: number;
  col: number;
}

/** Statements that scope `let`/`const` carry the number of slots their scope holds (0: no scope). */
export interface ProgramNode extends At {
  k: K.Program;
  body: number[];
  slots: number;
}
export interface BlockNode extends At {
  k: K.Block;
  body: number[];
  slots: number;
}
export interface ExprNode extends At {
  k: K.Expr;
  e: number;
}
/** `await e;` */
export interface AwaitExprNode extends At {
  k: K.AwaitExpr;
  e: number;
}
/** `target op= await e;` (op is '=' or an arithmetic compound like '+=') */
export interface AwaitAssignNode extends At {
  k: K.AwaitAssign;
  op: string;
  t: number;
  e: number;
}
export interface Declarator {
  p: number;
  init: number;
  aw: boolean;
}
export interface DeclNode extends At {
  k: K.Decl;
  decls: Declarator[];
}
export interface IfNode extends At {
  k: K.If;
  test: number;
  cons: number;
  alt: number;
}
export interface WhileNode extends At {
  k: K.While | K.DoWhile;
  test: number;
  body: number;
  labels: string[] | null;
  slots: 0;
}
export interface ForNode extends At {
  k: K.For;
  init: number;
  test: number;
  update: number;
  body: number;
  labels: string[] | null;
  slots: number;
}
export interface ForEachNode extends At {
  k: K.ForOf | K.ForIn;
  /** The binding pattern (declared when slots > 0) or assignment target. */
  p: number;
  decl: boolean;
  right: number;
  body: number;
  labels: string[] | null;
  slots: number;
}
export interface JumpNode extends At {
  k: K.Break | K.Continue;
  label: string | null;
}
/** `aw`: `return await e`; `inArrow`: a callback's return, which never awaits a handle implicitly. */
export interface ReturnNode extends At {
  k: K.Return;
  e: number;
  aw: boolean;
  inArrow: boolean;
}
export interface ThrowNode extends At {
  k: K.Throw;
  e: number;
}
export interface TryNode extends At {
  k: K.Try;
  block: number;
  param: number;
  handler: number;
  fin: number;
  slots: 0;
}
export interface SwitchNode extends At {
  k: K.Switch;
  disc: number;
  /** Per case: its test expression (-1 for default) and the index in body where it starts. */
  tests: number[];
  starts: number[];
  body: number[];
  labels: string[] | null;
  slots: number;
}
export interface LabeledNode extends At {
  k: K.Labeled;
  labels: string[];
  body: number;
  slots: 0;
}
export interface EmptyNode extends At {
  k: K.Empty;
}

export interface LitNode extends At {
  k: K.Lit;
  v: unknown;
}
export interface VarNode extends At {
  k: K.Var;
  level: number;
  slot: number;
  name: string;
}
export interface ArrNode extends At {
  k: K.Arr;
  items: number[];
  spread: boolean;
}
export interface ObjProp {
  key: string | null;
  ck: number;
  v: number;
  spread: boolean;
}
export interface ObjNode extends At {
  k: K.Obj;
  props: ObjProp[];
}
export interface TplNode extends At {
  k: K.Tpl;
  quasis: string[];
  exprs: number[];
}
export interface MemberNode extends At {
  k: K.Member;
  o: number;
  name: string | null;
  key: number;
  opt: boolean;
}
export interface CallNode extends At {
  k: K.Call;
  o: number;
  name: string | null;
  key: number;
  args: number[];
  spread: boolean;
  /** `o?.m()` and `o.m?.()` */
  optMember: boolean;
  optCall: boolean;
}
export interface BuiltinNode extends At {
  k: K.Builtin;
  f: BuiltinFn;
  name: string;
  args: number[];
  spread: boolean;
}
export interface NewErrorNode extends At {
  k: K.NewError;
  ctor: string;
  args: number[];
  spread: boolean;
}
export interface UnaryNode extends At {
  k: K.Unary;
  op: string;
  a: number;
}
export interface BinaryNode extends At {
  k: K.Binary | K.Logical;
  op: string;
  l: number;
  r: number;
}
export interface CondNode extends At {
  k: K.Cond;
  t: number;
  c: number;
  a: number;
}
export interface AssignNode extends At {
  k: K.Assign;
  op: string;
  t: number;
  v: number;
}
export interface UpdateNode extends At {
  k: K.Update;
  op: string;
  prefix: boolean;
  t: number;
}
export interface SeqNode extends At {
  k: K.Seq;
  es: number[];
}
export interface ArrowNode extends At {
  k: K.Arrow;
  params: number[];
  /** Rest parameter pattern, or -1. */
  rest: number;
  body: number;
  exprBody: boolean;
  /** Scope level of the parameters and how many slots they take (0: no scope pushed). */
  level: number;
  slots: number;
  closure: Closure;
}
export interface ChainNode extends At {
  k: K.Chain;
  e: number;
}
export interface SpreadNode extends At {
  k: K.Spread;
  e: number;
}
export interface DeleteNode extends At {
  k: K.Delete;
  o: number;
  name: string | null;
  key: number;
}
export interface InstanceOfNode extends At {
  k: K.InstanceOf;
  v: number;
  ctor: string;
}

export interface PVarNode extends At {
  k: K.PVar;
  level: number;
  slot: number;
  name: string;
}
export interface PMemberNode extends At {
  k: K.PMember;
  o: number;
  name: string | null;
  key: number;
}
export interface PObjectProp {
  name: string | null;
  key: number;
  p: number;
}
export interface PObjectNode extends At {
  k: K.PObject;
  props: PObjectProp[];
  rest: number;
}
export interface PArrayNode extends At {
  k: K.PArray;
  elems: number[];
  rest: number;
}
export interface PDefaultNode extends At {
  k: K.PDefault;
  p: number;
  d: number;
}

export type Node =
  | ProgramNode
  | BlockNode
  | ExprNode
  | AwaitExprNode
  | AwaitAssignNode
  | DeclNode
  | IfNode
  | WhileNode
  | ForNode
  | ForEachNode
  | JumpNode
  | ReturnNode
  | ThrowNode
  | TryNode
  | SwitchNode
  | LabeledNode
  | EmptyNode
  | LitNode
  | VarNode
  | ArrNode
  | ObjNode
  | TplNode
  | MemberNode
  | CallNode
  | BuiltinNode
  | NewErrorNode
  | UnaryNode
  | BinaryNode
  | CondNode
  | AssignNode
  | UpdateNode
  | SeqNode
  | ArrowNode
  | ChainNode
  | SpreadNode
  | DeleteNode
  | InstanceOfNode
  | PVarNode
  | PMemberNode
  | PObjectNode
  | PArrayNode
  | PDefaultNode;

/** Statements whose frames own a scope carry `slots`; this reads it for any node. */
export function scopeSlots(n: Node): number {
  return (n as { slots?: number }).slots ?? 0;
}
