/**
 * Runs workflow activations on the main thread, many at a time: the executor for the
 * workflows registered on a Worker. The dispatcher claims workflow executions like tasks; each
 * claim is one activation: load the saved state, run the script until it completes, fails or
 * waits, and commit the outcome with the children it started and the signals it took. The
 * interpreter is cheap (tens of microseconds an activation), the database round trips are
 * not, so the activations claimed together are loaded by one statement and committed by one
 * transaction (sql/workflow-activation.ts), whatever their number.
 *
 * The executor writes its outcomes itself (the dispatcher's completer only frees the slot):
 * a suspended workflow must leave work_queue in the same transaction as its new state.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import {
  compileFlow,
  resumeFlow,
  startFlow,
  type Activation,
  type ChildOutcome,
  type CompiledFlow,
  type FlowLimits,
  type FlowState,
  type InboxSignal,
} from '../workflows/index.js';
import { FlowStateError } from '../workflows/errors.js';
import {
  commitActivations,
  loadActivations,
  type ActivationWrite,
  type CommitResult,
  type ChildRow,
  type LoadedWorkflow,
} from '../sql/workflow-activation.js';
import { readSources } from '../sql/workflow-sources.js';
import { wakeMissedParents } from '../sql/wake-parents.js';
import { WORKFLOW_MAX_ATTEMPTS } from '../sql/workflow-start.js';
import type { ClaimedTask } from '../sql/claim.js';
import type { SchemaNames } from '../db/schema.js';
import { inTransaction } from '../db/transaction.js';
import { isDataError } from '../db/errors.js';
import { retryDelayMs, type Backoff } from '../backoff.js';
import { abortError, failed } from '../contract/attempt.js';
import type { AttemptResult, AttemptRun, Executor, RecordedResult, RunHooks } from '../contract/executor.js';
import { epochNow } from '../contract/flags.js';

/** Most activations per load and commit. */
const MAX_BATCH = 500;
/** Most state and payload text per commit transaction (characters): bounded statement size. */
const MAX_COMMIT_CHARS = 32 * 1024 * 1024;
/** Tries of a load or commit that failed for a reason other than its data (connection, deadlock). */
const TRIES = 5;

export interface WorkflowExecutorDeps {
  pool: pg.Pool;
  names: SchemaNames;
  log: Logger;
  backoff: Backoff;
  limits?: FlowLimits;
}

interface Item {
  task: ClaimedTask;
  queue: string;
  settled: boolean;
  resolve: (r: AttemptResult | RecordedResult) => void;
}

const RECORDED: RecordedResult = { recorded: true };

export class WorkflowExecutor implements Executor {
  private waiting: Item[] = [];
  private running: Promise<void> | undefined;
  /** Compiled flows by name and source hash: the registered ones, and older versions read from the database. */
  private readonly compiled = new Map<string, CompiledFlow>();

  constructor(
    /** The workflows registered on this worker, by name. */
    private readonly flows: ReadonlyMap<string, CompiledFlow>,
    private readonly deps: WorkflowExecutorDeps,
  ) {
    for (const [name, flow] of flows) this.compiled.set(key(name, flow.hash), flow);
  }

  start(task: ClaimedTask, queue: string, hooks: RunHooks): AttemptRun {
    const item: Item = { task, queue, settled: false, resolve: () => undefined };
    item.resolve = (r) => {
      if (item.settled) return;
      item.settled = true;
      hooks.finished(r);
    };
    const started = epochNow();
    hooks.handedOff();
    this.waiting.push(item);
    // Activations claimed together start in the same turn: gather them into one batch.
    this.running ??= this.drain();
    return {
      startedAt: () => started,
      // An activation is a short CPU burst and a commit fenced by its lease: nothing to interrupt.
      abort: () => undefined,
      kill: (reason) => item.resolve(failed(abortError(reason, 'the workflow activation did not finish in time'))),
    };
  }

  /** Activations are short: it starts whatever it is given. */
  room(): number {
    return Number.POSITIVE_INFINITY;
  }

