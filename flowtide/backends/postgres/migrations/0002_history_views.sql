-- flowtide PostgreSQL schema, version 2: the run history as plain views for ordinary SQL
-- (documented in docs/postgres.md). Times are timestamptz, durations milliseconds.

DROP INDEX IF EXISTS events_by_type;
CREATE INDEX events_by_type_time ON events (type, to_timestamp(ts));

-- One row per run.
CREATE VIEW run_history AS
SELECT r.run_id,
       r.flow,
       r.status,
       to_timestamp(r.started_at) AS started_at,
       to_timestamp(r.completed_at) AS completed_at,
       (r.completed_at - r.started_at) * 1000 AS duration_ms,
       r.body -> 'trigger' ->> 'name' AS trigger_name,
       r.body -> 'input' AS input,
       r.body -> 'result' AS result,
       r.body -> 'error' AS error
FROM runs r;

-- Every event of every run, in order per run.
CREATE VIEW event_log AS
SELECT e.run_id, e.seq, to_timestamp(e.ts) AS ts, e.type, e.flow, e.step, e.attempt, e.data
FROM events e;

-- One row per attempt of a step: when it started and finished, how (completed, failed,
-- retrying: failed and retried later or its worker was lost, stalled, running) and how long
-- it took (duration_ms: start to outcome; handler_ms: the handler's own time when completed).
CREATE VIEW step_attempts AS
SELECT s.run_id,
       s.flow,
       s.step,
       s.attempt,
       to_timestamp(s.ts) AS started_at,
       to_timestamp(f.ts) AS finished_at,
       CASE f.type
           WHEN 'step.completed' THEN 'completed'
           WHEN 'step.failed' THEN 'failed'
           WHEN 'step.retrying' THEN 'retrying'
           WHEN 'step.stalled' THEN 'stalled'
           ELSE 'running'
       END AS outcome,
       (f.ts - s.ts) * 1000 AS duration_ms,
       (f.data ->> 'duration_ms')::double precision AS handler_ms,
       f.data -> 'error' AS error
FROM events s
LEFT JOIN LATERAL (
    SELECT o.type, o.ts, o.data
    FROM events o
    WHERE o.run_id = s.run_id AND o.seq > s.seq AND o.step = s.step
      AND (o.attempt = s.attempt OR (o.type = 'step.stalled' AND o.attempt IS NULL))
      AND o.type IN ('step.completed', 'step.failed', 'step.retrying', 'step.stalled')
    ORDER BY o.seq
    LIMIT 1
) f ON true
WHERE s.type = 'step.started';

-- One row per step of a run: its last attempt.
CREATE VIEW run_steps AS
SELECT DISTINCT ON (a.run_id, a.step)
       a.run_id, a.flow, a.step, a.attempt AS attempts, a.outcome AS status, a.started_at,
       a.finished_at, a.duration_ms, a.error
FROM step_attempts a
ORDER BY a.run_id, a.step, a.attempt DESC;

-- Jobs (step jobs and standalone function jobs) with readable times; total_ms runs from the
-- job's creation to its final outcome (NULL while it is unfinished).
CREATE VIEW job_history AS
SELECT j.id AS job_id,
       j.queue,
       j.name,
       CASE WHEN j.run_id IS NULL THEN 'function' ELSE 'step' END AS kind,
       j.run_id,
       j.flow,
       j.state,
       j.attempt,
       j.priority,
       j.key,
       to_timestamp(j.created_at) AS created_at,
       to_timestamp(j.run_at) AS due_at,
       to_timestamp(j.finished_at) AS finished_at,
       (j.finished_at - j.created_at) * 1000 AS total_ms,
       j.input,
       j.result,
       j.error
FROM jobs j;
