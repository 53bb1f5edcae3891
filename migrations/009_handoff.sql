-- Rhythm schema, version 9: idle workers offering to take the next task directly.
--
-- An idle worker (nothing held, its last claim empty) leaves an offer here. A single
-- enqueue() outside a caller's transaction takes one matching offer in its own statement:
-- the new work_queue row is leased to that worker with the offer's lease token, and the
-- NOTIFY carries the whole claimed task, so the worker starts it without a claim round trip.
--
-- offer_key:   random, chosen by the worker; the NOTIFY names it, and only that worker acts.
-- lease_token: taken from lease_token_seq when the offer is made; the handed task's lease token.
-- names:       the task names the worker serves.
-- lease_ms:    the worker's lease, for tasks without one of their own.
-- expires_at:  refreshed while the worker idles; an expired offer (a worker that died) is
--              never taken.
-- Unlogged: offers are refreshed every few seconds and need no WAL; a crash empties the
-- table, which only means the next tasks are claimed the ordinary way.

CREATE UNLOGGED TABLE worker_offers (
  offer_key   text        PRIMARY KEY,
  queue       text        NOT NULL,
  names       text[]      NOT NULL,
  worker_id   text        NOT NULL,
  lease_token bigint      NOT NULL,
  lease_ms    integer     NOT NULL,
  expires_at  timestamptz NOT NULL
);
CREATE INDEX worker_offers_queue_idx ON worker_offers (queue);
