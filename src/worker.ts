/**
 * A task worker: serves the tasks registered on it from one queue. Function handlers run on
 * the main thread; module handlers run on the Worker's own Piscina pool (`threads`), so a
 * `high-cpu` queue gets its own threads.
 */
import { EventEmitter } from 'node:events';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path, { basename } from 'node:path';
import type { ResourceLimits } from 'node:worker_threads';
import { Dispatcher } from './dispatcher/dispatcher.js';
import { MainThreadExecutor } from './dispatcher/main-thread-executor.js';
import { WorkflowExecutor } from './dispatcher/workflow-executor.js';
import { compileFlow, type CompiledFlow } from './workflows/index.js';
import { FlowSyntaxError } from './workflows/errors.js';
import { storeSources } from './sql/workflow-sources.js';
import type { Executor } from './contract/executor.js';
import { ThreadPool } from './threads/thread-pool.js';
import type { ModuleProblem } from './threads/protocol.js';
import type { Listener } from './db/listener.js';
import { retryDelayMs } from './backoff.js';
import type { Rhythm, ShutdownOptions, WorkerHost } from './rhythm.js';
import { ModuleLoadError, RhythmError, RhythmValidationError } from './errors.js';
import { checkInt, checkKnownKeys, checkQueueName, checkStorableText, checkTaskName, describe } from './validate.js';
import type { TaskHandler } from './types.js';
import { isTaskDefinition, type TaskDefinition } from './task-definition.js';
import type { EventSink, ExecutionEvent } from './dispatcher/events.js';
import { tracingEnabled } from './observability/tracing.js';

/** Events of the executions this worker ran; each fires once per attempt outcome. */
export interface WorkerEvents {
  /** The handler returned; its result is stored. */
  completed: [execution: ExecutionEvent];
  /** The attempt failed and no attempt is left (or the error was not retryable). */
  failed: [execution: ExecutionEvent];
  /** The attempt failed and the execution will be retried after its backoff. */
  retrying: [execution: ExecutionEvent];
  /** The execution was cancelled while this worker ran it (its handler's signal aborted). */
  cancelled: [execution: ExecutionEvent];
}

export interface WorkerOptions {
  /** Queue to serve (default "default"). */
  queue?: string;
  /** Threads of this worker's own Piscina pool, for module tasks (default: none). */
  threads?: number;
  /**
   * Most function handlers running at once on the main thread (default 100): how much I/O to
   * overlap. With threads, also the most tasks handed to the threads at once (default: as many
   * as keep each thread a few batches ahead). How many tasks are claimed ahead is not set
   * here: it follows the measured finish rate.
   */
  concurrency?: number;
  /**
   * Most payload bytes held at once (default 64 MiB): a claim takes tasks until their payloads
   * reach it, so large payloads cannot exhaust the worker's memory. A task whose payload alone
   * exceeds it is claimed when the worker holds nothing else.
   */
  maxHeldBytes?: number;
  /** Most tasks per claim statement (default 500). A worker holds at most 8 claims' worth of tasks. */
  batchSize?: number;
  /** Fallback poll when no NOTIFY arrives (default 2,000 ms). */
  pollIntervalMs?: number;
  /** Lease (visibility timeout) of claimed tasks, extended every third of it (default 30,000 ms). */
  visibilityTimeoutMs?: number;
  /** Time a handler gets after its abort before it is killed or abandoned (default 5,000 ms). */
  abortGraceMs?: number;
  /**
   * Node flags for each thread (Worker `execArgv`). Default: this process's own flags, less
   * the process-wide ones threads refuse. Task modules in TypeScript need no flag: when tsx is
   * installed, each thread registers it itself (see README, "Task modules in TypeScript").
   */
  threadExecArgv?: string[];
  /** process.env of each thread (default: a copy of this process's environment). */
  threadEnv?: Record<string, string>;
  /** Piscina resourceLimits for each thread (e.g. maxOldGenerationSizeMb). */
  resourceLimits?: ResourceLimits;
  /** Name in leases and logs (default host:pid:queue:random). */
  workerId?: string;
  /**
   * Most executions of one group (enqueue's `group` option) running at once, across every
   * worker process of the queue (give all of them the same value). Default: no limit.
   */
  groupConcurrency?: number;
}

const DEFAULT_CONCURRENCY = 100;
const DEFAULT_BATCH_SIZE = 500;
/** Most tasks held, in claims of batchSize. */
const HELD_CLAIMS = 8;

