-- Named queries of the PostgreSQL backend. Each starts with "-- name: NAME". They run with
-- search_path set to the configured schema. Bulk writes pass one array per column (unnest), so
-- a batch of any size is one statement and one round trip.

-- name: lock_runs
SELECT run_id, flow, status, version, started_at, updated_at, completed_at, body, last_seq
FROM runs WHERE run_id = ANY($1::text[]) ORDER BY run_id FOR UPDATE;

-- name: select_run
SELECT run_id, flow, status, version, started_at, updated_at, completed_at, body, last_seq
FROM runs WHERE run_id = $1;

-- name: insert_runs
INSERT INTO runs (run_id, flow, status, version, last_seq, started_at, updated_at, completed_at,
    body)
SELECT t.id, t.f, t.s, t.v, t.l, t.st, t.up, t.co, t.b::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::float8[],
    $7::float8[], $8::float8[], $9::text[]) AS t(id, f, s, v, l, st, up, co, b);

-- name: update_runs
UPDATE runs r SET status = t.s, version = t.v, last_seq = t.l, updated_at = t.up,
    completed_at = t.co, body = t.b::jsonb
FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::float8[], $6::float8[],
    $7::text[], $8::int[]) AS t(id, s, v, l, up, co, b, old)
WHERE r.run_id = t.id AND r.version = t.old AND r.run_id = ANY($1::text[]);

-- name: insert_events
INSERT INTO events (run_id, seq, pos, ts, type, flow, step, attempt, data)
SELECT t.r, t.s, (pg_current_xact_id()::text::bigint << 20) + t.o, $1, t.ty, t.f, t.st, t.a,
    t.d::jsonb
FROM unnest($2::text[], $3::int[], $4::int[], $5::text[], $6::text[], $7::text[], $8::int[],
    $9::text[]) AS t(r, s, o, ty, f, st, a, d);

-- name: read_events
SELECT seq, ts, type, flow, step, attempt, data FROM events
WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3;

-- name: feed_horizon
-- The oldest transaction id (xid8) that a flowtide connection of this schema ($1, its
-- application_name) is still writing with, or the next one to be assigned: every event below
-- it is committed (or rolled back) for good. Read in its own statement BEFORE read_feed, whose
-- snapshot then sees all of them. Transactions of other programs (an idle psql session) and of
-- other schemas do not hold the feed back.
WITH ref AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next8)
SELECT coalesce(
    min(ref.next8 - ((ref.next8 - a.backend_xid::text::bigint) % 4294967296)),
    max(ref.next8))
FROM ref
LEFT JOIN pg_stat_activity a
    ON a.application_name = $1 AND a.backend_xid IS NOT NULL;

-- name: read_feed
SELECT pos, run_id, seq, ts, type, flow, step, attempt, data FROM events
WHERE pos > $1 AND pos < ($2::bigint << 20)
  AND (type LIKE 'flow.%' OR type LIKE 'step.%')
ORDER BY pos LIMIT $3;

-- name: insert_jobs
INSERT INTO jobs (id, queue, name, run_id, flow, state, priority, run_at, created_at, key, input)
SELECT t.id, t.q, t.n, t.r, t.f, t.s, t.p, t.ra, t.ca, t.k, t.i::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
    $8::float8[], $9::float8[], $10::text[], $11::text[]) WITH ORDINALITY
    AS t(id, q, n, r, f, s, p, ra, ca, k, i, o)
ORDER BY t.o
ON CONFLICT DO NOTHING
RETURNING id;

-- name: enqueue
-- insert_jobs and a wake-up in one statement: the row with a NULL id is the notification.
WITH ins AS (
    INSERT INTO jobs (id, queue, name, run_id, flow, state, priority, run_at, created_at, key,
        input)
    SELECT t.id, t.q, t.n, t.r, t.f, t.s, t.p, t.ra, t.ca, t.k, t.i::jsonb
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::int[], $8::float8[], $9::float8[], $10::text[], $11::text[]) WITH ORDINALITY
        AS t(id, q, n, r, f, s, p, ra, ca, k, i, o)
    ORDER BY t.o
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT id FROM ins
UNION ALL
SELECT NULL FROM (SELECT pg_notify($12, '')) AS n;

