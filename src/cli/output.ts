/** Formatting a command's answer for people. */
import type { Execution } from '../types.js';
import type { WorkflowDetails } from '../sql/workflow-details.js';

export { formatDuration } from '../config/parse.js';

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
    ...(e.kind === 'workflow' ? [['kind', 'workflow'] as [string, string]] : []),
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

/**
 * A workflow's part of `rhythm get`: its children by call sequence, and, while it is
 * unfinished, what its current await waits for (children, signal names, the timer).
 */
export function formatWorkflow(e: Execution, w: WorkflowDetails): string {
  const lines: string[] = [];
  lines.push(`${'children'.padEnd(10)}${w.children.length === 0 ? '-' : ''}`);
  if (w.children.length > 0) {
    const rows = w.children.map((c) => [String(c.seq), c.id, c.kind, c.name, c.queue, c.status]);
    lines.push(
      ...table(['SEQ', 'ID', 'KIND', 'NAME', 'QUEUE', 'STATUS'], rows)
        .split('\n')
        .map((l) => `  ${l}`),
    );
  }
  const unfinished = e.status === 'scheduled' || e.status === 'queued' || e.status === 'running';
  const waits: string[] = [];
  if (unfinished) {
    for (const seq of w.waitingOn.children) {
      const c = w.children.find((k) => k.seq === seq);
      waits.push(c ? `${c.kind} ${c.name} (id ${c.id}, ${c.status})` : `child #${seq}`);
    }
    for (const name of w.waitingOn.signals) waits.push(`signal ${JSON.stringify(name)}`);
    if (w.waitingOn.wakeAt) waits.push(`timer due ${w.waitingOn.wakeAt.toISOString()}`);
  }
  const how = waits.length < 2 ? '' : w.waitingOn.mode === 'all' ? 'all of: ' : 'the first of: ';
  lines.push(`${'waits for'.padEnd(10)}${waits.length === 0 ? '-' : how + waits.join('; ')}`);
  if (w.signals.length > 0) {
    lines.push(
      `${'signals'.padEnd(10)}not taken yet: ${w.signals.map((g) => `${JSON.stringify(g.name)} (sent ${g.sentAt.toISOString()})`).join(', ')}`,
    );
  }
  return lines.join('\n');
}
