-- Named queries of the SQLite backend. Each starts with "-- name: NAME".

-- name: select_run
SELECT run_id, flow, status, version, started_at, updated_at, completed_at, body, last_seq
FROM runs WHERE run_id = ?;

-- name: insert_run
INSERT INTO runs (run_id, flow, status, version, last_seq, started_at, updated_at, completed_at, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: update_run
UPDATE runs SET status = ?, version = ?, last_seq = ?, updated_at = ?, completed_at = ?, body = ?
WHERE run_id = ? AND version = ?;

-- name: bump_seq
UPDATE runs SET last_seq = last_seq + ? WHERE run_id = ? RETURNING last_seq, flow;

-- name: insert_event
INSERT INTO events (run_id, seq, type, body) VALUES (?, ?, ?, ?);

-- name: insert_job
INSERT INTO jobs (id, queue, name, run_id, flow, state, priority, run_at, created_at, key, input)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING;

-- name: job_by_key
SELECT id FROM jobs
WHERE queue = ? AND key = ? AND state IN ('waiting', 'delayed', 'active');

-- name: job_attempt
SELECT state, attempt FROM jobs WHERE id = ?;

-- name: claim_due
UPDATE jobs SET state = 'active', attempt = attempt + 1, worker = ?, lease_until = ?
WHERE id IN (
    SELECT id FROM jobs
    WHERE state IN ('waiting', 'delayed') AND run_at <= ?
      AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
      {queue_filter}
    ORDER BY priority DESC, run_at, rowid
    LIMIT ?
)
RETURNING id, queue, name, run_id, flow, attempt, priority, run_at, created_at, key, input, reclaims;

-- name: claim_expired
UPDATE jobs SET attempt = attempt + 1, reclaims = reclaims + 1, worker = ?, lease_until = ?
WHERE id IN (
    SELECT id FROM jobs
    WHERE state = 'active' AND lease_until < ?
      AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
      {queue_filter}
    LIMIT ?
)
RETURNING id, queue, name, run_id, flow, attempt, priority, run_at, created_at, key, input, reclaims;

-- name: heartbeat
UPDATE jobs SET lease_until = ? WHERE id = ? AND state = 'active' AND worker = ?;

-- name: release
UPDATE jobs SET state = 'waiting', attempt = attempt - 1, worker = NULL, lease_until = NULL
WHERE id = ? AND state = 'active' AND worker = ?;

-- name: finish_job
UPDATE jobs SET state = ?, worker = NULL, lease_until = NULL, error = ?, result = ?,
    finished_at = ?
WHERE id = ?;

-- name: requeue_job
UPDATE jobs SET state = ?, worker = NULL, lease_until = NULL, error = ?, run_at = ?,
    finished_at = NULL,
    attempt = CASE WHEN ? THEN 0 ELSE attempt END,
    reclaims = CASE WHEN ? THEN 0 ELSE reclaims END
WHERE id = ?;

-- name: cancel_run_jobs
UPDATE jobs SET state = 'canceled', finished_at = ?
WHERE id >= ? AND id < ? AND state IN ('waiting', 'delayed');

-- name: state_set
INSERT OR REPLACE INTO state (scope, key, value, expires_at) VALUES (?, ?, ?, ?);

-- name: state_delete
DELETE FROM state WHERE scope = ? AND key = ?;

-- name: state_clear
DELETE FROM state WHERE scope = ?;

-- name: state_get
SELECT value FROM state WHERE scope = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?);

-- name: state_items
SELECT key, value FROM state WHERE scope = ? AND (expires_at IS NULL OR expires_at > ?);

-- name: timer_set
INSERT OR REPLACE INTO timers (id, due, kind, data) VALUES (?, ?, ?, ?);

-- name: timer_delete
DELETE FROM timers WHERE id = ?;

-- name: timers_claim
UPDATE timers SET due = ? WHERE id IN (
    SELECT id FROM timers WHERE due <= ? ORDER BY due LIMIT ?
)
RETURNING id, due, kind, data;

-- name: read_events
SELECT body FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?;

