/**
 * The long-running commands: `worker`, `start` (internal worker + workers) and `scheduler`
 * (internal worker only). They run until SIGTERM/SIGINT, then shut down gracefully: workers
 * stop claiming, in-flight tasks finish for up to --shutdown-timeout and the rest are handed
 * back (no zombie `running` rows), the pool closes, and an embedded Postgres this process
 * started is stopped. A second signal forces a fast stop (exit code 130).
 */
import type { Worker } from '../../worker.js';
import { handleShutdownSignals } from '../../lifecycle/signals.js';
import { loadTaskFolder, selectTasks, type FlowFile, type TaskModule } from '../tasks.js';
import { openSession, requireMigrated, type Session } from '../runtime.js';
import { CliError } from '../errors.js';
import { RhythmValidationError } from '../../errors.js';
import type { ScheduleOptions } from '../../schedules/schedules.js';
import { WORKER_SETTINGS, CONNECTION_SETTINGS, type Command, type CommandContext } from '../command.js';

interface QueuePlan {
  queue: string;
  /** 0: modules run on the main thread. */
  threads: number;
  tasks: TaskModule[];
  /**
   * A workflow runs on the queue it was started on (startWorkflow's `queue`), so every queue
   * served gets the folder's workflows, less those its --only leaves out.
   */
  workflows: FlowFile[];
}

async function planQueues(ctx: CommandContext): Promise<QueuePlan[]> {
  const s = ctx.settings;
  const folder = await loadTaskFolder(s.tasks, ctx.where('tasks'));
  const all: (TaskModule | FlowFile)[] = [...folder.tasks, ...folder.workflows];
  return s.queues.map((q) => {
    const chosen = q.only
      ? selectTasks(all, q.only, `${ctx.where('queues')} (queue ${JSON.stringify(q.name)}, only)`, s.tasks)
      : selectTasks(all, s.only, ctx.where('only'), s.tasks);
    return {
      queue: q.name,
      threads: q.threads ?? s.threads,
      tasks: chosen.filter((c): c is TaskModule => 'url' in c),
      workflows: chosen.filter((c): c is FlowFile => !('url' in c)),
    };
  });
}

/**
 * The config file's "schedules", each checked now, so that a mistake stops the command before
 * it connects and names the file; undefined when the file declares none (then nothing is synced).
 */
async function declaredSchedules(ctx: CommandContext): Promise<Record<string, ScheduleOptions> | undefined> {
  const file = ctx.resolved.file;
  if (file?.schedules === undefined) return undefined;
  const { toScheduleRow } = await import('../../schedules/schedules.js');
  for (const [name, options] of Object.entries(file.schedules)) {
    try {
      toScheduleRow(name, options as ScheduleOptions, true);
    } catch (err) {
      if (err instanceof RhythmValidationError) throw new RhythmValidationError(`${file.path}: "schedules": ${err.message}`);
      throw err;
    }
  }
  return file.schedules as Record<string, ScheduleOptions>;
}

async function runUntilSignalled(ctx: CommandContext, kind: 'worker' | 'start' | 'scheduler'): Promise<number> {
  const s = ctx.settings;
  const log = ctx.log;
  const internal = kind !== 'worker' || s.internalWorker;
  const plan = kind === 'scheduler' ? [] : await planQueues(ctx);
  const schedules = internal ? await declaredSchedules(ctx) : undefined;
  if (plan.length > 0) {
    log.info(
      {
        tasksDir: s.tasks,
        queues: plan.map((p) => ({
          queue: p.queue,
          runsOn: p.threads === 0 ? 'main thread' : `${p.threads} thread${p.threads === 1 ? '' : 's'}`,
          tasks: p.tasks.map((t) => t.name),
          workflows: p.workflows.map((f) => f.name),
        })),
      },
      'task plan',
    );
  }

  // Signals are handled from here on, so one arriving during startup is not lost: the stop
  // waits for the session being opened, then closes it.
  let session: Session | undefined;
  let opening: Promise<Session | undefined> | undefined;
  let exitCode!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (exitCode = resolve));
  const signals = handleShutdownSignals({
    log,
    timeoutMs: s.shutdownTimeout,
    shutdown: async (o) => (await opening?.catch(() => undefined))?.close(o),
    exit: exitCode,
    // signalled now; the server stops on its own
    beforeForcedExit: () => void session?.db.embedded?.stop(),
  });

  const workers: Worker[] = [];
  const runs: Promise<void>[] = [];
  try {
    const opened = openSession(s, log, { autoMigrate: s.autoMigrate });
    opening = opened;
    session = await opened;
    const { Worker } = await import('../../worker.js');
    const { r } = session;
    await requireMigrated(r, 'run `rhythm migrate` (or start without --no-migrate)');
    // Before the workers start: they record into the metrics only if these exist by then.
    if (signals.signal === undefined && s.metricsPort !== undefined) {
      const metrics = await r.startMetricsServer({ port: s.metricsPort, host: s.metricsHost });
      log.info({ url: metrics.url }, 'serving Prometheus metrics');
    }
    if (signals.signal === undefined && schedules !== undefined) {
      // Upserts the declared schedules and removes those an earlier sync declared and the file
      // no longer does; schedules made with r.schedule() (or `rhythm` elsewhere) are left alone.
      const synced = await r.syncSchedules(schedules);
      log.info({ file: ctx.resolved.file!.path, ...synced }, 'cron schedules of the config file synced');
    }
    if (signals.signal === undefined && internal) {
      const options = { tickMs: s.tick, retentionMs: s.retention, failedRetentionMs: s.failedRetention };
      await r.startInternalWorker(options);
      log.info(options, 'internal worker started');
    }
    if (signals.signal === undefined) {
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
        // Activations run on the main thread whatever --threads says.
        for (const f of p.workflows) w.workflow(f.name, f.file);
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
        { schema: r.schema, queues: plan.map((p) => p.queue), internalWorker: internal },
        `rhythm ${kind} running; stop with SIGTERM or SIGINT`,
      );
    }
    const ended = runs.length > 0 ? Promise.all(runs).then(() => 'ended' as const) : new Promise<never>(() => undefined);
    const outcome = await Promise.race([stopped, ended]);
    if (outcome === 'ended' && signals.signal === undefined) throw new CliError('the workers stopped on their own');
    // A signal: the shared handler stops everything and settles `stopped` with the exit code.
    return await stopped;
  } catch (err) {
    if (signals.signal !== undefined) return await stopped;
    log.error({ err }, `rhythm ${kind} failed; shutting down`);
    try {
      await (session ?? (await opening?.catch(() => undefined)))?.close({ timeoutMs: s.shutdownTimeout });
      await Promise.allSettled(runs);
    } catch (closeErr) {
      log.error({ err: closeErr }, 'shutdown failed');
    }
    throw err;
  } finally {
    signals.dispose();
  }
}

