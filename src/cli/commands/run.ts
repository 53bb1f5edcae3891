/**
 * The long-running commands: `worker`, `start` (internal worker + workers) and `scheduler`
 * (internal worker only). They run until SIGTERM/SIGINT, then shut down gracefully: workers
 * stop claiming, in-flight tasks finish for up to --shutdown-timeout and the rest are handed
 * back (no zombie `running` rows), the pool closes, and an embedded Postgres this process
 * started is stopped. A second signal forces a fast stop (exit code 130).
 */
import type { Worker } from '../../worker.js';
import { schemaReady } from '../../sql/status.js';
import { loadTaskFolder, selectTasks, type TaskModule } from '../tasks.js';
import { openSession, CliError, type Session } from '../runtime.js';
import { CONNECTION_FLAGS, WORKER_FLAGS, WORKER_SETTINGS, CONNECTION_SETTINGS, type Command, type CommandContext } from '../command.js';

/** After a second signal: the handlers' abort grace (5 s), plus a little for the hand-backs. */
const FORCED_EXIT_MS = 7_000;

interface QueuePlan {
  queue: string;
  /** 0: modules run on the main thread. */
  threads: number;
  tasks: TaskModule[];
}

async function planQueues(ctx: CommandContext): Promise<QueuePlan[]> {
  const s = ctx.resolved.settings;
  const modules = await loadTaskFolder(s.tasks, ctx.where('tasks'));
  return s.queues.map((q) => ({
    queue: q.name,
    threads: q.threads ?? s.threads,
    tasks: q.only
      ? selectTasks(modules, q.only, `${ctx.where('queues')} (queue ${JSON.stringify(q.name)}, only)`, s.tasks)
      : selectTasks(modules, s.only, ctx.where('only'), s.tasks),
  }));
}

async function runUntilSignalled(ctx: CommandContext, kind: 'worker' | 'start' | 'scheduler'): Promise<number> {
  const s = ctx.resolved.settings;
  const log = ctx.log;
  const internal = kind !== 'worker' || s.internalWorker;
  const plan = kind === 'scheduler' ? [] : await planQueues(ctx);
  if (plan.length > 0) {
    log.info(
      {
        tasksDir: s.tasks,
        queues: plan.map((p) => ({
          queue: p.queue,
          runsOn: p.threads === 0 ? 'main thread' : `${p.threads} thread${p.threads === 1 ? '' : 's'}`,
          tasks: p.tasks.map((t) => t.name),
        })),
      },
      'task plan',
    );
  }

  // Signals are handled from here on, so one arriving during startup is not lost.
  const workers: Worker[] = [];
  let signal: NodeJS.Signals | undefined;
  let forced = false;
  let requestStop!: () => void;
  const stopRequested = new Promise<'stop'>((resolve) => (requestStop = () => resolve('stop')));
  const onSignal = (sig: NodeJS.Signals) => {
    if (signal === undefined) {
      signal = sig;
      log.info({ signal: sig, shutdownTimeoutMs: s.shutdownTimeout }, 'signal received: shutting down gracefully (send it again to force a fast stop)');
      requestStop();
    } else if (!forced) {
      forced = true;
      log.warn({ signal: sig }, 'second signal: forcing a fast stop (in-flight tasks are aborted and handed back)');
      // force: outcomes the database cannot take now (it is down) are given up, not retried;
      // their leases expire and recovery runs those tasks again.
      for (const w of workers) void w.stop({ timeoutMs: 0, force: true });
      // Whatever still waits on the database after the handlers' grace (a statement on a
      // silent connection, a pool that cannot close) must not keep us: exit anyway.
      setTimeout(() => {
        log.error({ afterMs: FORCED_EXIT_MS }, 'forced stop did not finish in time; exiting now');
        void session?.db.embedded?.stop(); // signalled now; the server stops on its own
        process.exit(130);
      }, FORCED_EXIT_MS).unref();
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  let session: Session | undefined;
  let failure: unknown;
  const runs: Promise<void>[] = [];
  try {
    session = await openSession(s, log, { autoMigrate: s.autoMigrate });
    const { Worker } = await import('../../worker.js');
    const { r } = session;
    if (!(await schemaReady(r.pool, r.names))) {
      throw new CliError(`schema ${JSON.stringify(r.names.schema)} has no Rhythm tables: run \`rhythm migrate\` (or start without --no-migrate)`);
    }
    if (signal === undefined && internal) {
      await r.startInternalWorker({ tickMs: s.tick, retentionMs: s.retention });
      log.info({ tickMs: s.tick, retentionMs: s.retention }, 'internal worker started');
    }
    if (signal === undefined) {
      for (const p of plan) {
        const w = new Worker(r, {
          queue: p.queue,
          threads: p.threads > 0 ? p.threads : undefined,
          concurrency: s.concurrency,
          batchSize: s.batchSize,
          visibilityTimeoutMs: s.visibilityTimeout,
          pollIntervalMs: s.pollInterval,
        });
        for (const t of p.tasks) w.task(t.name, p.threads > 0 ? t.url : t.handler);
        workers.push(w);
      }
      for (const w of workers) {
        runs.push(
          w.start().catch((err) => {
            throw new CliError(`worker for queue ${JSON.stringify(w.queue)} failed: ${(err as Error).message}`, { cause: err });
          }),
        );
      }
      log.info(
        { schema: r.names.schema, queues: plan.map((p) => p.queue), internalWorker: internal },
        `rhythm ${kind} running; stop with SIGTERM or SIGINT`,
      );
      const outcome = await Promise.race([stopRequested, ...(runs.length > 0 ? [Promise.all(runs).then(() => 'ended' as const)] : [])]);
      if (outcome === 'ended') throw new CliError('the workers stopped on their own');
    }
  } catch (err) {
    failure = err;
    log.error({ err }, `rhythm ${kind} failed; shutting down`);
  } finally {
    try {
      await session?.close({ timeoutMs: s.shutdownTimeout });
      await Promise.allSettled(runs);
    } catch (err) {
      failure ??= err;
      log.error({ err }, 'shutdown failed');
    }
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  if (failure !== undefined) throw failure;
  log.info({ signal }, forced ? 'forced stop complete' : 'graceful shutdown complete');
  return forced ? 130 : 0;
}

export const workerCommand: Command = {
  name: 'worker',
  flags: { ...CONNECTION_FLAGS, ...WORKER_FLAGS, 'internal-worker': { type: 'boolean' } },
  positionals: 0,
  settings: [...WORKER_SETTINGS, 'internalWorker'],
  run: (ctx) => runUntilSignalled(ctx, 'worker'),
};

export const startCommand: Command = {
  name: 'start',
  flags: { ...CONNECTION_FLAGS, ...WORKER_FLAGS },
  positionals: 0,
  settings: WORKER_SETTINGS,
  run: (ctx) => runUntilSignalled(ctx, 'start'),
};

export const schedulerCommand: Command = {
  name: 'scheduler',
  flags: {
    ...CONNECTION_FLAGS,
    tick: { type: 'string' },
    retention: { type: 'string' },
    'no-migrate': { type: 'boolean' },
  },
  positionals: 0,
  settings: [...CONNECTION_SETTINGS, 'autoMigrate', 'tick', 'retention'],
  run: (ctx) => runUntilSignalled(ctx, 'scheduler'),
};