const WORKER_OPTIONS = [
  'queue',
  'threads',
  'concurrency',
  'maxHeldBytes',
  'batchSize',
  'pollIntervalMs',
  'visibilityTimeoutMs',
  'abortGraceMs',
  'resourceLimits',
  'threadExecArgv',
  'threadEnv',
  'workerId',
  'groupConcurrency',
] as const;

export class Worker extends EventEmitter<WorkerEvents> {
  readonly queue: string;
  private readonly host: WorkerHost;
  private readonly handlers = new Map<string, TaskHandler>();
  private readonly modules = new Map<string, string>();
  private readonly flows = new Map<string, CompiledFlow>();
  private readonly options: WorkerOptions;
  private dispatcher: Dispatcher | undefined;
  private executors: Executor[] = [];
  private running: Promise<void> | undefined;
  private stopTimeoutMs: number | undefined;

  constructor(rhythm: Rhythm, options: WorkerOptions = {}) {
    super();
    if (options === null || typeof options !== 'object')
      throw new RhythmValidationError(`Worker options must be an object, got ${describe(options)}`);
    checkKnownKeys('Worker', options, WORKER_OPTIONS);
    this.queue = checkQueueName(options.queue ?? 'default');
    checkInt('threads', options.threads, 1, 1024);
    checkInt('concurrency', options.concurrency, 1, 100_000);
    checkInt('batchSize', options.batchSize, 1, 10_000);
    checkInt('maxHeldBytes', options.maxHeldBytes, 1, Number.MAX_SAFE_INTEGER);
    checkInt('pollIntervalMs', options.pollIntervalMs, 10);
    checkInt('visibilityTimeoutMs', options.visibilityTimeoutMs, 1_000);
    checkInt('abortGraceMs', options.abortGraceMs, 0);
    checkInt('groupConcurrency', options.groupConcurrency, 1, 100_000);
    checkResourceLimits(options.resourceLimits);
    checkThreadOptions(options);
    if (options.workerId !== undefined) {
      if (typeof options.workerId !== 'string' || options.workerId.trim() === '' || options.workerId.length > 200) {
        throw new RhythmValidationError(
          `option workerId must be a non-empty string of at most 200 characters, got ${describe(options.workerId)}`,
        );
      }
      checkStorableText('option workerId', options.workerId);
    }
    this.host = rhythm;
    this.options = options;
  }

  /**
   * Registers a task: a function (runs on the main thread) or a module URL/path whose default
   * (or `handler`) export runs on this worker's threads.
   */
  task<P, R>(task: TaskDefinition<P, R>, handler: TaskHandler<P, R> | URL | string): this;
  task(name: string, handler: TaskHandler | URL | string): this;
  task(task: string | TaskDefinition, handler: TaskHandler | URL | string): this {
    const name = isTaskDefinition(task) ? task.name : task;
    checkTaskName(name);
    if (isTaskDefinition(task) && (task.defaults.queue ?? 'default') !== this.queue) {
      throw new RhythmValidationError(
        `task ${JSON.stringify(name)} is defined for queue ${JSON.stringify(task.defaults.queue ?? 'default')}, but this worker serves queue ${JSON.stringify(this.queue)}: it would never receive it`,
      );
    }
    if (this.running) throw new RhythmError(`cannot register task ${JSON.stringify(name)}: the worker is already started`);
    if (this.handlers.has(name) || this.modules.has(name)) {
      throw new RhythmValidationError(`task ${JSON.stringify(name)} is already registered on this worker`);
    }
    if (this.flows.has(name))
      throw new RhythmValidationError(
        `${JSON.stringify(name)} is already registered on this worker as a workflow (a queue's tasks and workflows share one set of names)`,
      );
    if (typeof handler === 'function') {
      this.handlers.set(name, handler);
      return this;
    }
    if (!(handler instanceof URL) && typeof handler !== 'string') {
      throw new RhythmValidationError(
        `task ${JSON.stringify(name)}: handler must be a function, a module URL or a path, got ${describe(handler)}`,
      );
    }
    if (this.options.threads === undefined) {
      throw new RhythmValidationError(
        `task ${JSON.stringify(name)} is a module, which runs on threads: give this Worker a "threads" option`,
      );
    }
    let url: URL;
    try {
      url = toModuleUrl(handler);
    } catch {
      throw new RhythmValidationError(`task ${JSON.stringify(name)}: ${describe(handler)} is neither a file path nor a valid URL`);
    }
    // Threads import the module themselves: only a local file is sure to load the same way there.
    if (url.protocol !== 'file:') {
      throw new RhythmValidationError(
        `task ${JSON.stringify(name)}: a task module must be a local file (a path or a file: URL), got a ${url.protocol} URL`,
      );
    }
    const file = fileURLToPath(url);
    if (!existsSync(file)) throw new RhythmValidationError(`task ${JSON.stringify(name)}: module not found at ${file}`);
    if (!statSync(file).isFile()) throw new RhythmValidationError(`task ${JSON.stringify(name)}: ${file} is a folder, not a module file`);
    this.modules.set(name, url.href);
    return this;
  }

