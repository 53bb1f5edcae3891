-- Rhythm schema, version 3: what the admin API (status, list, retry, cancel) reads and keeps.
--
-- executions.attempt_log: a jsonb array with one entry per attempt that did not succeed
--   ({attempt, startedAt, finishedAt, workerId, outcome, error}), appended when an attempt
--   fails, is cancelled while running, or is recovered after its lease expired. Successful
--   attempts add nothing, so the completion path writes no more than before. NULL until the
--   first such attempt; a retried execution keeps it. The most recent 50 entries are kept.
--
-- dead_letters: the failed and cancelled executions (the ones retry() can run again), a row
--   each, written with the status change and removed by retry or with the execution. Failures
--   are usually rare in a large history: reading them from here costs what they number, where
--   an index on executions.status would cost every completion its HOT update (status changes
--   on each one) and a filter on the history would read it all.
--
-- executions_created_idx: lets list(since) read only the recent part of the history when the
--   planner sees that few rows match. BRIN, as for finished_at: created_at follows insertion
--   order, and a BRIN entry costs an insert next to nothing (btrees on name and queue measured
--   25-35% slower bulk enqueues, so there are none: a filter on a rare name reads the history).

ALTER TABLE executions ADD COLUMN attempt_log jsonb;

CREATE TABLE dead_letters (
  execution_id  bigint PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
  queue         text   NOT NULL,
  name          text   NOT NULL,
  status        text   NOT NULL CHECK (status IN ('failed', 'cancelled')),
  -- The execution's, so that list(since) filters dead letters without reading each execution.
  created_at    timestamptz NOT NULL
);

INSERT INTO dead_letters (execution_id, queue, name, status, created_at)
SELECT id, queue, name, status, created_at FROM executions WHERE status IN ('failed', 'cancelled');

CREATE INDEX executions_created_idx ON executions USING brin (created_at);
