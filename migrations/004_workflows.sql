-- Rhythm schema, version 4: durable workflows (.flow scripts, see docs/workflows.md).
--
-- A workflow is an executions row of kind 'workflow'. It is claimed from work_queue like a
-- task; each claim runs one activation, which commits the new state, the children it started
-- and the signals it took in one transaction. While it waits it is 'scheduled' and has no
-- work_queue row: a child's settle, a signal, or its timer (a scheduled_queue row) puts it back.
--
-- executions.parent_seq: the call sequence number of the Task.run / Workflow.run that started
--             this child; unique per parent, so an activation that is run again never starts
--             a child twice.
-- workflows:  one row per workflow execution: the pinned source version, the saved state, and
--             what the current await waits for. `pending` counts the awaited children still
--             running; a child's settle decrements it under this row's lock, so exactly one
--             settle (or the suspending activation itself) sees the wait satisfied.
-- workflow_signals: signals sent and not yet taken, first in, first out (by id).
-- workflow_sources: every source version workers have registered, by name and sha256, so a
--             workflow resumes on the version it started on, on any worker.

ALTER TABLE executions ADD COLUMN parent_seq integer;
CREATE UNIQUE INDEX executions_parent_seq_idx ON executions (parent_id, parent_seq) WHERE parent_seq IS NOT NULL;

CREATE TABLE workflows (
  execution_id  bigint      PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
  -- sha256 of the source; NULL until the first activation pins the version it runs.
  flow_hash     text,
  -- The interpreter state (NULL before the first activation and once the workflow finished);
  -- json, not jsonb: jsonb reorders object keys, and the order of a script's keys is state.
  state         json,
  -- What the last suspension waits for: 'all' or 'any' of these children (by seq), signals
  -- (by name) and the timer time.
  wait_mode     text        NOT NULL DEFAULT 'all' CHECK (wait_mode IN ('all', 'any')),
  wait_children integer[]   NOT NULL DEFAULT '{}',
  wait_signals  text[]      NOT NULL DEFAULT '{}',
  wake_at       timestamptz,
  -- Awaited children not settled yet.
  pending       integer     NOT NULL DEFAULT 0,
  activations   integer     NOT NULL DEFAULT 0
) WITH (fillfactor = 80);

CREATE TABLE workflow_signals (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  execution_id  bigint      NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
  name          text        NOT NULL,
  payload       jsonb       NOT NULL,
  sent_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflow_signals_execution_idx ON workflow_signals (execution_id, id);

CREATE TABLE workflow_sources (
  name          text        NOT NULL,
  hash          text        NOT NULL,
  file_name     text        NOT NULL,
  source        text        NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (name, hash)
);
