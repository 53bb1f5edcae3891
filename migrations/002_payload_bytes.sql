-- Rhythm schema, version 2: the size of each payload, so a claim can be bounded in bytes
-- without reading (or decompressing) payloads it will not take.
--
-- executions.payload_bytes: the payload's jsonb size as enqueued (before TOAST compression).
-- work_queue.payload_bytes: a copy, so the claim reads it from the small table alone.
-- Both are NULL for rows enqueued before this version; a claim counts those as 0 bytes.

ALTER TABLE executions ADD COLUMN payload_bytes integer;
ALTER TABLE work_queue ADD COLUMN payload_bytes integer;
