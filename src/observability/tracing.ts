/**
 * OpenTelemetry traces: a span around each enqueue call, its context stored with the
 * executions it created, and a span around each attempt a worker runs, a child of that
 * context, so one trace shows a task from the producer to every attempt of it.
 *
 * Only @opentelemetry/api is used: without an SDK registered it is a no-op, and so are we.
 * Nothing is allocated per task then: a worker decides once, when it starts, whether a
 * tracer provider is registered, an enqueue starts no span without one, and it serialises a
 * context only when its span has one and a propagator wrote something.
 */
import {
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  isSpanContextValid,
  propagation,
  trace,
  type Attributes,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { TaskErrorInfo } from '../types.js';

const TRACER_NAME = 'rhythm-pg';
/** The provider the API hands out while none is registered (it keeps one for the process). */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** The tracer, got once per registered provider (an application may register one late). */
let lastDelegate: TracerProvider | undefined;
let lastTracer: Tracer | undefined;

/**
 * Our tracer, or undefined while no OpenTelemetry SDK (tracer provider) is registered. Read
 * through the global registration each time, not kept from module load: an application can
 * hold two copies of the API (its ESM and CommonJS builds), which share the registration but
 * not their private proxies.
 */
function activeTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider() as TracerProvider & { getDelegate?: () => TracerProvider };
  const delegate = typeof provider.getDelegate === 'function' ? provider.getDelegate() : provider;
  if (delegate !== lastDelegate) {
    lastDelegate = delegate;
    const noop = delegate === NOOP_PROVIDER || delegate.constructor?.name === 'NoopTracerProvider';
    lastTracer = noop ? undefined : delegate.getTracer(TRACER_NAME);
  }
  return lastTracer;
}

/** Whether an OpenTelemetry SDK (a tracer provider) is registered now. */
export function tracingEnabled(): boolean {
  return activeTracer() !== undefined;
}

/** The propagation fields of a span, as stored in executions.trace_context (JSON text). */
export type TraceCarrier = Record<string, string>;

/**
 * Starts the span of an enqueue call (a child of the caller's active span), or returns
 * undefined while no SDK is registered. Its task and queue attributes are set when every row
 * shares them.
 */
export function startEnqueueSpan(rows: readonly { name: string; queue: string }[]): Span | undefined {
  const tracer = activeTracer();
  if (tracer === undefined || rows.length === 0) return undefined;
  const first = rows[0]!;
  let sameName = true;
  let sameQueue = true;
  for (const r of rows) {
    if (r.name !== first.name) sameName = false;
    if (r.queue !== first.queue) sameQueue = false;
  }
  const attributes: Attributes = { 'messaging.system': 'rhythm', 'messaging.batch.message_count': rows.length };
  if (sameName) attributes['rhythm.task'] = first.name;
  if (sameQueue) attributes['rhythm.queue'] = first.queue;
  return tracer.startSpan(sameName ? `enqueue ${first.name}` : 'enqueue', { kind: SpanKind.PRODUCER, attributes }, context.active());
}

/**
 * The span's context as JSON text for the executions it enqueues; null if it has none or no
 * propagator wrote any. A span the sampler dropped still passes its context on (flags 00), so
 * the attempts follow the producer's sampling decision instead of starting traces of their own.
 */
export function carrierJson(span: Span | undefined): string | null {
  if (span === undefined || !isSpanContextValid(span.spanContext())) return null;
  const carrier: TraceCarrier = {};
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier);
  for (const _ in carrier) return JSON.stringify(carrier);
  return null;
}

/** Ends an enqueue span: with the ids on success, with the error recorded on failure. */
export function endEnqueueSpan(span: Span | undefined, ids: readonly string[] | undefined, err?: unknown): void {
  if (span === undefined) return;
  if (ids !== undefined && ids.length === 1) span.setAttribute('rhythm.execution_id', ids[0]!);
  if (err !== undefined) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  }
  span.end();
}

/** Runs `fn` with the enqueue span around it; `fn` gets the context to store (or null). */
export async function tracedEnqueue<T extends string | string[]>(
  rows: readonly { name: string; queue: string }[],
  fn: (traceContext: string | null) => Promise<T>,
): Promise<T> {
  const span = startEnqueueSpan(rows);
  if (span === undefined) return fn(null);
  try {
    // The enqueue's own work (its statements, say) runs under the span: their spans are its children.
    const out = await context.with(trace.setSpan(context.active(), span), () => fn(carrierJson(span)));
    endEnqueueSpan(span, typeof out === 'string' ? [out] : out);
    return out;
  } catch (err) {
    endEnqueueSpan(span, undefined, err);
    throw err;
  }
}

/**
 * Calls a main-thread handler with its attempt's span active, so the spans the handler
 * starts (an HTTP call, a query) are children of the attempt.
 */
export function callInSpan<A extends unknown[], R>(span: Span, fn: (...args: A) => R, ...args: A): R {
  return context.with(trace.setSpan(context.active(), span), fn, undefined, ...args);
}

/** What an attempt span needs to know about its attempt. */
export interface AttemptInfo {
  id: string;
  name: string;
  attempt: number;
  /** The producer's trace context as stored (a parsed jsonb object), or null. */
  traceContext: TraceCarrier | null;
}

/** Starts the span of one attempt, at its hand-off; a child of the producer's context if stored. */
export function startAttemptSpan(queue: string, task: AttemptInfo): Span {
  const parent = task.traceContext === null ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, task.traceContext);
  const attributes: Attributes = {
    'rhythm.queue': queue,
    'rhythm.task': task.name,
    'rhythm.execution_id': task.id,
    'rhythm.attempt': task.attempt,
    'messaging.system': 'rhythm',
  };
  return (activeTracer() ?? trace.getTracer(TRACER_NAME)).startSpan(`run ${task.name}`, { kind: SpanKind.CONSUMER, attributes }, parent);
}

/**
 * How an attempt ended, as the span's `rhythm.outcome`: completed, failed (for good; a
 * timeout is a failure), retrying, cancelled, shutdown (handed back), lease-lost, or recorded
 * (a workflow activation, which writes its own outcome).
 */
export type AttemptOutcome = 'completed' | 'failed' | 'retrying' | 'cancelled' | 'shutdown' | 'lease-lost' | 'recorded';

/** Ends an attempt span with its outcome; a failure's error (stored JSON) is recorded on it. */
export function endAttemptSpan(span: Span, outcome: AttemptOutcome, errorJson: string | null): void {
  span.setAttribute('rhythm.outcome', outcome);
  if (errorJson !== null && outcome !== 'completed' && outcome !== 'recorded') {
    let error: TaskErrorInfo;
    try {
      error = JSON.parse(errorJson) as TaskErrorInfo;
    } catch {
      error = { name: 'Error', message: errorJson };
    }
    span.recordException({ name: error.name, message: error.message, stack: error.stack });
    span.setStatus({ code: SpanStatusCode.ERROR, message: `${error.name}: ${error.message}` });
  }
  span.end();
}
