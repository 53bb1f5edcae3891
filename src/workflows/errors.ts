/**
 * Errors the host sees. A script's own errors (TypeError at order.flow:9:14, a failed child)
 * are script values (values.ts ErrorValue) that end up in a failed activation's `error`; these
 * classes are for the host's mistakes: a file that does not compile, a state that does not
 * belong to the compiled flow it is resumed with.
 */
import { RhythmError, RhythmValidationError } from '../errors.js';

/** One refused construct or syntax error, at a 1-based line and column. */
export interface FlowProblem {
  line: number;
  column: number;
  message: string;
}

/**
 * A .flow file that does not compile. Every problem found is listed (a JavaScript syntax
 * error stops the parser, so it comes alone), each as `order.flow:12:18: message`.
 */
export class FlowSyntaxError extends RhythmValidationError {
  constructor(
    readonly fileName: string,
    readonly problems: FlowProblem[],
  ) {
    super(problems.map((p) => `${fileName}:${p.line}:${p.column}: ${p.message}`).join('\n'));
  }
}

/** A saved state that cannot be resumed with this compiled flow (other source, other format, damaged). */
export class FlowStateError extends RhythmError {}
