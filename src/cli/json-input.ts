/**
 * Payloads typed on a command line. JSON.parse on Node 20 does not always say where the text
 * went wrong ("Unexpected token '}', ... is not valid JSON"), so on failure a small strict
 * scanner (RFC 8259, iterative: no recursion limit) finds the position, line and column.
 */
import { UsageError } from './args.js';

export interface JsonSyntaxError {
  /** 0-based character offset. */
  position: number;
  /** 1-based. */
  line: number;
  column: number;
  message: string;
}

/** Parses `text` or throws a UsageError naming `what`, the position and what was expected there. */
export function parseJsonArgument(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const e = locateJsonError(text);
    if (!e) throw new UsageError(`${what} is not valid JSON: ${(err as Error).message}`);
    throw new UsageError(
      `${what} is not valid JSON: ${e.message} at position ${e.position} (line ${e.line}, column ${e.column})\n${excerpt(text, e)}`,
    );
  }
}

/** The first syntax error in `text`, or undefined if it is valid JSON. */
export function locateJsonError(text: string): JsonSyntaxError | undefined {
  let pos = 0;
  const stack: ('{' | '[')[] = [];
  type State = 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'colon' | 'comma-or-close' | 'done';
  let state: State = 'value';

  const fail = (message: string, at = pos): JsonSyntaxError => {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at; i++) {
      if (text[i] === '\n') {
        line++;
        lineStart = i + 1;
      }
    }
    return { position: at, line, column: at - lineStart + 1, message };
  };
  const found = () => (pos >= text.length ? 'the end of the input' : describeChar(text[pos]!));
  const skipWs = () => {
    while (pos < text.length && (text[pos] === ' ' || text[pos] === '\t' || text[pos] === '\n' || text[pos] === '\r')) pos++;
  };
  const afterValue = (): State => (stack.length > 0 ? 'comma-or-close' : 'done');

  /** Scans a string starting at the opening quote; returns an error or undefined. */
  const scanString = (): JsonSyntaxError | undefined => {
    const start = pos;
    pos++;
    for (;;) {
      if (pos >= text.length) return fail('unterminated string (opened at position ' + start + ')');
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        pos++;
        return undefined;
      }
      if (c < 0x20) return fail(`control character ${describeChar(text[pos]!)} inside a string (escape it)`);
      if (c === 0x5c) {
        const n = text[pos + 1];
        if (n !== undefined && '"\\/bfnrt'.includes(n)) {
          pos += 2;
        } else if (n === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(pos + 2, pos + 6))) return fail('invalid \\u escape: expected 4 hex digits');
          pos += 6;
        } else {
          return fail(`invalid escape ${n === undefined ? 'at the end of the input' : JSON.stringify('\\' + n)}`);
        }
      } else {
        pos++;
      }
    }
  };

  const scanNumber = (): JsonSyntaxError | undefined => {
    if (text[pos] === '-') pos++;
    if (text[pos] === '0') {
      pos++;
    } else if (isDigit(text[pos])) {
      while (isDigit(text[pos])) pos++;
    } else {
      return fail(`expected a digit, found ${found()}`);
    }
    if (text[pos] === '.') {
      pos++;
      if (!isDigit(text[pos])) return fail(`expected a digit after the decimal point, found ${found()}`);
      while (isDigit(text[pos])) pos++;
    }
    if (text[pos] === 'e' || text[pos] === 'E') {
      pos++;
      if (text[pos] === '+' || text[pos] === '-') pos++;
      if (!isDigit(text[pos])) return fail(`expected a digit in the exponent, found ${found()}`);
      while (isDigit(text[pos])) pos++;
    }
    return undefined;
  };

  for (;;) {
    skipWs();
    switch (state) {
      case 'done':
        return pos < text.length ? fail(`unexpected ${found()} after the end of the JSON value`) : undefined;
      case 'value':
      case 'value-or-close': {
        const c = text[pos];
        if (state === 'value-or-close' && c === ']') {
          stack.pop();
          pos++;
          state = afterValue();
        } else if (c === '{') {
          stack.push('{');
          pos++;
          state = 'key-or-close';
        } else if (c === '[') {
          stack.push('[');
          pos++;
          state = 'value-or-close';
        } else if (c === '"') {
          const e = scanString();
          if (e) return e;
          state = afterValue();
        } else if (c === '-' || isDigit(c)) {
          const e = scanNumber();
          if (e) return e;
          state = afterValue();
        } else if (c !== undefined && /[A-Za-z_]/.test(c)) {
          const word = c === 't' ? 'true' : c === 'f' ? 'false' : c === 'n' ? 'null' : undefined;
          if (word !== undefined && text.startsWith(word, pos)) {
            pos += word.length;
            state = afterValue();
          } else {
            let end = pos;
            while (end < text.length && /[A-Za-z0-9_]/.test(text[end]!)) end++;
            return fail(`unexpected word ${JSON.stringify(text.slice(pos, end))} (strings need double quotes)`);
          }
        } else if (c === "'") {
          return fail('unexpected "\'": JSON strings use double quotes');
        } else {
          return fail(`expected a value, found ${found()}`);
        }
        break;
      }
      case 'key':
      case 'key-or-close': {
        const c = text[pos];
        if (state === 'key-or-close' && c === '}') {
          stack.pop();
          pos++;
          state = afterValue();
        } else if (c === '"') {
          const e = scanString();
          if (e) return e;
          state = 'colon';
        } else {
          return fail(`expected a property name in double quotes${state === 'key-or-close' ? " or '}'" : ''}, found ${found()}`);
        }
        break;
      }
      case 'colon':
        if (text[pos] !== ':') return fail(`expected ':' after the property name, found ${found()}`);
        pos++;
        state = 'value';
        break;
      case 'comma-or-close': {
        const top = stack[stack.length - 1]!;
        const close = top === '{' ? '}' : ']';
        const c = text[pos];
        if (c === ',') {
          pos++;
          state = top === '{' ? 'key' : 'value';
        } else if (c === close) {
          stack.pop();
          pos++;
          state = afterValue();
        } else {
          return fail(`expected ',' or '${close}', found ${found()}`);
        }
        break;
      }
    }
  }
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function describeChar(c: string): string {
  const code = c.charCodeAt(0);
  if (code < 0x20 || code === 0x7f) return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return c === "'" ? `"'"` : `'${c}'`;
}

/** The offending line (cut to ~70 characters around the error) with a caret under the position. */
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
