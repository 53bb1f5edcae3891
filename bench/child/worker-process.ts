/**
 * A worker process started by the bench (wake-up latency and scaling scenarios): one system's
 * worker on one queue, a no-op handler, driven over IPC:
 *   parent -> child: start | clock | idle {ms} | stop
 *   child -> parent: ready | started | clock {t} | idle {cpuMs, ms} | run {k, s} | stopped {ran}
 * It stops when the parent goes away (IPC disconnect), so no worker outlives the bench.
 */
import { epochMs } from '../lib/common.js';

export type ChildSystem = 'rhythm' | 'graphile-worker' | 'pg-boss';

export interface ChildConfig {
  system: ChildSystem;
  url: string;
  schema: string;
  /** latency: report every handler start; drain: just count. */
  role: 'latency' | 'drain';
  queue?: string;
  concurrency?: number;
  batchSize?: number;
  graphile?: { concurrency: number; localQueue: number; batchDelay: number };
  pgboss?: { batchSize: number; workers: number; pollingIntervalSeconds: number };
}

type Msg = { type: string; [k: string]: unknown };

interface Running {
  stop(): Promise<void>;
}

const config = JSON.parse(process.env.RHYTHM_BENCH_CHILD ?? 'null') as ChildConfig | null;
if (!config || !process.send) {
  console.error('worker-process.js is started by the bench (npm run bench), with an IPC channel');
  process.exit(2);
}
const send = (m: Msg): Promise<void> =>
  new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send!(m, undefined, {}, () => resolve());
  });

let ran = 0;
function onRun(payload: unknown): void {
  ran++;
  if (config!.role === 'latency') void send({ type: 'run', k: (payload as { k: number }).k, s: epochMs() });
}

async function startRhythm(c: ChildConfig): Promise<Running> {
  const { Rhythm, Worker } = await import('../../src/index.js');
  const { benchLogger } = await import('../lib/common.js');
  const r = await Rhythm.init({ databaseUrl: c.url, schema: c.schema, logger: benchLogger(), autoMigrate: false });
  void send({ type: 'ready' });
  await started;
  const w = new Worker(r, { queue: c.queue ?? 'default', concurrency: c.concurrency, batchSize: c.batchSize });
  w.task('noop', (p: unknown) => {
    onRun(p);
    return p ?? null;
  });
  const running = w.start();
  running.catch((err) => console.error('rhythm worker failed', err));
  return {
    async stop() {
      await r.shutdown({ timeoutMs: 5_000 });
      await running.catch(() => undefined);
    },
  };
}

async function startGraphile(c: ChildConfig): Promise<Running> {
  const gw = await import('../peers/graphile-worker.js');
  void send({ type: 'ready' });
  await started;
  const runner = await gw.startRunner(c.url, c.schema, c.graphile ?? gw.LATENCY_CONFIG, onRun);
  return { stop: () => runner.stop() };
}

async function startPgBoss(c: ChildConfig): Promise<Running> {
  const pb = await import('../peers/pg-boss.js');
  const boss = await pb.openBoss(c.url, c.schema);
  void send({ type: 'ready' });
  await started;
  const cfg = c.pgboss ?? pb.LATENCY_CONFIG;
  for (let i = 0; i < cfg.workers; i++) {
    await boss.work(pb.QUEUE, { batchSize: cfg.batchSize, pollingIntervalSeconds: cfg.pollingIntervalSeconds }, async (jobs) => {
      for (const j of jobs) onRun(j.data);
    });
  }
  return { stop: () => pb.closeBoss(boss) };
}

let begin!: () => void;
const started = new Promise<void>((r) => (begin = r));
let stopping: Promise<void> | undefined;
let running: Running | undefined;

const boot = (async () => {
  switch (config.system) {
    case 'rhythm':
      running = await startRhythm(config);
      break;
    case 'graphile-worker':
      running = await startGraphile(config);
      break;
    case 'pg-boss':
      running = await startPgBoss(config);
      break;
  }
  void send({ type: 'started' });
})();
boot.catch((err) => {
  console.error('bench worker process failed to start:', err);
  process.exit(1);
});

function stop(): Promise<void> {
  stopping ??= (async () => {
    begin();
    await boot.catch(() => undefined);
    await running?.stop().catch((err) => console.error('bench worker process: stop failed', err));
    await send({ type: 'stopped', ran });
    if (process.connected) process.disconnect();
  })();
  return stopping;
}

process.on('message', (m: Msg) => {
  switch (m.type) {
    case 'start':
      begin();
      break;
    case 'clock':
      void send({ type: 'clock', id: m.id, t: epochMs() });
      break;
    case 'idle': {
      const ms = m.ms as number;
      const before = process.cpuUsage();
      setTimeout(() => {
        const d = process.cpuUsage(before);
        void send({ type: 'idle', cpuMs: (d.user + d.system) / 1000, ms });
      }, ms);
      break;
    }
    case 'stop':
      void stop();
      break;
  }
});
process.on('disconnect', () => {
  void stop().finally(() => process.exit(0));
});