-- name: job_standing_for
SELECT coalesce(
    (SELECT id FROM jobs WHERE id = $1),
    (SELECT id FROM jobs WHERE queue = $2 AND key = $3
        AND state IN ('waiting', 'delayed', 'active')),
    $1);

-- name: lock_job_attempts
SELECT id, state, attempt FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE;

-- name: claim
-- One statement (one round trip, no explicit transaction): lease up to $4 jobs, expired
-- leases first, then due jobs by priority and age; skip rows other transactions hold. A step
-- job whose run is locked by a commit right now is left for the next claim (waiting for that
-- lock while holding job locks could deadlock with the commit). For the step jobs taken, the
-- run's last_seq is bumped and step.started (after step.retrying for a reclaim) appended; $8
-- is the number of events the transaction appended before (their feed positions come first).
-- A template: its placeholders (in braces) are empty here; commit_claim fills them in.
WITH {done}expired AS (
    SELECT id, run_id, true AS reclaimed FROM jobs
    WHERE state = 'active' AND lease_until < $1
      AND ($2::text[] IS NULL OR queue = ANY($2::text[])) AND NOT (queue = ANY($3::text[]))
      AND queue NOT IN (SELECT name FROM queues WHERE paused){skip}
    ORDER BY lease_until LIMIT $4
    FOR UPDATE SKIP LOCKED
), due AS (
    SELECT id, run_id, false AS reclaimed FROM jobs
    WHERE state IN ('waiting', 'delayed') AND run_at <= $1
      AND ($2::text[] IS NULL OR queue = ANY($2::text[])) AND NOT (queue = ANY($3::text[]))
      AND queue NOT IN (SELECT name FROM queues WHERE paused){skip}
    ORDER BY priority DESC, run_at, seq LIMIT $4 - (SELECT count(*) FROM expired)
    FOR UPDATE SKIP LOCKED
), cand AS (
    SELECT id, run_id, reclaimed FROM expired
    UNION ALL
    SELECT id, run_id, reclaimed FROM due
), locked AS (
    SELECT run_id, flow, last_seq FROM runs
    WHERE run_id IN (SELECT run_id FROM cand WHERE run_id IS NOT NULL)
    FOR UPDATE SKIP LOCKED
), taken AS (
    -- "= ANY(ARRAY(...))" makes this a primary-key lookup per job (a join on the CTE can
    -- become a hash join over the whole table); the old state tells a reclaim
    UPDATE jobs j SET state = 'active', attempt = j.attempt + 1,
        reclaims = j.reclaims + (j.state = 'active')::int, worker = $5, lease_until = $6
    WHERE j.id = ANY(ARRAY(
        SELECT c.id FROM cand c
        WHERE c.run_id IS NULL OR c.run_id IN (SELECT run_id FROM locked)
           OR NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = c.run_id)))
    RETURNING j.id, j.queue, j.name, j.run_id, j.flow, j.attempt, j.priority, j.run_at,
        j.created_at, j.key, j.input, j.reclaims, j.seq
), ev AS (
    SELECT t.run_id, l.flow, l.last_seq, t.name AS step, v.type, v.attempt, v.data,
        row_number() OVER (PARTITION BY t.run_id
            ORDER BY NOT t.reclaimed, t.priority DESC, t.run_at, t.seq, v.k) AS n,
        row_number() OVER (
            ORDER BY t.run_id, NOT t.reclaimed, t.priority DESC, t.run_at, t.seq, v.k) AS o
    FROM (SELECT taken.*, cand.reclaimed FROM taken JOIN cand USING (id)) AS t
    JOIN locked l ON l.run_id = t.run_id
    CROSS JOIN LATERAL (VALUES
        (1, 'step.retrying', t.attempt - 1, jsonb_build_object(
            'error', jsonb_build_object('type', 'LeaseExpired', 'message', $7::text),
            'next_attempt', t.attempt)),
        (2, 'step.started', t.attempt, NULL::jsonb)
    ) AS v(k, type, attempt, data)
    WHERE v.k = 2 OR t.reclaimed
), bumped AS (
    UPDATE runs r SET last_seq = r.last_seq + c.n
    FROM (SELECT run_id, count(*)::int AS n FROM ev GROUP BY run_id) AS c
    WHERE r.run_id = c.run_id
), appended AS (
    INSERT INTO events (run_id, seq, pos, ts, type, flow, step, attempt, data)
    SELECT run_id, last_seq + n, (pg_current_xact_id()::text::bigint << 20) + $8::int + o, $1,
        type, flow, step, attempt, data
    FROM ev
)
SELECT t.id, t.queue, t.name, t.run_id, t.flow, t.attempt, t.priority, t.run_at, t.created_at,
    t.key, t.input, t.reclaims, t.seq, c.reclaimed
