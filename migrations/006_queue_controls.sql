-- Rhythm schema, version 6: claim-side controls (pause, rate limits, group concurrency).
--
-- queue_controls: one row per queue that is paused or rate-limited, and none for any other,
--             so a claim on an ordinary queue finds nothing to read. The rate limit is a token
--             bucket refilled by time arithmetic inside the claim statement itself: `tokens`
--             as of `refilled_at`, refilled at rate_max per rate_interval_ms, capped at rate_max.
-- work_groups: per group of a queue, how many of its executions hold a slot right now
--             (claimed by a worker with groupConcurrency). Claims add to it under the row's lock,
--             and settle, hand-back and cancel subtract, so any number of processes agree on it.
--             `concurrency` is the limit the last claim applied, kept for status output.
-- executions.group_key / work_queue.group_key: the group given at enqueue (NULL: none).
-- work_queue.holds_group_slot: this claim counted in work_groups, so whatever ends it must
--             give the slot back (a worker without groupConcurrency claims without counting).

CREATE TABLE queue_controls (
  queue            text        PRIMARY KEY,
  paused           boolean     NOT NULL DEFAULT false,
  paused_at        timestamptz,
  rate_max         integer     CHECK (rate_max >= 1),
  rate_interval_ms integer     CHECK (rate_interval_ms >= 1),
  tokens           float8,
  refilled_at      timestamptz,
  CHECK ((rate_max IS NULL) = (rate_interval_ms IS NULL))
);

CREATE TABLE work_groups (
  queue       text    NOT NULL,
  group_key   text    NOT NULL,
  running     integer NOT NULL DEFAULT 0,
  concurrency integer NOT NULL,
  PRIMARY KEY (queue, group_key)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);

ALTER TABLE executions ADD COLUMN group_key text;
ALTER TABLE work_queue ADD COLUMN group_key text;
ALTER TABLE work_queue ADD COLUMN holds_group_slot boolean NOT NULL DEFAULT false;

-- The internal worker's recount of a group's slots reads exactly this.
CREATE INDEX work_queue_group_slot_idx ON work_queue (queue, group_key) WHERE holds_group_slot;