const SIGNALS = `Runs until SIGTERM or SIGINT, then shuts down gracefully: no new claims, in-flight tasks finish (up to --shutdown-timeout), the rest are handed back. A second signal forces a fast stop (exit code 130).`;

export const workerCommand: Command = {
  name: 'worker',
  summary: 'serve queues with the task modules and .flow workflows of a folder (add --internal-worker to also schedule)',
  description: `Serves one or more queues with the task modules of a folder. Each queue has its own thread pool: \`--queue default:2 --queue high-cpu:8\`.

The folder's *.flow files are workflows named after the file (order.flow is "order"), served on every queue of the worker (a workflow runs on the queue \`rhythm start-workflow --queue\` gave it); their activations run on the main thread. --only picks tasks and workflows alike. A .flow file that does not compile stops the start with each problem as file:line:col (exit code 2).

${SIGNALS}`,
  settings: [...WORKER_SETTINGS, 'internalWorker'],
  epilog: `Examples:
  rhythm worker --tasks dist/tasks --queue default:4
  rhythm worker --tasks dist/tasks --queue high-cpu:8 --only sha256-chain
  rhythm worker --tasks dist/tasks --queue orders:2 --only order,reserve,charge   # order.flow + two task modules
  rhythm worker --tasks dist/tasks --queue ml-tasks:1 --queue default:2 --internal-worker
  rhythm worker --tasks dist/tasks --queue default:4 --metrics-port 9464 --metrics-host 0.0.0.0`,
  run: (ctx) => runUntilSignalled(ctx, 'worker'),
};

export const startCommand: Command = {
  name: 'start',
  summary: 'one process for everything: internal worker + workers (the unified pattern)',
  description: `The unified process: the internal worker plus workers for the configured queues, in one process (same as \`rhythm worker --internal-worker\`). The --tasks folder's task modules and *.flow workflows are served as \`rhythm worker\` serves them.

${SIGNALS}`,
  settings: WORKER_SETTINGS,
  epilog: `Example:
  rhythm start --tasks dist/tasks --queue default:2 --queue high-cpu:2`,
  run: (ctx) => runUntilSignalled(ctx, 'start'),
};

export const schedulerCommand: Command = {
  name: 'scheduler',
  summary: 'run only the internal worker: delays, retries, lease recovery, pruning',
  description: `Runs the internal worker alone (the split-scheduler pattern): moves due delayed tasks and retries into their queues, fires cron schedules, recovers tasks whose worker died (expired leases), and prunes old history (failed executions after --failed-retention, the rest after --retention). Safe to run in several processes at once (every statement uses SKIP LOCKED). Runs until SIGTERM or SIGINT.

At start it syncs the cron schedules the config file declares under "schedules" (as every command running the internal worker does): creates and updates them, and removes those an earlier sync declared that the file no longer does. Schedules made with r.schedule() are never removed. A config file without "schedules" syncs nothing; "schedules": {} removes every declared one.`,
  settings: [...CONNECTION_SETTINGS, 'autoMigrate', 'tick', 'retention', 'failedRetention', 'metricsPort', 'metricsHost'],
  run: (ctx) => runUntilSignalled(ctx, 'scheduler'),
};