FROM taken t JOIN cand c USING (id){notify};

-- name: commit_claim
-- The pieces that make the claim template one statement that first finishes the jobs of a
-- commit (update_jobs, as a data-modifying CTE, $1 its time and $9..$14 its columns), then
-- claims (it cannot see those updates, so the jobs of the commit are kept out of it by id: one
-- leased past its expiry is still "active" to it) and notifies channel $15 (the row of NULLs).
-- {done}
done AS (
    UPDATE jobs j SET state = t.s, worker = NULL, lease_until = NULL, error = t.e::jsonb,
        result = t.r::jsonb,
        finished_at = CASE WHEN t.s IN ('waiting', 'delayed') THEN NULL ELSE $1::float8 END,
        run_at = CASE WHEN t.s IN ('waiting', 'delayed') THEN t.ra ELSE j.run_at END,
        attempt = CASE WHEN t.reset THEN 0 ELSE j.attempt END,
        reclaims = CASE WHEN t.reset THEN 0 ELSE j.reclaims END
    FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::float8[], $14::bool[])
        AS t(id, s, e, r, ra, reset)
    WHERE j.id = t.id AND j.id = ANY($9::text[])
    RETURNING 1
),
-- {skip}
 AND NOT (id = ANY($9::text[]))
-- {notify}

UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM (SELECT pg_notify($15, '')) AS n

-- name: heartbeat
UPDATE jobs SET lease_until = $3
WHERE id IN (
    SELECT id FROM jobs WHERE id = ANY($1::text[]) AND state = 'active' AND worker = $2
    FOR UPDATE SKIP LOCKED
)
RETURNING id;

-- name: release
UPDATE jobs SET state = 'waiting', attempt = attempt - 1, worker = NULL, lease_until = NULL
WHERE id = ANY($1::text[]) AND state = 'active' AND worker = $2;

-- name: update_jobs
-- (Every join with an unnest() also filters the table with "= ANY(ids)": an index lookup per
-- row, where the planner would otherwise hash-join the whole table.)
UPDATE jobs j SET state = t.s, worker = NULL, lease_until = NULL, error = t.e::jsonb,
    result = t.r::jsonb,
    finished_at = CASE WHEN t.s IN ('waiting', 'delayed') THEN NULL ELSE $1::float8 END,
    run_at = CASE WHEN t.s IN ('waiting', 'delayed') THEN t.ra ELSE j.run_at END,
    attempt = CASE WHEN t.reset THEN 0 ELSE j.attempt END,
    reclaims = CASE WHEN t.reset THEN 0 ELSE j.reclaims END
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::bool[])
    AS t(id, s, e, r, ra, reset)
WHERE j.id = t.id AND j.id = ANY($2::text[]);

