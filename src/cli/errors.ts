/**
 * The errors of the `rhythm` command, by exit code. Both are RhythmErrors, so a program that
 * drives the command's functions can tell them from faults of its own.
 */
import { RhythmError, RhythmValidationError } from '../errors.js';

/** A mistake in how the command was called (a flag, a value, an argument): exit code 2. */
export class UsageError extends RhythmValidationError {}

/** A runtime failure with a message fit for the terminal (a database that cannot be used, a task module that does not load): exit code 1. */
export class CliError extends RhythmError {}
