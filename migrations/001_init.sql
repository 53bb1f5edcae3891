-- Rhythm schema, version 1.
-- The runner sets search_path to the target schema, so names here are unqualified.
--
-- executions: the durable history, one row per task (or, later, workflow) run, with its result.
--             Written twice per attempt at most: at enqueue and when the attempt settles.
-- work_queue: the hot, small table that dispatchers claim from; a row lives only while the
--             execution is queued or running and is deleted when it settles. A claim touches
--             only this table: "running" is an executions row in status 'queued' whose
--             work_queue row is claimed (the public status reads both).
-- scheduled_queue: executions waiting for a time (delays, retry backoff); the internal worker
--             moves due rows into work_queue.

CREATE TABLE executions (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind          text        NOT NULL DEFAULT 'task' CHECK (kind IN ('task', 'workflow')),
  name          text        NOT NULL,
  queue         text        NOT NULL,
  status        text        NOT NULL CHECK (status IN ('scheduled', 'queued', 'completed', 'failed', 'cancelled')),
  payload       jsonb       NOT NULL,
  result        jsonb,
  error         jsonb,
  priority      integer     NOT NULL DEFAULT 0,
  -- Attempts made so far (copied from work_queue when an attempt settles).
  attempts      integer     NOT NULL DEFAULT 0,
  max_attempts  integer     NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
  timeout_ms    integer     CHECK (timeout_ms > 0),
  lease_ms      integer     CHECK (lease_ms > 0),
  parent_id     bigint,
  created_at    timestamptz NOT NULL DEFAULT now(),
  run_at        timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  finished_at   timestamptz
) WITH (fillfactor = 90);

-- Children of a workflow execution (workflows come later; the column is here from the start).
CREATE INDEX executions_parent_idx ON executions (parent_id) WHERE parent_id IS NOT NULL;
-- Pruning of settled history and "failed in the last hour" figures. BRIN, because finished_at
-- follows insertion order closely, and because since Postgres 16 an update that changes only
-- BRIN-indexed columns can still be HOT: settling an execution then writes no index entry.
CREATE INDEX executions_finished_idx ON executions USING brin (finished_at);

-- Every claim takes a fresh token from this sequence: completions, failures and heartbeats
-- must present it, so a worker whose lease was taken over can change nothing.
CREATE SEQUENCE lease_token_seq CACHE 100;

CREATE TABLE work_queue (
  execution_id  bigint      PRIMARY KEY,
  queue         text        NOT NULL,
  name          text        NOT NULL,
  priority      integer     NOT NULL,
  lease_ms      integer,
  -- Attempts including the current claim; a claim increments it.
  attempts      integer     NOT NULL DEFAULT 0,
  lease_token   bigint,
  claimed_by    text,
  claimed_at    timestamptz,
  claimed_until timestamptz
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
        autovacuum_analyze_scale_factor = 0.05);

-- The claim reads exactly this: ready rows of one queue by priority, then age.
CREATE INDEX work_queue_ready_idx ON work_queue (queue, priority DESC, execution_id)
  WHERE claimed_until IS NULL;
-- Lease recovery reads expired claims.
CREATE INDEX work_queue_lease_idx ON work_queue (claimed_until) WHERE claimed_until IS NOT NULL;

CREATE TABLE scheduled_queue (
  execution_id  bigint      PRIMARY KEY,
  run_at        timestamptz NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);

CREATE INDEX scheduled_queue_run_at_idx ON scheduled_queue (run_at);
