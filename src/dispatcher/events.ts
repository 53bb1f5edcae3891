/**
 * Worker events: what happened to each execution a worker ran, told once its outcome is
 * durably written (completed, failed, retrying) or once the worker has stopped its handler
 * on a cancellation. Built only for kinds someone listens to, so a worker without listeners
 * pays nothing per task; a listener that throws is logged, never allowed to disturb the
 * writes.
 */
import type { Logger } from 'pino';
import type { Settled, Settlement } from '../sql/settle.js';
import type { ClaimedTask } from '../sql/claim.js';
import type { TaskErrorInfo } from '../types.js';

export type ExecutionEventKind = 'completed' | 'failed' | 'retrying' | 'cancelled';

export interface ExecutionEvent {
  kind: ExecutionEventKind;
  id: string;
  name: string;
  queue: string;
  /** The attempt this worker ran (1 on the first). */
  attempt: number;
  /** The handler's result (completed), else null. */
  result: unknown;
  /** Why the attempt failed (failed, retrying, cancelled), else null. */
  error: TaskErrorInfo | null;
}

/** Where the dispatcher sends events (the Worker, an EventEmitter). */
export interface EventSink {
  wants(kind: ExecutionEventKind): boolean;
  emit(event: ExecutionEvent): void;
}

const CANCELLED: TaskErrorInfo = { name: 'CancelledError', message: 'the execution was cancelled' };

/** Events for the executions a settle statement recorded; `taskOf` finds each one's claim. */
export function settledEvents(
  sink: EventSink,
  queue: string,
  settled: Settled[],
  items: Settlement[],
  taskOf: (leaseToken: string) => ClaimedTask | undefined,
  log: Logger,
): void {
  if (!(['completed', 'failed', 'retrying'] as const).some((k) => sink.wants(k))) return;
  const byId = new Map(items.map((i) => [i.id, i]));
  for (const s of settled) {
    const kind: ExecutionEventKind | undefined =
      s.status === 'scheduled' ? 'retrying' : s.status === 'completed' || s.status === 'failed' ? s.status : undefined;
    const item = byId.get(s.id);
    const task = item && taskOf(item.leaseToken);
    if (kind === undefined || !item || !task || !sink.wants(kind)) continue;
    deliver(sink, log, {
      kind,
      id: s.id,
      name: task.name,
      queue,
      attempt: task.attempt,
      result: kind === 'completed' && item.resultJson !== null ? JSON.parse(item.resultJson) : null,
      error: kind !== 'completed' && item.errorJson !== null ? (JSON.parse(item.errorJson) as TaskErrorInfo) : null,
    });
  }
}

export function cancelledEvent(sink: EventSink, queue: string, task: ClaimedTask, log: Logger): void {
  if (!sink.wants('cancelled')) return;
  deliver(sink, log, { kind: 'cancelled', id: task.id, name: task.name, queue, attempt: task.attempt, result: null, error: CANCELLED });
}

function deliver(sink: EventSink, log: Logger, event: ExecutionEvent): void {
  try {
    sink.emit(event);
  } catch (err) {
    log.error({ err, id: event.id, event: event.kind }, 'a worker event listener threw; ignored');
  }
}
