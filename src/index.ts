/** Rhythm: a durable, multi-threaded task queue on PostgreSQL. */
export { Rhythm, type RhythmOptions, type ShutdownOptions } from './rhythm.js';
export { Worker, type WorkerOptions, type WorkerEvents } from './worker.js';
export type { ExecutionEvent, ExecutionEventKind } from './dispatcher/events.js';
export type { RhythmMetrics, MetricsOptions } from './observability/metrics.js';
export { startMetricsServer, type MetricsServer, type MetricsServerOptions, type MetricsSource } from './observability/metrics-server.js';
export { defineTask, type TaskDefinition, type TaskDefaults, type TaskExecutionId } from './task-definition.js';
export type { Schedule, ScheduleOptions, SyncResult } from './schedules/schedules.js';
export type { ScheduleChange } from './sql/schedule-upsert.js';
export type { WorkflowDetails } from './sql/workflow-details.js';
export type { CatchUp } from './schedules/cron.js';
export type { ControlStatus, QueueControl, GroupAtLimit, RateLimit } from './sql/controls.js';
export type { InternalWorker, InternalWorkerOptions } from './internal/internal-worker.js';
export {
  RhythmError,
  RhythmValidationError,
  WaitTimeoutError,
  TaskAbortedError,
  CancelledError,
  LeaseExpiredError,
  ThreadCrashError,
  ModuleLoadError,
  ResultRejectedError,
  NonRetryableError,
  type AbortReason,
} from './errors.js';
export type {
  ExecutionFilter,
  ListOptions,
  ExecutionPage,
  StatusOptions,
  StatusReport,
  QueueReport,
  TaskStatus,
  StatusCounts,
  RetryOptions,
  RetryResult,
  CancelResult,
  Skipped,
  ActivityOptions,
  QueueActivity,
  MinuteCounts,
  WorkflowListOptions,
  WorkflowPage,
  WorkflowSummary,
} from './admin.js';
export {
  dashboardHandler,
  startDashboard,
  type DashboardOptions,
  type StartDashboardOptions,
  type DashboardServer,
} from './dashboard/server.js';
export type {
  AttemptRecord,
  TaskContext,
  TaskHandler,
  EnqueueOptions,
  UniqueMode,
  EnqueueItem,
  StartWorkflowOptions,
  WaitOptions,
  Execution,
  ExecutionStatus,
  TaskErrorInfo,
} from './types.js';
export { startEmbeddedPostgres, type EmbeddedServer, type EmbeddedOptions } from './db/embedded.js';
export type { MigrationStatus } from './db/migrate.js';
export { FlowSyntaxError, FlowStateError, type FlowProblem } from './workflows/errors.js';
