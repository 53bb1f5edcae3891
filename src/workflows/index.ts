/**
 * Durable workflows written as .flow scripts: a JavaScript subset whose whole interpreter
 * state is one JSON document saved at every await, so a workflow resumes on any worker
 * without replaying anything. This module is the language (compiler, interpreter, state) and
 * the host interface the runtime drives; it touches no database. See docs/workflows.md.
 */
export { compileFlow, type CompiledFlow } from './compile.js';
export {
  startFlow,
  resumeFlow,
  DEFAULT_LIMITS,
  type Activation,
  type FlowContext,
  type FlowFailure,
  type FlowLimits,
  type ResumeInput,
} from './host.js';
export type { ChildOutcome, Effect, InboxSignal, TaskCallOptions, WaitingOn, WorkflowCallOptions } from './durable.js';
export type { FlowState } from './state.js';
export { FlowSyntaxError, FlowStateError, type FlowProblem } from './errors.js';