-- name: update_jobs_notify
-- update_jobs and a wake-up in one statement (a batch that only finishes jobs).
WITH u AS (
    UPDATE jobs j SET state = t.s, worker = NULL, lease_until = NULL, error = t.e::jsonb,
        result = t.r::jsonb,
        finished_at = CASE WHEN t.s IN ('waiting', 'delayed') THEN NULL ELSE $1::float8 END,
        run_at = CASE WHEN t.s IN ('waiting', 'delayed') THEN t.ra ELSE j.run_at END,
        attempt = CASE WHEN t.reset THEN 0 ELSE j.attempt END,
        reclaims = CASE WHEN t.reset THEN 0 ELSE j.reclaims END
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::bool[])
        AS t(id, s, e, r, ra, reset)
    WHERE j.id = t.id AND j.id = ANY($2::text[])
    RETURNING 1
)
SELECT pg_notify($8, ''), (SELECT count(*) FROM u);

-- name: cancel_run_jobs
UPDATE jobs SET state = 'canceled', finished_at = $1
WHERE run_id = ANY($2::text[]) AND state IN ('waiting', 'delayed');

-- name: state_set
INSERT INTO state (scope, key, value, expires_at)
SELECT t.s, t.k, t.v::jsonb, t.x
FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[]) AS t(s, k, v, x)
ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at;

-- name: state_delete
DELETE FROM state s USING unnest($1::text[], $2::text[]) AS t(s, k)
WHERE s.scope = t.s AND s.key = t.k AND s.scope = ANY($1::text[]);

-- name: state_clear
DELETE FROM state WHERE scope = ANY($1::text[]);

-- name: state_get
SELECT value FROM state WHERE scope = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3);

-- name: state_items
SELECT key, value FROM state WHERE scope = $1 AND (expires_at IS NULL OR expires_at > $2);

-- name: timer_set
INSERT INTO timers (id, due, kind, data)
SELECT t.id, t.due, t.kind, t.data::jsonb
FROM unnest($1::text[], $2::float8[], $3::text[], $4::text[]) AS t(id, due, kind, data)
ON CONFLICT (id) DO UPDATE SET due = excluded.due, kind = excluded.kind, data = excluded.data;

-- name: timer_delete
DELETE FROM timers WHERE id = ANY($1::text[]);

-- name: timers_claim
UPDATE timers t SET due = $1
FROM (
    SELECT id, due FROM timers WHERE due <= $2 ORDER BY due LIMIT $3 FOR UPDATE SKIP LOCKED
) AS p
WHERE t.id = p.id
RETURNING t.id, p.due, t.kind, t.data;

-- name: queue_counts
SELECT queue, state, count(*)::int FROM jobs GROUP BY queue, state;

-- name: queue_names
SELECT name FROM queues;

-- name: paused_queues
SELECT name FROM queues WHERE paused;

-- name: set_paused
INSERT INTO queues (name, paused) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused;

-- name: select_job
SELECT id, queue, name, run_id, flow, state, attempt, reclaims, priority, run_at, created_at,
    finished_at, key, worker, lease_until, input, result, error
FROM jobs WHERE id = $1;

-- name: list_jobs
SELECT id, queue, name, run_id, flow, state, attempt, reclaims, priority, run_at, created_at,
    finished_at, key, worker, lease_until, input, result, error, seq
FROM jobs WHERE queue = $1 AND ($2::text IS NULL OR state = $2) AND seq < $3
ORDER BY seq DESC LIMIT $4;

-- name: delete_job
DELETE FROM jobs WHERE id = $1 AND state != 'active';

-- name: job_exists
SELECT 1 FROM jobs WHERE id = $1;

-- name: notify
SELECT pg_notify($1, $2);

-- name: set_last_seq
UPDATE runs r SET last_seq = t.l
FROM unnest($1::text[], $2::int[]) AS t(id, l)
WHERE r.run_id = t.id AND r.run_id = ANY($1::text[]);

