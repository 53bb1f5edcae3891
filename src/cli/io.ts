/**
 * What one run of the command line reads and writes. `rhythm` uses the process's own streams,
 * environment and working folder; runCli takes others, so that a program (or a test) can run a
 * command inside its own process and read its answer, errors and logs without spawning one.
 */
import { readFileSync } from 'node:fs';
import type { DestinationStream } from 'pino';

export interface CliIo {
  /** Writes the command's answer (stdout); resolves once the text is handed on. */
  out(text: string): Promise<void>;
  /** Writes an error message (stderr). */
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** All of stdin: read only for an argument given as "-". */
  stdin(): string;
  /** Whether the answer goes to a terminal (`status --watch` then redraws the screen). */
  stdoutIsTTY: boolean;
  /** Where log lines go; undefined: the process's stderr (file descriptor 2). */
  logs?: DestinationStream;
}

/** The process's own: what the `rhythm` executable runs with. */
export function processIo(): CliIo {
  return {
    out: (text) =>
      new Promise((resolve, reject) => {
        // Resolved once the text is handed to the OS, so an exit right after loses nothing.
        process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
      }),
    err: (text) => void process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
    stdin: () => readFileSync(0, 'utf8'),
    stdoutIsTTY: process.stdout.isTTY === true,
  };
}

/** `text` as whole lines: a final newline added when missing. */
export function line(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}
