/**
 * JSON typed by a person (a payload on the command line, a config file): when it does not
 * parse, the error says where, as position, line and column, with the line and a caret.
 *
 * The position is the engine's own when its message gives one ("... in JSON at position 8").
 * Node's "Unexpected token" messages quote a snippet instead, so for those the scanner of
 * jsonc-parser (strict settings: no comments, no trailing commas) finds the spot.
 */
import { createRequire } from 'node:module';
import type { ParseError, ParseOptions } from 'jsonc-parser';
import { RhythmValidationError } from '../errors.js';

export interface JsonSyntaxError {
  /** 0-based character offset. */
  position: number;
  /** 1-based. */
  line: number;
  column: number;
  /** What is wrong there, in words. */
  message: string;
}

/** Parses `text` or throws a RhythmValidationError naming `what` and where the text went wrong. */
export function parseJsonText(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const e = locateJsonError(text, (err as Error).message);
    throw new RhythmValidationError(
      `${what} is not valid JSON: ${e.message} at position ${e.position} (line ${e.line}, column ${e.column})\n${excerpt(text, e)}`,
    );
  }
}

/** Where `text` went wrong, given JSON.parse's message about it. */
export function locateJsonError(text: string, engineMessage: string): JsonSyntaxError {
  const at = /^(.*?)(?: in JSON)? at position (\d+)/s.exec(engineMessage);
  let position: number;
  let message: string;
  if (at) {
    position = Number(at[2]);
    message = lowerFirst(at[1]!);
    if (/^expected\b/.test(message)) message += `, found ${found(text, position)}`;
  } else {
    const first = firstScanError(text);
    position = first?.offset ?? text.length;
    const symbol = first ? text.slice(first.offset, first.offset + first.length) : '';
    message =
      /^[A-Za-z_]\w*$/.test(symbol) && symbol.length > 1
        ? `unexpected word ${JSON.stringify(symbol)} (strings take double quotes; the literals are true, false and null)`
        : `unexpected ${found(text, position)}`;
  }
  if (text[position] === "'") message += ' (JSON strings take double quotes)';
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < position; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { position, line, column: position - lineStart + 1, message };
}

function firstScanError(text: string): ParseError | undefined {
  // Loaded only for text that failed to parse.
  const { parse } = createRequire(import.meta.url)('jsonc-parser') as {
    parse(text: string, errors: ParseError[], options: ParseOptions): unknown;
  };
  const errors: ParseError[] = [];
  parse(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  return errors[0];
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** The character at `position`, in words. */
function found(text: string, position: number): string {
  if (position >= text.length) return 'the end of the input';
  const c = text[position]!;
  const code = c.charCodeAt(0);
  if (code < 0x20 || code === 0x7f) return `the control character U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return `'${c}'`;
}

/** The line of the error (cut to 70 characters around it) and a caret under the spot. */
function excerpt(text: string, e: JsonSyntaxError): string {
  const lineStart = e.position - (e.column - 1);
  let lineEnd = text.indexOf('\n', lineStart);
  if (lineEnd === -1) lineEnd = text.length;
  const from = Math.max(lineStart, e.position - 35);
  const to = Math.min(lineEnd, from + 70);
  const prefix = from > lineStart ? '...' : '';
  const suffix = to < lineEnd ? '...' : '';
  const shown = text.slice(from, to).replace(/[\t\r]/g, ' ');
  return `  ${prefix}${shown}${suffix}\n  ${' '.repeat(prefix.length + e.position - from)}^`;
}
