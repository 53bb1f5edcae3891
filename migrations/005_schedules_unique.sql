-- Rhythm schema, version 5: cron schedules, unique keys, progress, per-task retry backoff.
--
-- executions.unique_key: the caller's deduplication key, kept in the history.
-- executions.unfinished_key: the key while the execution is unfinished (scheduled or queued,
--             which includes running), NULL once it is final. The partial unique index on it
--             makes a race between producers of one key yield one execution. A generated
--             column rather than an index predicate on status: a predicate column would make
--             every settle (a status change) a non-HOT update writing every index; this column
--             stays NULL for executions without a key, so their updates stay HOT. (Adding a
--             stored column rewrites the table once.)
-- executions.progress: the latest ctx.progress() of a running execution, written in batches.
-- executions.backoff_base_ms / backoff_max_ms: retry backoff of this execution (a task
--             definition's default), overriding the Rhythm-wide one when set.
-- schedules:  cron schedules by name. next_run_at (computed by the app with croner, which
--             knows time zones and DST) is the earliest due time not yet fired; firing advances
--             it and inserts the executions in one statement, guarded by revision, so any number
--             of internal workers fire each due time once.

ALTER TABLE executions ADD COLUMN unique_key text;
ALTER TABLE executions ADD COLUMN unfinished_key text
  GENERATED ALWAYS AS (CASE WHEN status IN ('scheduled', 'queued') THEN unique_key END) STORED;
ALTER TABLE executions ADD COLUMN progress jsonb;
ALTER TABLE executions ADD COLUMN backoff_base_ms integer CHECK (backoff_base_ms >= 0);
ALTER TABLE executions ADD COLUMN backoff_max_ms integer CHECK (backoff_max_ms >= 0);

CREATE UNIQUE INDEX executions_unfinished_key_idx ON executions (unfinished_key) WHERE unfinished_key IS NOT NULL;

CREATE TABLE schedules (
  name            text        PRIMARY KEY,
  cron            text        NOT NULL,
  -- An IANA time zone; the cron expression is read in it.
  timezone        text        NOT NULL DEFAULT 'UTC',
  task            text        NOT NULL,
  payload         jsonb       NOT NULL,
  queue           text        NOT NULL,
  priority        integer     NOT NULL DEFAULT 0,
  max_attempts    integer     NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
  timeout_ms      integer     CHECK (timeout_ms > 0),
  backoff_base_ms integer     CHECK (backoff_base_ms >= 0),
  backoff_max_ms  integer     CHECK (backoff_max_ms >= 0),
  -- Due times missed while no internal worker ran: fire none, the last one, or all (bounded).
  catch_up        text        NOT NULL DEFAULT 'none' CHECK (catch_up IN ('none', 'last', 'all')),
  -- NULL when the expression has no future time.
  next_run_at     timestamptz,
  -- The latest due time fired.
  last_fired_at   timestamptz,
  -- Bumped by every change and every fire: the compare-and-set that fires each due time once.
  revision        bigint      NOT NULL DEFAULT 1,
  -- Declared by syncSchedules (a config file): removed by a later sync that no longer lists it.
  synced          boolean     NOT NULL DEFAULT false,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX schedules_next_run_idx ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;
