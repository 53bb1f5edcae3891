/** Writing a command's answer on stdout, and formatting it for people. */
import type { Execution } from '../types.js';

export { formatDuration } from '../config/parse.js';

/** Writes to stdout and resolves once the text is handed to the OS (before process.exit). */
export function print(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`, (err) => (err ? reject(err) : resolve()));
  });
}

/** Left-aligned columns separated by two spaces. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatExecution(e: Execution): string {
  const json = (v: unknown) => (v === null || v === undefined ? '-' : JSON.stringify(v));
  const date = (d: Date | null) => (d ? d.toISOString() : '-');
  const rows: [string, string][] = [
    ['id', e.id],
    ['name', e.name],
    ['queue', e.queue],
    ['status', e.status],
    ['attempts', `${e.attempts}/${e.maxAttempts}`],
    ['priority', String(e.priority)],
    ['created', date(e.createdAt)],
    ['run at', date(e.runAt)],
    ['started', date(e.startedAt)],
    ['finished', date(e.finishedAt)],
    ['payload', json(e.payload)],
    ['result', json(e.result)],
    ['error', e.error ? `${e.error.name}: ${e.error.message}` : '-'],
  ];
  return rows.map(([k, v]) => `${k.padEnd(10)}${v}`).join('\n');
}