-- name: read_feed
SELECT gid, body FROM events
WHERE gid > ? AND type IN ({lifecycle})
ORDER BY gid LIMIT ?;

-- name: queue_counts
SELECT queue, state, count(*) FROM jobs GROUP BY queue, state;

-- name: paused_queues
SELECT name FROM queues WHERE paused = 1;

-- name: set_paused
INSERT INTO queues (name, paused) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused;

-- name: select_job
SELECT id, queue, name, run_id, flow, state, attempt, reclaims, priority, run_at, created_at,
    finished_at, key, worker, lease_until, input, result, error
FROM jobs WHERE id = ?;

-- name: list_jobs
SELECT id, queue, name, run_id, flow, state, attempt, reclaims, priority, run_at, created_at,
    finished_at, key, worker, lease_until, input, result, error, rowid
FROM jobs WHERE queue = ? AND (? IS NULL OR state = ?) AND rowid < ?
ORDER BY rowid DESC LIMIT ?;

-- name: delete_job
DELETE FROM jobs WHERE id = ? AND state != 'active';

-- name: timers_list
SELECT id, due, kind, data FROM timers ORDER BY due, id;

-- name: record_get
SELECT value FROM records
WHERE collection = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?);

-- name: records_list
-- {after} is "" or "AND key > ?" ("<" with reverse), {order} ASC or DESC.
SELECT key, value FROM records
WHERE collection = ? AND (expires_at IS NULL OR expires_at > ?) {after}
ORDER BY key {order} LIMIT ?;

-- name: record_put
INSERT INTO records (collection, key, value, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (collection, key) DO UPDATE
SET value = excluded.value, expires_at = excluded.expires_at;

-- name: record_put_new
-- Stores unless a live record is there (an expired one is overwritten): a row comes back when
-- this call stored the value.
INSERT INTO records (collection, key, value, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (collection, key) DO UPDATE
SET value = excluded.value, expires_at = excluded.expires_at
WHERE records.expires_at IS NOT NULL AND records.expires_at <= ?
RETURNING 1;

-- name: record_stored
SELECT value FROM records WHERE collection = ? AND key = ?;

-- name: record_delete
DELETE FROM records WHERE collection = ? AND key = ? RETURNING expires_at;

-- name: record_add
-- An expired counter starts again from 0 with the new expires_at.
INSERT INTO records (collection, key, value, expires_at) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (collection, key) DO UPDATE
SET value = CASE WHEN records.expires_at IS NOT NULL AND records.expires_at <= ?5
        THEN excluded.value ELSE CAST(CAST(records.value AS INTEGER) + ?6 AS TEXT) END,
    expires_at = CASE WHEN records.expires_at IS NOT NULL AND records.expires_at <= ?5
        THEN excluded.expires_at ELSE records.expires_at END
RETURNING value;

-- name: record_collections
SELECT DISTINCT collection FROM records WHERE expires_at IS NULL OR expires_at > ?
ORDER BY collection;

-- name: records_purge
DELETE FROM records WHERE (collection, key) IN (
    SELECT collection, key FROM records WHERE expires_at <= ? ORDER BY expires_at LIMIT ?
);

-- name: import_run
-- Migration (flowtide migrate), here to the end: verbatim reads and writes.
INSERT INTO runs (run_id, flow, status, version, last_seq, started_at, updated_at, completed_at, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING;

-- name: import_job
-- Skipped (no row changed) when the id exists, or when the job is unfinished and an
-- unfinished job of its queue holds its key (the jobs_by_key index).
INSERT INTO jobs (id, queue, name, run_id, flow, state, attempt, reclaims, priority, run_at,
    created_at, finished_at, key, worker, lease_until, input, result, error)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING;

-- name: state_export
SELECT key, value, expires_at FROM state
WHERE scope = ? AND (expires_at IS NULL OR expires_at > ?);

-- name: records_export
SELECT key, value, expires_at FROM records
WHERE collection = ?1 AND (expires_at IS NULL OR expires_at > ?2) AND (?3 IS NULL OR key > ?3)
ORDER BY key LIMIT ?4;