  /**
   * Registers a workflow: a .flow script (a file URL or path), compiled now, so a script that
   * does not compile throws a FlowSyntaxError listing every problem. Its activations run on
   * the main thread; the tasks it starts run wherever their queue is served.
   */
  workflow(name: string, file: URL | string): this {
    checkTaskName(name);
    if (this.running) throw new RhythmError(`cannot register workflow ${JSON.stringify(name)}: the worker is already started`);
    if (this.flows.has(name)) throw new RhythmValidationError(`workflow ${JSON.stringify(name)} is already registered on this worker`);
    if (this.handlers.has(name) || this.modules.has(name)) {
      throw new RhythmValidationError(
        `${JSON.stringify(name)} is already registered on this worker as a task (a queue's tasks and workflows share one set of names)`,
      );
    }
    const where = flowFile(`workflow ${JSON.stringify(name)}`, file);
    this.flows.set(name, compileFlow(readFileSync(where, 'utf8'), basename(where)));
    this.host.localWorkflows.add(name);
    return this;
  }

  /**
   * Registers every `*.flow` file of a folder as a workflow named after the file (`order.flow`
   * is "order"). Every file is compiled; the problems of all of them are reported at once.
   */
  workflows(dir: URL | string): this {
    let folder: string;
    try {
      folder = fileURLToPath(toModuleUrl(dir));
    } catch {
      throw new RhythmValidationError(`workflows: ${describe(dir)} is neither a folder path nor a file: URL`);
    }
    if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new RhythmValidationError(`workflows: no folder at ${folder}`);
    const files = readdirSync(folder)
      .filter((f) => f.endsWith('.flow'))
      .sort();
    if (files.length === 0) throw new RhythmValidationError(`workflows: ${folder} has no .flow files`);
    const problems: FlowSyntaxError[] = [];
    for (const file of files) {
      try {
        this.workflow(file.slice(0, -'.flow'.length), path.join(folder, file));
      } catch (err) {
        if (!(err instanceof FlowSyntaxError)) throw err;
        problems.push(err);
      }
    }
    if (problems.length === 1) throw problems[0];
    if (problems.length > 1)
      throw new RhythmValidationError(`${problems.length} workflow files do not compile:\n${problems.map((p) => p.message).join('\n')}`);
    return this;
  }

  /** Starts claiming and running tasks; resolves once the worker has stopped. */
  start(): Promise<void> {
    if (this.running) throw new RhythmError('this worker is already started');
    if (this.handlers.size + this.modules.size + this.flows.size === 0) {
      throw new RhythmValidationError(
        `worker for queue ${JSON.stringify(this.queue)} has no tasks registered (nor workflows): register them with worker.task() or worker.workflow()`,
      );
    }
    const untrack = this.host.track(this);
    this.running = this.run().finally(untrack);
    return this.running;
  }

  /** Stops claiming, lets in-flight tasks finish (until timeoutMs), then hands the rest back. */
  async stop(options: ShutdownOptions = {}): Promise<void> {
    const timeoutMs = checkInt('timeoutMs', options.timeoutMs, 0) ?? 30_000;
    if (!this.running) return;
    this.stopTimeoutMs = timeoutMs;
    if (options.force) this.dispatcher?.abandonWrites();
    await this.dispatcher?.stop(timeoutMs);
    await this.running.catch(() => undefined);
  }

