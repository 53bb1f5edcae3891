/**
 * The qualified table names and notification channels of one Rhythm schema. The schema name
 * is validated (see checkSchemaName) and quoted once here; SQL modules interpolate only these.
 */
import { checkSchemaName } from '../validate.js';

export interface SchemaNames {
  schema: string;
  executions: string;
  workQueue: string;
  scheduledQueue: string;
  /** Failed and cancelled executions: what retry() can run again. */
  deadLetters: string;
  schedules: string;
  leaseTokenSeq: string;
  /** Paused and rate-limited queues (claim-side controls). */
  queueControls: string;
  /** Slots held per group of a queue (group concurrency). */
  workGroups: string;
  /** Idle workers' offers to take the next enqueued task directly (migrations/009_handoff.sql). */
  workerOffers: string;
  migrations: string;
  /** Workflow state, signals and source versions (migrations/004_workflows.sql). */
  workflows: string;
  workflowSignals: string;
  workflowSources: string;
  /**
   * NOTIFY payload: a queue name with new ready work, or (a JSON object) a task handed to the
   * idle worker whose offer an enqueue took (see sql/handoff.ts).
   */
  workChannel: string;
  /** NOTIFY payload: comma-separated ids of executions that reached a final status. */
  doneChannel: string;
  /** NOTIFY payload: comma-separated lease tokens of running attempts that were cancelled. */
  cancelChannel: string;
  /** NOTIFY payload: the name of a cron schedule that was created or changed. */
  scheduleChannel: string;
}

export function schemaNames(schema: string): SchemaNames {
  checkSchemaName(schema);
  const q = `"${schema}"`;
  return {
    schema,
    executions: `${q}.executions`,
    workQueue: `${q}.work_queue`,
    scheduledQueue: `${q}.scheduled_queue`,
    deadLetters: `${q}.dead_letters`,
    schedules: `${q}.schedules`,
    leaseTokenSeq: `${q}.lease_token_seq`,
    queueControls: `${q}.queue_controls`,
    workGroups: `${q}.work_groups`,
    workerOffers: `${q}.worker_offers`,
    migrations: `${q}.migrations`,
    workflows: `${q}.workflows`,
    workflowSignals: `${q}.workflow_signals`,
    workflowSources: `${q}.workflow_sources`,
    workChannel: `${schema}_work`,
    doneChannel: `${schema}_done`,
    cancelChannel: `${schema}_cancel`,
    scheduleChannel: `${schema}_schedule`,
  };
}
