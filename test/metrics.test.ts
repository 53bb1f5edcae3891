/**
 * Prometheus metrics: a running worker's /metrics shows per queue and task the attempts
 * started, completed, failed, retried and cancelled, run and wait histograms, in-flight
 * gauges, claim and thread-batch sizes, and the queue depth read from Postgres, which is read
 * once per cache interval however many scrapes arrive.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import { Rhythm, Worker, type MetricsServer } from 'rhythm';
import { fixture, freshRhythm, until, type TestDatabase } from './helpers.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text format (the sample lines; comments skipped). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the sample with exactly these labels, or undefined. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const keys = Object.keys(labels);
  return samples.find(
    (s) => s.name === name && Object.keys(s.labels).length === keys.length && keys.every((k) => s.labels[k] === labels[k]),
  )?.value;
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

describe('metrics', () => {
  let db: TestDatabase;
  let r: Rhythm;
  let server: MetricsServer;

  beforeAll(async () => {
    ({ db, r } = await freshRhythm());
    await r.startInternalWorker({ tickMs: 50 }); // promotes the retry
    r.metrics({ depthCacheMs: 60_000 }); // two scrapes in this file fall in one interval
    server = await r.startMetricsServer({ port: 0 });
  });
  afterAll(async () => {
    await r?.shutdown(); // also closes the metrics server
    await db?.drop();
  });

  it('serves /metrics on 127.0.0.1 and 404 elsewhere', async () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);
    expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
  });

  it('counts outcomes per queue and task, times runs and waits, and reads the depth from Postgres', async () => {
    // Waiting in a queue nobody serves: two ready, one delayed.
    await r.enqueueMany([
      { name: 'idle-task', payload: {}, options: { queue: 'idle' } },
      { name: 'idle-task', payload: {}, options: { queue: 'idle' } },
      { name: 'idle-task', payload: {}, options: { queue: 'idle', delayMs: 3_600_000 } },
    ]);

    const w = new Worker(r, { queue: 'm' });
    w.task('ok', (p: { n: number }) => p.n);
    w.task('flaky', () => {
      throw new Error('always');
    });
    w.task(
      'blocks',
      (_p: unknown, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    );
    const t = new Worker(r, { queue: 'mt', threads: 1 });
    t.task('echo', fixture('echo.js'));
    const running = [w.start(), t.start()];

    const ok = await r.enqueueMany([1, 2, 3].map((n) => ({ name: 'ok', payload: { n }, options: { queue: 'm' } })));
    const flaky = await r.enqueue('flaky', {}, { queue: 'm', maxAttempts: 2 });
    const echoes = await r.enqueueMany([1, 2, 3, 4, 5].map((n) => ({ name: 'echo', payload: { n }, options: { queue: 'mt' } })));
    const blocked = await r.enqueue('blocks', {}, { queue: 'm' });
    await r.waitMany([...ok, flaky, ...echoes], { timeoutMs: 20_000 });

    // The blocked one is running: it is in flight.
    let s = await until('the blocked task in flight', async () => {
      const got = await scrape(server.url);
      return value(got, 'rhythm_executions_in_flight', { queue: 'm', task: 'blocks' }) === 1 ? got : undefined;
    });
    expect(await r.cancel(blocked)).toBe(true);
    s = await until('the cancellation counted', async () => {
      const got = await scrape(server.url);
      return value(got, 'rhythm_executions_cancelled_total', { queue: 'm', task: 'blocks' }) === 1 ? got : undefined;
    });

    const m = (task: string) => ({ queue: 'm', task });
    expect(value(s, 'rhythm_executions_started_total', m('ok'))).toBe(3);
    expect(value(s, 'rhythm_executions_completed_total', m('ok'))).toBe(3);
    expect(value(s, 'rhythm_executions_failed_total', m('ok'))).toBe(0);
    expect(value(s, 'rhythm_executions_started_total', m('flaky'))).toBe(2);
    expect(value(s, 'rhythm_executions_retried_total', m('flaky'))).toBe(1);
    expect(value(s, 'rhythm_executions_failed_total', m('flaky'))).toBe(1);
    expect(value(s, 'rhythm_executions_completed_total', m('flaky'))).toBe(0);
    expect(value(s, 'rhythm_executions_in_flight', m('blocks'))).toBe(0);
    expect(value(s, 'rhythm_executions_in_flight', m('ok'))).toBe(0);
    // Histograms: a count per attempt and the +Inf bucket holding all of them.
    expect(value(s, 'rhythm_execution_run_seconds_count', m('ok'))).toBe(3);
    expect(value(s, 'rhythm_execution_run_seconds_bucket', { ...m('ok'), le: '+Inf' })).toBe(3);
    expect(value(s, 'rhythm_execution_run_seconds_count', m('flaky'))).toBe(2);
    expect(value(s, 'rhythm_execution_wait_seconds_count', m('ok'))).toBe(3);
    expect(value(s, 'rhythm_execution_wait_seconds_sum', m('ok'))).toBeGreaterThanOrEqual(0);
    // Thread tasks: same counters, plus the pool's batches.
    const mt = { queue: 'mt', task: 'echo' };
    expect(value(s, 'rhythm_executions_completed_total', mt)).toBe(5);
    expect(value(s, 'rhythm_execution_run_seconds_count', mt)).toBe(5);
    expect(value(s, 'rhythm_thread_pool_batches_sent_total', { queue: 'mt' })).toBeGreaterThanOrEqual(1);
    expect(value(s, 'rhythm_thread_pool_batch_size_sum', { queue: 'mt' })).toBe(5);
    expect(value(s, 'rhythm_thread_pool_busy_threads', { queue: 'mt' })).toBe(0);
    expect(value(s, 'rhythm_thread_pool_busy_threads', { queue: 'm' })).toBeUndefined(); // no threads there
    // Claims: each one observed, and together they brought every attempt.
    expect(value(s, 'rhythm_claim_batch_size_count', { queue: 'm' })).toBeGreaterThanOrEqual(1);
    expect(value(s, 'rhythm_claim_batch_size_sum', { queue: 'm' })).toBe(3 + 2 + 1);
    expect(value(s, 'rhythm_claim_batch_size_sum', { queue: 'mt' })).toBe(5);

    // Depth from Postgres, and the queues this process serves even when empty.
    expect(value(s, 'rhythm_queue_depth', { queue: 'idle', status: 'queued' })).toBe(2);
    expect(value(s, 'rhythm_queue_depth', { queue: 'idle', status: 'scheduled' })).toBe(1);
    expect(value(s, 'rhythm_queue_depth', { queue: 'idle', status: 'running' })).toBe(0);
    expect(value(s, 'rhythm_queue_oldest_waiting_seconds', { queue: 'idle' })).toBeGreaterThanOrEqual(0);
    expect(value(s, 'rhythm_queue_depth', { queue: 'm', status: 'queued' })).toBe(0);
    expect(value(s, 'rhythm_queue_oldest_waiting_seconds', { queue: 'm' })).toBe(0);

    await Promise.all([w.stop(), t.stop()]);
    await Promise.all(running);
  });

  it('reads the depth once for scrapes within the cache interval', async () => {
    const before = await scrape(server.url);
    const reads = value(before, 'rhythm_queue_depth_reads_total');
    expect(reads).toBeGreaterThanOrEqual(1);
    await r.enqueue('idle-task', {}, { queue: 'idle' });
    const after = await scrape(server.url);
    expect(value(after, 'rhythm_queue_depth_reads_total')).toBe(reads);
    // Still the cached figure: the new task is not counted until the interval ends.
    expect(value(after, 'rhythm_queue_depth', { queue: 'idle', status: 'queued' })).toBe(
      value(before, 'rhythm_queue_depth', { queue: 'idle', status: 'queued' }),
    );

    // Without a cache every scrape reads again, and sees the new task.
    const other = await Rhythm.init({ databaseUrl: db.url, autoMigrate: false });
    try {
      const metrics = other.metrics({ depthCacheMs: 0 });
      const first = parse(await metrics.text());
      const second = parse(await metrics.text());
      expect(value(first, 'rhythm_queue_depth_reads_total')).toBe(1);
      expect(value(second, 'rhythm_queue_depth_reads_total')).toBe(2);
      expect(value(second, 'rhythm_queue_depth', { queue: 'idle', status: 'queued' })).toBe(3);
    } finally {
      await other.shutdown();
    }
  });

  it('a worker started before metrics were asked for records nothing', async () => {
    const other = await Rhythm.init({ databaseUrl: db.url, autoMigrate: false });
    try {
      const w = new Worker(other, { queue: 'before' });
      w.task('quiet', () => 1);
      const running = w.start();
      const id = await other.enqueue('quiet', {}, { queue: 'before' });
      expect((await other.wait(id, { timeoutMs: 15_000 })).status).toBe('completed');
      await w.stop();
      await running;
      const s = parse(await other.metrics().text());
      expect(s.filter((x) => x.labels.task === 'quiet')).toEqual([]);
      expect(value(s, 'rhythm_executions_completed_total', { queue: 'before', task: 'quiet' })).toBeUndefined();
    } finally {
      await other.shutdown();
    }
  });

  it('prints histograms as prom-client does, and resetMetrics() zeroes what tasks recorded', async () => {
    const other = await Rhythm.init({ databaseUrl: db.url, autoMigrate: false });
    try {
      const metrics = other.metrics();
      const q = metrics.forQueue('unit');
      const t = q.task('t "quoted"');
      // On bounds, between them, below the first and above the last.
      const seconds = [0.0005, 0.001, 0.003, 2.5, 12, 400];
      for (const s of seconds) {
        t.start(s * 1000);
        t.end(s * 1000);
      }
      t.settled('completed');
      q.claimed(0);
      q.claimed(7);
      // The same observations through prom-client's own histograms.
      const reference = new Registry();
      const run = new Histogram({
        name: 'rhythm_execution_run_seconds',
        help: 'Run time of an attempt, from its start to its outcome',
        labelNames: ['queue', 'task'],
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
        registers: [reference],
      });
      for (const s of seconds) run.labels('unit', 't "quoted"').observe(s);
      const claims = new Histogram({
        name: 'rhythm_claim_batch_size',
        help: 'Tasks returned by one claim statement',
        labelNames: ['queue'],
        buckets: [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
        registers: [reference],
      });
      claims.labels('unit').observe(0);
      claims.labels('unit').observe(7);
      const text = await metrics.text();
      for (const block of (await reference.metrics()).trim().split('\n\n')) expect(text).toContain(block);
      const json = await metrics.registry.getMetricsAsJSON();
      const claimJson = json.find((x) => x.name === 'rhythm_claim_batch_size');
      expect(claimJson?.type).toBe('histogram');
      expect(claimJson?.values).toContainEqual({
        metricName: 'rhythm_claim_batch_size_bucket',
        labels: { le: 5, queue: 'unit' },
        value: 1,
      });

      const task = { queue: 'unit', task: 't \\"quoted\\"' }; // as printed: parse() keeps the escapes
      expect(value(parse(text), 'rhythm_executions_completed_total', task)).toBe(1);
      metrics.registry.resetMetrics();
      t.start(1); // in flight again, after the reset
      const after = parse(await metrics.text());
      expect(value(after, 'rhythm_execution_run_seconds_count', task)).toBeUndefined();
      expect(value(after, 'rhythm_execution_wait_seconds_count', task)).toBe(1);
      expect(value(after, 'rhythm_executions_started_total', task)).toBe(1);
      expect(value(after, 'rhythm_executions_completed_total', task)).toBeUndefined();
      expect(value(after, 'rhythm_executions_in_flight', task)).toBe(1);
    } finally {
      await other.shutdown();
    }
  });

  it('refuses bad options, naming them', async () => {
    expect(() => r.metrics({ depthCacheMs: 1 })).toThrow(/only be given on the first call/);
    await expect(r.startMetricsServer({ port: 70_000 })).rejects.toThrow(/port/);
    await expect(r.startMetricsServer({ port: server.port })).rejects.toThrow(/cannot serve metrics on 127\.0\.0\.1:\d+/);
  });
});
