-- Rhythm schema, version 8: the group of a cron schedule's executions.
--
-- schedules.group_key: the group (for group concurrency) given to every execution the
--             schedule fires; NULL: none, as for an enqueue without a group.

ALTER TABLE schedules ADD COLUMN group_key text;