  /** The shared LISTEN connection; retried through a database outage until stop(). */
  private async connectListener(): Promise<Listener | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.host.listener();
      } catch (err) {
        if (this.stopTimeoutMs !== undefined) return undefined;
        const delay = retryDelayMs(attempt);
        this.host.log.warn(
          { error: (err as Error).message, queue: this.queue, retryInMs: delay },
          'cannot connect the LISTEN connection; retrying',
        );
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * Stores the registered workflows' sources, so any worker can resume a workflow on the version
   * it started on (and startWorkflow elsewhere knows the names); retried through a database
   * outage until stop(). False if stopped first.
   */
  private async storeWorkflowSources(): Promise<boolean> {
    const sources = [...this.flows].map(([name, f]) => ({ name, hash: f.hash, fileName: f.fileName, source: f.source }));
    for (let attempt = 0; sources.length > 0; attempt++) {
      try {
        await storeSources(this.host.pool, this.host.names, sources);
        break;
      } catch (err) {
        if (this.stopTimeoutMs !== undefined) return false;
        const delay = retryDelayMs(attempt);
        this.host.log.warn(
          { error: (err as Error).message, queue: this.queue, retryInMs: delay },
          'cannot store the workflow sources; retrying',
        );
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    return true;
  }

  /** Opens the claim/heartbeat connections before the first task needs one. */
  private async warmLeasePool(): Promise<void> {
    const clients = await Promise.allSettled([this.host.leasePool.connect(), this.host.leasePool.connect()]);
    for (const c of clients) if (c.status === 'fulfilled') c.value.release();
  }

  private async run(): Promise<void> {
    const o = this.options;
    const threads = this.modules.size > 0 ? o.threads! : 0;
    const batchSize = o.batchSize ?? DEFAULT_BATCH_SIZE;
    const concurrency = o.concurrency ?? DEFAULT_CONCURRENCY;
    // Claimed and not yet written: a bound on memory and leases, far above what the
    // finish-rate claim-ahead asks for.
    const maxHeld = HELD_CLAIMS * batchSize + (this.handlers.size > 0 ? concurrency : 0);
    // Decided once per run: a worker started before metrics or an SDK existed records none.
    const metrics = this.host.metricsFor(this.queue);
    const tracing = tracingEnabled();
    const byName = new Map<string, Executor>();
    const limits = new Map<Executor, number>();
    const pools: ThreadPool[] = [];
    if (this.handlers.size > 0) {
      const main = new MainThreadExecutor(this.handlers);
      this.executors.push(main);
      limits.set(main, concurrency);
      for (const name of this.handlers.keys()) byName.set(name, main);
    }
    if (threads > 0) {
      const pool = new ThreadPool(
        this.modules,
        {
          queue: this.queue,
          threads,
          slots: maxHeld,
          resourceLimits: o.resourceLimits,
          execArgv: o.threadExecArgv,
          env: o.threadEnv,
          metrics,
        },
        this.host.log,
      );
      this.executors.push(pool);
      pools.push(pool);
      limits.set(pool, o.concurrency ?? Number.POSITIVE_INFINITY);
      for (const name of this.modules.keys()) byName.set(name, pool);
    }
    if (this.flows.size > 0) {
      const flows = new WorkflowExecutor(this.flows, {
        pool: this.host.pool,
        names: this.host.names,
        log: this.host.log,
        backoff: this.host.backoff,
      });
      this.executors.push(flows);
      for (const name of this.flows.keys()) byName.set(name, flows);
    }
    try {
      // Every thread module loads before anything is claimed: one that cannot load stops the
      // start, instead of failing each of its tasks attempt after attempt.
      for (const pool of pools) await this.checkModules(pool);
      const listener = await this.connectListener();
      if (listener === undefined) return; // stopped while the database was unreachable
      if (!(await this.storeWorkflowSources())) return;
      await this.warmLeasePool();
      this.dispatcher = new Dispatcher(
        {
          queue: this.queue,
          workerId: o.workerId ?? defaultWorkerId(this.queue),
          executors: byName,
          limits,
          maxHeld,
          maxHeldBytes: o.maxHeldBytes ?? 64 * 1024 * 1024,
          batchSize,
          pollIntervalMs: o.pollIntervalMs ?? 2_000,
          leaseMs: o.visibilityTimeoutMs ?? 30_000,
          abortGraceMs: o.abortGraceMs ?? 5_000,
          groupConcurrency: o.groupConcurrency,
          events: this.eventSink(),
          metrics,
          tracing,
        },
        {
          pool: this.host.pool,
          leasePool: this.host.leasePool,
          names: this.host.names,
          listener,
          log: this.host.log,
          backoff: this.host.backoff,
        },
      );
      this.host.log.info(
        {
          queue: this.queue,
          tasks: [...this.handlers.keys(), ...this.modules.keys()],
          workflows: [...this.flows.keys()],
          threads,
          concurrency: o.concurrency ?? (this.handlers.size > 0 ? concurrency : undefined),
          batchSize,
        },
        'worker started',
      );
      const running = this.dispatcher.run();
      // stop() called while we were connecting: stop at once.
      if (this.stopTimeoutMs !== undefined) await this.dispatcher.stop(this.stopTimeoutMs);
      await running;
    } finally {
      await Promise.all(this.executors.map((e) => e.close()));
      this.host.log.info({ queue: this.queue }, 'worker stopped');
    }
  }

  private async checkModules(pool: ThreadPool): Promise<void> {
    let problems: ModuleProblem[];
    try {
      problems = await pool.warm();
    } catch (err) {
      // The thread died while importing them (a module calling process.exit, say).
      throw new ModuleLoadError(
        `worker for queue ${JSON.stringify(this.queue)} cannot start: a thread died while loading its task modules (${[...this.modules.values()].join(', ')}): ${(err as Error)?.message ?? err}`,
        { cause: err },
      );
    }
    if (problems.length === 0) return;
    const lines = problems.map((p) => `task ${JSON.stringify(p.name)}: ${p.message}`);
    throw new ModuleLoadError(`worker for queue ${JSON.stringify(this.queue)} cannot start: ${lines.join('; ')}`);
  }

  /** The dispatcher's view of this emitter: it builds an event only for kinds with listeners. */
  private eventSink(): EventSink {
    return { wants: (kind) => this.listenerCount(kind) > 0, emit: (event) => this.emit(event.kind, event) };
  }
}

const RESOURCE_LIMITS = ['maxOldGenerationSizeMb', 'maxYoungGenerationSizeMb', 'codeRangeSizeMb', 'stackSizeMb'] as const;

/** Piscina passes these to each thread; a typo or a bad value would otherwise be ignored or fail later. */
function checkResourceLimits(limits: unknown): void {
  if (limits === undefined) return;
  checkKnownKeys('resourceLimits', limits, RESOURCE_LIMITS);
  for (const key of RESOURCE_LIMITS) {
    const v = (limits as Record<string, unknown>)[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 1_048_576)) {
      throw new RhythmValidationError(`option resourceLimits.${key} must be a positive number of megabytes, got ${describe(v)}`);
    }
  }
}

function checkThreadOptions(o: WorkerOptions): void {
  const argv = o.threadExecArgv;
  if (argv !== undefined && (!Array.isArray(argv) || argv.some((a) => typeof a !== 'string'))) {
    throw new RhythmValidationError(`option threadExecArgv must be an array of strings (Node flags), got ${describe(argv)}`);
  }
  const env = o.threadEnv;
  if (
    env !== undefined &&
    (env === null || typeof env !== 'object' || Array.isArray(env) || Object.values(env).some((v) => typeof v !== 'string'))
  ) {
    throw new RhythmValidationError(`option threadEnv must be an object of string values, got ${describe(env)}`);
  }
}

function defaultWorkerId(queue: string): string {
  return `${os.hostname()}:${process.pid}:${queue}:${Math.random().toString(36).slice(2, 8)}`;
}

/** The path of a .flow file given as a file: URL or a path, checked to exist. */
function flowFile(what: string, file: unknown): string {
  if (!(file instanceof URL) && typeof file !== 'string')
    throw new RhythmValidationError(`${what}: give the .flow file as a file: URL or a path, got ${describe(file)}`);
  let url: URL;
  try {
    url = toModuleUrl(file);
  } catch {
    throw new RhythmValidationError(`${what}: ${describe(file)} is neither a file path nor a valid URL`);
  }
  if (url.protocol !== 'file:')
    throw new RhythmValidationError(`${what}: a workflow must be a local file (a path or a file: URL), got a ${url.protocol} URL`);
  const p = fileURLToPath(url);
  if (!existsSync(p)) throw new RhythmValidationError(`${what}: file not found at ${p}`);
  if (!statSync(p).isFile()) throw new RhythmValidationError(`${what}: ${p} is a folder, not a .flow file`);
  return p;
}

function toModuleUrl(handler: URL | string): URL {
  if (handler instanceof URL) return handler;
  if (/^[a-z][a-z0-9+.-]*:/i.test(handler) && !path.isAbsolute(handler)) return new URL(handler);
  return pathToFileURL(path.resolve(handler));
}