  async close(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, MAX_BATCH);
        try {
          await this.runBatch(batch);
        } catch (err) {
          // Retried by the completer as a failed attempt (with backoff), like any task failure.
          this.deps.log.warn({ err, workflows: batch.length }, 'workflow activations could not run; they will be retried');
          for (const item of batch) item.resolve(failed(err, true));
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  private async runBatch(items: Item[]): Promise<void> {
    const ids = items.map((i) => i.task.id);
    const loaded = await this.withRetries(() => loadActivations(this.deps.pool, this.deps.names, ids));
    await this.loadMissingVersions(items, loaded.workflows);
    const writes: { item: Item; write: ActivationWrite }[] = [];
    for (const item of items) {
      const row = loaded.workflows.get(item.task.id);
      if (!row) {
        item.resolve(
          failed(
            new FlowStateError(
              `execution ${item.task.id} is a task named ${JSON.stringify(item.task.name)}, but this worker serves that name as a workflow: a queue's tasks and workflows share one set of names`,
            ),
            false,
          ),
        );
        continue;
      }
      try {
        writes.push({ item, write: this.activate(item, row, loaded.now) });
      } catch (err) {
        // A damaged or unreadable state, a version whose source is gone: running again would not help.
        item.resolve(failed(err, false));
      }
    }
    for (const chunk of chunks(writes)) await this.commit(chunk);
  }

  /** Runs one activation; throws only for a state this worker cannot resume. */
  private activate(item: Item, row: LoadedWorkflow, now: number): ActivationWrite {
    const { task } = item;
    const flow = row.flowHash === null ? this.flows.get(task.name) : this.compiled.get(key(task.name, row.flowHash));
    if (!flow) {
      throw new FlowStateError(
        `workflow ${task.id} (${JSON.stringify(task.name)}) runs source version ${row.flowHash?.slice(0, 12)}, which is not registered anywhere any more`,
      );
    }
    const state: FlowState =
      (row.state as FlowState | null) ??
      startFlow(flow, JSON.parse(task.payloadJson), { executionId: task.id, attempt: task.attempt, name: task.name, queue: item.queue });
    const outcomes: ChildOutcome[] = row.outcomes.map((o) => {
      const base = { seq: o.seq, executionId: o.id, at: o.at };
      if (o.status === 'completed') return { ...base, status: 'completed', result: o.result };
      if (o.status === 'failed') return { ...base, status: 'failed', error: { name: o.error?.name, message: o.error?.message } };
      return { ...base, status: 'cancelled' };
    });
    const signals: InboxSignal[] = row.signals;
    const a: Activation = resumeFlow(flow, state, { now, outcomes, signals, limits: this.deps.limits });

    const children: ChildRow[] = [];
    const consumed: string[] = [];
    for (const e of a.effects) {
      if (e.type === 'startTask') {
        const o = e.options;
        children.push({
          parentId: task.id,
          seq: e.seq,
          kind: 'task',
          name: e.name,
          queue: o.queue ?? item.queue,
          payloadJson: JSON.stringify(e.payload),
          priority: o.priority ?? 0,
          maxAttempts: o.maxAttempts ?? 3,
          timeoutMs: o.timeoutMs ?? null,
          leaseMs: o.visibilityTimeoutMs ?? null,
          delayMs: o.delayMs ?? null,
        });
      } else if (e.type === 'startWorkflow') {
        const o = e.options;
        children.push({
          parentId: task.id,
          seq: e.seq,
          kind: 'workflow',
          name: e.name,
          queue: o.queue ?? item.queue,
          payloadJson: JSON.stringify(e.inputs),
          priority: o.priority ?? 0,
          maxAttempts: WORKFLOW_MAX_ATTEMPTS,
          timeoutMs: null,
          leaseMs: null,
          delayMs: null,
        });
      } else if (e.type === 'consumeSignal') {
        consumed.push(e.signalId);
      }
    }
    const base = { id: task.id, leaseToken: task.leaseToken, flowHash: flow.hash, children, consumed };
    if (a.status === 'completed') return { ...base, outcome: { status: 'completed', resultJson: JSON.stringify(a.result ?? null) } };
    if (a.status === 'failed') return { ...base, outcome: { status: 'failed', errorJson: JSON.stringify(a.error) } };
    const w = a.waitingOn;
    return {
      ...base,
      outcome: {
        status: 'suspended',
        stateJson: JSON.stringify(a.state),
        mode: w.mode,
        children: w.children,
        signals: w.signals.map((s) => s.name),
        wakeAt: w.wakeAt,
      },
    };
  }

  /** Compiles the source versions the batch's workflows are pinned to and this worker lacks. */
  private async loadMissingVersions(items: Item[], rows: Map<string, LoadedWorkflow>): Promise<void> {
    const missing = new Map<string, { name: string; hash: string }>();
    for (const item of items) {
      const hash = rows.get(item.task.id)?.flowHash;
      if (hash && !this.compiled.has(key(item.task.name, hash))) missing.set(key(item.task.name, hash), { name: item.task.name, hash });
    }
    if (missing.size === 0) return;
    const sources = await this.withRetries(() => readSources(this.deps.pool, this.deps.names, [...missing.values()]));
    for (const s of sources) {
      try {
        this.compiled.set(key(s.name, s.hash), compileFlow(s.source, s.fileName));
        this.deps.log.info(
          { workflow: s.name, version: s.hash.slice(0, 12) },
          'compiled an older workflow version to resume the workflows pinned to it',
        );
      } catch (err) {
        this.deps.log.error({ err, workflow: s.name, version: s.hash.slice(0, 12) }, 'a stored workflow version no longer compiles');
      }
    }
  }

  /** Commits activations in one transaction; a refused row is isolated by halving the batch. */
  private async commit(writes: { item: Item; write: ActivationWrite }[]): Promise<void> {
    let result: CommitResult;
    try {
      result = await this.withRetries(() =>
        inTransaction(this.deps.pool, (client) =>
          commitActivations(
            client,
            this.deps.names,
            writes.map((w) => w.write),
            this.deps.backoff,
          ),
        ),
      );
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (writes.length > 1) {
        const half = Math.ceil(writes.length / 2);
        await this.commit(writes.slice(0, half));
        await this.commit(writes.slice(half));
        return;
      }
      // The database refused what this one activation wanted written: fail the workflow, saying why.
      writes[0]!.item.resolve(
        failed(new Error(`the database refused to store this workflow activation: ${(err as Error).message}`), false),
      );
      return;
    }
    // Committed: retried on its own, so a lost connection here cannot run the commit again.
    await this.withRetries(() => wakeMissedParents(this.deps.pool, this.deps.names, result.missedParents));
    const done = result.written;
    const lost = writes.filter((w) => !done.has(w.write.id));
    if (lost.length > 0) {
      this.deps.log.info(
        { ids: lost.map((w) => w.write.id) },
        'workflow activations discarded: these workflows were cancelled or their lease was taken over',
      );
    }
    for (const w of writes) w.item.resolve(RECORDED);
  }

  private async withRetries<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (isDataError(err) || attempt + 1 >= TRIES) throw err;
        await new Promise((r) => setTimeout(r, retryDelayMs(attempt)));
      }
    }
  }
}

function key(name: string, hash: string): string {
  return `${hash}:${name}`;
}

/** Consecutive runs of writes within MAX_COMMIT_CHARS of state and payload text (at least one each). */
function chunks<T extends { write: ActivationWrite }>(writes: T[]): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let chars = 0;
  for (const w of writes) {
    const o = w.write.outcome;
    let size = o.status === 'suspended' ? o.stateJson.length : o.status === 'completed' ? o.resultJson.length : o.errorJson.length;
    for (const c of w.write.children) size += c.payloadJson.length;
    if (current.length > 0 && chars + size > MAX_COMMIT_CHARS) {
      out.push(current);
      current = [];
      chars = 0;
    }
    current.push(w);
    chars += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}
