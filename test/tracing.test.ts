/**
 * OpenTelemetry traces: without an SDK nothing is stored with the executions; with one, each
 * enqueue call is a producer span whose W3C context is stored with its executions, and each
 * attempt (main thread or thread) is a consumer span, its child, carrying the queue, task,
 * execution id, attempt and outcome, with the error recorded on a failure; a main-thread
 * handler runs with its attempt's span active.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  SamplingDecision,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { type Rhythm, Worker } from 'rhythm';
import { fixture, freshRhythm, until, type TestDatabase } from './helpers.js';

describe('traces', () => {
  let db: TestDatabase;
  let r: Rhythm;
  const exporter = new InMemorySpanExporter();
  const contextManager = new AsyncLocalStorageContextManager();

  const traceContextOf = async (id: string): Promise<Record<string, string> | null> =>
    (await r.pool.query(`SELECT trace_context FROM ${r.names.executions} WHERE id = $1`, [id])).rows[0].trace_context;
  const spans = () => exporter.getFinishedSpans();
  const runSpans = (id: string) =>
    spans()
      .filter((s) => s.name.startsWith('run ') && s.attributes['rhythm.execution_id'] === id)
      .sort((a, b) => Number(a.attributes['rhythm.attempt']) - Number(b.attributes['rhythm.attempt']));
  const enqueueSpanOf = (id: string) => spans().find((s) => s.kind === SpanKind.PRODUCER && s.attributes['rhythm.execution_id'] === id);
  /** Runs one task on a worker of its own (started now, stopped after); its id. */
  const runOne = async (queue: string, name: string): Promise<string> => {
    const w = new Worker(r, { queue });
    w.task(name, () => 1);
    const running = w.start();
    try {
      const id = await r.enqueue(name, {}, { queue });
      await r.wait(id, { timeoutMs: 15_000 });
      return id;
    } finally {
      await w.stop();
      await running;
    }
  };
  const isChildOf = (child: ReadableSpan, parent: ReadableSpan) =>
    child.spanContext().traceId === parent.spanContext().traceId && child.parentSpanContext?.spanId === parent.spanContext().spanId;

  beforeAll(async () => {
    trace.disable();
    propagation.disable();
    ({ db, r } = await freshRhythm());
    await r.startInternalWorker({ tickMs: 50 }); // promotes retries
  });
  afterAll(async () => {
    await r?.shutdown();
    await db?.drop();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it('stores no trace context while no SDK is registered', async () => {
    const id = await r.enqueue('untraced', { n: 1 }, { queue: 'untraced' });
    const [many] = await r.enqueueMany([{ name: 'untraced', payload: {}, options: { queue: 'untraced' } }]);
    expect(await traceContextOf(id)).toBeNull();
    expect(await traceContextOf(many!)).toBeNull();
  });

  describe('with an SDK registered', () => {
    beforeAll(() => {
      context.setGlobalContextManager(contextManager.enable());
      propagation.setGlobalPropagator(new W3CTraceContextPropagator());
      trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    });

    it('a main-thread run is a child of its enqueue span, with its attributes and outcome', async () => {
      const w = new Worker(r, { queue: 'traced' });
      w.task('double', (p: { n: number }) => {
        trace.getTracer('test').startSpan('inside the handler').end(); // under the run span
        return p.n * 2;
      });
      const running = w.start();
      const id = await r.enqueue('double', { n: 21 }, { queue: 'traced' });
      expect((await r.wait(id, { timeoutMs: 15_000 })).result).toBe(42);
      await until('the run span', () => runSpans(id).length === 1);
      await w.stop();
      await running;

      const enq = enqueueSpanOf(id)!;
      expect(enq).toBeDefined();
      expect(enq.name).toBe('enqueue double');
      expect(enq.attributes).toMatchObject({ 'rhythm.queue': 'traced', 'rhythm.task': 'double', 'messaging.batch.message_count': 1 });
      const stored = await traceContextOf(id);
      expect(stored?.traceparent).toBe(`00-${enq.spanContext().traceId}-${enq.spanContext().spanId}-01`);

      const [run] = runSpans(id);
      expect(run!.name).toBe('run double');
      expect(run!.kind).toBe(SpanKind.CONSUMER);
      expect(isChildOf(run!, enq)).toBe(true);
      expect(run!.attributes).toMatchObject({
        'rhythm.queue': 'traced',
        'rhythm.task': 'double',
        'rhythm.execution_id': id,
        'rhythm.attempt': 1,
        'rhythm.outcome': 'completed',
      });
      expect(run!.status.code).toBe(SpanStatusCode.UNSET);
      expect(run!.events).toHaveLength(0);
      expect(isChildOf(spans().find((s) => s.name === 'inside the handler')!, run!)).toBe(true);
    });

    it('a failure is recorded on the span of each attempt: retrying, then failed', async () => {
      const w = new Worker(r, { queue: 'traced-fail' });
      w.task('boom', () => {
        throw new TypeError('kaboom');
      });
      const running = w.start();
      const id = await r.enqueue('boom', {}, { queue: 'traced-fail', maxAttempts: 2 });
      expect((await r.wait(id, { timeoutMs: 15_000 })).status).toBe('failed');
      await until('both run spans', () => runSpans(id).length === 2);
      await w.stop();
      await running;

      const enq = enqueueSpanOf(id)!;
      const [first, second] = runSpans(id);
      expect(first!.attributes).toMatchObject({ 'rhythm.attempt': 1, 'rhythm.outcome': 'retrying' });
      expect(second!.attributes).toMatchObject({ 'rhythm.attempt': 2, 'rhythm.outcome': 'failed' });
      for (const s of [first!, second!]) {
        expect(isChildOf(s, enq)).toBe(true);
        expect(s.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'TypeError: kaboom' });
        const exception = s.events.find((e) => e.name === 'exception');
        expect(exception?.attributes).toMatchObject({ 'exception.type': 'TypeError', 'exception.message': 'kaboom' });
      }
    });

    it('thread tasks get run spans too, successes and failures alike', async () => {
      const w = new Worker(r, { queue: 'traced-threads', threads: 1 });
      w.task('echo', fixture('echo.js'));
      w.task('throws', fixture('throws.js'));
      const running = w.start();
      const ok = await r.enqueue('echo', { hello: 'thread' }, { queue: 'traced-threads' });
      const bad = await r.enqueue('throws', { tag: 'traced' }, { queue: 'traced-threads', maxAttempts: 1 });
      await r.waitMany([ok, bad], { timeoutMs: 15_000 });
      await until('the thread run spans', () => runSpans(ok).length === 1 && runSpans(bad).length === 1);
      await w.stop();
      await running;

      const [okRun] = runSpans(ok);
      expect(isChildOf(okRun!, enqueueSpanOf(ok)!)).toBe(true);
      expect(okRun!.attributes).toMatchObject({
        'rhythm.queue': 'traced-threads',
        'rhythm.task': 'echo',
        'rhythm.execution_id': ok,
        'rhythm.outcome': 'completed',
      });
      const [badRun] = runSpans(bad);
      expect(isChildOf(badRun!, enqueueSpanOf(bad)!)).toBe(true);
      expect(badRun!.attributes).toMatchObject({ 'rhythm.task': 'throws', 'rhythm.outcome': 'failed' });
      expect(badRun!.status.code).toBe(SpanStatusCode.ERROR);
      expect(badRun!.events.find((e) => e.name === 'exception')?.attributes).toMatchObject({
        'exception.type': 'ThreadTaskError',
        'exception.message': 'thread task failed on attempt 1 (traced)',
      });
    });

    it("enqueueMany is one span, under the caller's active span, its context stored on every row", async () => {
      const tracer = trace.getTracer('test');
      const ids = await tracer.startActiveSpan('request', async (parent) => {
        try {
          return await r.enqueueMany([
            { name: 'a', payload: {}, options: { queue: 'batch' } },
            { name: 'b', payload: {}, options: { queue: 'batch' } },
            { name: 'a', payload: {}, options: { queue: 'batch' } },
          ]);
        } finally {
          parent.end();
        }
      });
      const parent = spans().find((s) => s.name === 'request')!;
      const batch = spans().filter((s) => s.kind === SpanKind.PRODUCER && s.attributes['messaging.batch.message_count'] === 3);
      expect(batch).toHaveLength(1);
      expect(batch[0]!.name).toBe('enqueue'); // mixed names
      expect(batch[0]!.attributes['rhythm.queue']).toBe('batch');
      expect(batch[0]!.attributes['rhythm.task']).toBeUndefined();
      expect(isChildOf(batch[0]!, parent)).toBe(true);
      const stored = await Promise.all(ids.map(traceContextOf));
      for (const c of stored) expect(c?.traceparent).toBe(`00-${batch[0]!.spanContext().traceId}-${batch[0]!.spanContext().spanId}-01`);
    });

    it('an enqueue with a uniqueKey stores its context too', async () => {
      const id = await r.enqueue('unique', {}, { queue: 'unique', uniqueKey: 'traced-key' });
      const enq = enqueueSpanOf(id)!;
      expect((await traceContextOf(id))?.traceparent).toBe(`00-${enq.spanContext().traceId}-${enq.spanContext().spanId}-01`);
    });

    it('without a propagator nothing is stored, and the run span starts its own trace', async () => {
      propagation.disable();
      try {
        const id = await runOne('no-propagator', 'solo');
        expect(runSpans(id)).toHaveLength(1);
        expect(enqueueSpanOf(id)).toBeDefined();
        expect(await traceContextOf(id)).toBeNull();
        expect(runSpans(id)[0]!.parentSpanContext).toBeUndefined();
      } finally {
        propagation.setGlobalPropagator(new W3CTraceContextPropagator());
      }
    });

    it('a sampled-out enqueue passes its decision on: the attempts are not recorded either', async () => {
      const sampled = trace.getTracerProvider();
      trace.disable();
      const dropping = new InMemorySpanExporter();
      trace.setGlobalTracerProvider(
        new BasicTracerProvider({
          // Drops enqueue spans; any other root is kept, a child follows its parent.
          sampler: new ParentBasedSampler({
            root: {
              shouldSample: (_c, _t, name) => ({
                decision: name.startsWith('enqueue') ? SamplingDecision.NOT_RECORD : SamplingDecision.RECORD_AND_SAMPLED,
              }),
              toString: () => 'no enqueues',
            },
          }),
          spanProcessors: [new SimpleSpanProcessor(dropping)],
        }),
      );
      try {
        const id = await runOne('sampled-out', 'quiet');
        expect((await traceContextOf(id))?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
        // A root run span would be kept: none was, since it followed the enqueue's decision (it ended before the outcome was written).
        expect(dropping.getFinishedSpans()).toEqual([]);
      } finally {
        trace.disable();
        trace.setGlobalTracerProvider(sampled);
      }
    });

    it('an enqueue the database refuses ends its span with the error', async () => {
      const client = await r.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT 1/0').catch(() => undefined); // the transaction is now aborted
        await expect(r.enqueue('in-aborted-tx', {}, { queue: 'refused', client })).rejects.toThrow(/aborted/);
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
      const span = spans().find((s) => s.name === 'enqueue in-aborted-tx')!;
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.events.some((e) => e.name === 'exception')).toBe(true);
    });
  });
});