-- name: list_runs
SELECT run_id, flow, status, version, started_at, updated_at, completed_at, body, last_seq
FROM runs
WHERE ($1::text IS NULL OR flow = $1) AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR run_id < $3)
ORDER BY run_id DESC LIMIT $4;

-- name: retention_jobs
-- Finished jobs older than the cutoff: standalone function jobs (and their job-scoped state),
-- and step jobs of runs that ended (the run history keeps their story in events).
WITH doomed AS (
    SELECT j.id FROM jobs j
    WHERE j.finished_at < $1 AND j.state IN ('completed', 'failed', 'canceled')
      AND (j.run_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM runs r WHERE r.run_id = j.run_id AND r.completed_at IS NULL))
    ORDER BY j.finished_at LIMIT $2
    FOR UPDATE OF j SKIP LOCKED
), gone AS (
    DELETE FROM jobs j USING doomed d WHERE j.id = d.id RETURNING j.id, j.run_id
), scoped AS (
    DELETE FROM state s USING gone g WHERE g.run_id IS NULL AND s.scope = 'job:' || g.id
)
SELECT count(*)::int FROM gone;

-- name: retention_runs
-- Runs that ended before the cutoff, with their events, jobs and state.
WITH doomed AS (
    SELECT run_id FROM runs
    WHERE completed_at < $1 AND status IN ('completed', 'failed', 'canceled', 'stalled')
    ORDER BY completed_at LIMIT $2
    FOR UPDATE SKIP LOCKED
), ev AS (
    DELETE FROM events e USING doomed d WHERE e.run_id = d.run_id
), jb AS (
    DELETE FROM jobs j USING doomed d WHERE j.run_id = d.run_id
), st AS (
    DELETE FROM state s USING doomed d WHERE s.scope = d.run_id
), gone AS (
    DELETE FROM runs r USING doomed d WHERE r.run_id = d.run_id RETURNING 1
)
SELECT count(*)::int FROM gone;

-- name: timers_list
SELECT id, due, kind, data FROM timers ORDER BY due, id;

-- name: record_get
SELECT value FROM records
WHERE collection = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3);

-- name: records_list
-- {after} is "" or "AND key > $4" ("<" with reverse), {order} ASC or DESC.
SELECT key, value FROM records
WHERE collection = $1 AND (expires_at IS NULL OR expires_at > $2) {after}
ORDER BY key {order} LIMIT $3;

-- name: record_set
INSERT INTO records (collection, key, value, expires_at)
SELECT t.c, t.k, t.v::jsonb, t.x
FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[]) AS t(c, k, v, x)
ON CONFLICT (collection, key) DO UPDATE
SET value = excluded.value, expires_at = excluded.expires_at;

-- name: record_delete
DELETE FROM records r USING unnest($1::text[], $2::text[]) AS t(c, k)
WHERE r.collection = t.c AND r.key = t.k AND r.collection = ANY($1::text[])
RETURNING r.expires_at;

-- name: record_put_new
-- Stores unless a live record is there (an expired one is overwritten); a row comes back when
-- this call stored the value. Either way the row stays locked until the transaction ends, so
-- record_stored (a new snapshot) then reads the value that won.
INSERT INTO records (collection, key, value, expires_at) VALUES ($1, $2, $3::jsonb, $4)
ON CONFLICT (collection, key) DO UPDATE
SET value = excluded.value, expires_at = excluded.expires_at
WHERE records.expires_at IS NOT NULL AND records.expires_at <= $5
RETURNING 1;

-- name: record_stored
SELECT value FROM records WHERE collection = $1 AND key = $2;

-- name: record_add
-- An expired counter starts again from 0 with the new expires_at.
INSERT INTO records AS r (collection, key, value, expires_at)
VALUES ($1, $2, to_jsonb($3::bigint), $4)
ON CONFLICT (collection, key) DO UPDATE
SET value = CASE WHEN r.expires_at IS NOT NULL AND r.expires_at <= $5 THEN excluded.value
        ELSE to_jsonb(r.value::bigint + $3::bigint) END,
    expires_at = CASE WHEN r.expires_at IS NOT NULL AND r.expires_at <= $5
        THEN excluded.expires_at ELSE r.expires_at END
RETURNING value::bigint;

-- name: records_add
-- record_add for a commit's counters (one row per key, in key order); $5 is now.
INSERT INTO records AS r (collection, key, value, expires_at)
SELECT t.c, t.k, to_jsonb(t.n), t.x
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[]) AS t(c, k, n, x)
ON CONFLICT (collection, key) DO UPDATE
SET value = CASE WHEN r.expires_at IS NOT NULL AND r.expires_at <= $5 THEN excluded.value
        ELSE to_jsonb(r.value::bigint + excluded.value::bigint) END,
    expires_at = CASE WHEN r.expires_at IS NOT NULL AND r.expires_at <= $5
        THEN excluded.expires_at ELSE r.expires_at END;

-- name: record_collections
SELECT DISTINCT collection FROM records WHERE expires_at IS NULL OR expires_at > $1
ORDER BY collection;

-- name: retention_records
-- Expired records (absent already for every operation), oldest first.
WITH doomed AS (
    SELECT collection, key FROM records WHERE expires_at <= $1
    ORDER BY expires_at LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM records r USING doomed d
    WHERE r.collection = d.collection AND r.key = d.key AND r.expires_at <= $1
    RETURNING 1
)
SELECT count(*)::int FROM gone;

-- name: import_run
-- Migration (flowtide migrate), here to the end: verbatim reads and writes. No row comes back
-- when the run exists (then nothing else is written).
INSERT INTO runs (run_id, flow, status, version, last_seq, started_at, updated_at, completed_at,
    body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
ON CONFLICT (run_id) DO NOTHING
RETURNING run_id;

-- name: import_events
-- Events as they are; pos puts the lifecycle ones in the feed like those of a commit.
INSERT INTO events (run_id, seq, pos, ts, type, flow, step, attempt, data)
SELECT $1, t.s, (pg_current_xact_id()::text::bigint << 20) + t.o, t.ts, t.ty, t.f, t.st, t.a,
    t.d::jsonb
FROM unnest($2::int[], $3::int[], $4::float8[], $5::text[], $6::text[], $7::text[], $8::int[],
    $9::text[]) AS t(s, o, ts, ty, f, st, a, d);

-- name: import_jobs
-- Jobs with every field, in order; skipped when the id exists, or when the job is unfinished
-- and an unfinished job of its queue holds its key (the jobs_by_key index).
INSERT INTO jobs (id, queue, name, run_id, flow, state, attempt, reclaims, priority, run_at,
    created_at, finished_at, key, worker, lease_until, input, result, error)
SELECT t.id, t.q, t.n, t.r, t.f, t.s, t.a, t.rc, t.p, t.ra, t.ca, t.fa, t.k, t.w, t.lu,
    t.i::jsonb, t.res::jsonb, t.e::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
    $8::int[], $9::int[], $10::float8[], $11::float8[], $12::float8[], $13::text[], $14::text[],
    $15::float8[], $16::text[], $17::text[], $18::text[]) WITH ORDINALITY
    AS t(id, q, n, r, f, s, a, rc, p, ra, ca, fa, k, w, lu, i, res, e, o)
ORDER BY t.o
ON CONFLICT DO NOTHING
RETURNING id;

-- name: state_export
SELECT key, value, expires_at FROM state
WHERE scope = $1 AND (expires_at IS NULL OR expires_at > $2);

-- name: records_export
SELECT key, value, expires_at FROM records
WHERE collection = $1 AND (expires_at IS NULL OR expires_at > $2)
  AND ($3::text IS NULL OR key > $3)
ORDER BY key LIMIT $4;
