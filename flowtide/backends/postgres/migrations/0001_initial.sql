-- flowtide PostgreSQL schema, version 1. Every statement runs with search_path set to the
-- configured schema (default "flowtide"), so the tables land there. Times are seconds since the
-- Unix epoch (double precision, exact round trips); the views of later migrations show them as
-- timestamptz. Documented in docs/postgres.md.

-- Runs: indexed columns plus one JSON body (input, trigger, error, tokens, started/active/done).
-- last_seq is the seq of the run's newest event: appending an event bumps it under the row lock.
CREATE TABLE runs (
    run_id       text PRIMARY KEY,
    flow         text NOT NULL,
    status       text NOT NULL,
    version      integer NOT NULL,
    last_seq     integer NOT NULL DEFAULT 0,
    started_at   double precision NOT NULL,
    updated_at   double precision NOT NULL,
    completed_at double precision,
    body         jsonb NOT NULL
);
CREATE INDEX runs_by_flow ON runs (flow, run_id);
CREATE INDEX runs_by_status ON runs (status, run_id);
CREATE INDEX runs_finished ON runs (completed_at) WHERE completed_at IS NOT NULL;

-- Events: the run history, numbered 1, 2, 3... per run. pos orders the lifecycle feed by
-- commit: (transaction id << 20) + rank of the row in its transaction; a reader only reads
-- positions below the oldest flowtide transaction still writing, so it never skips a late commit.
CREATE TABLE events (
    run_id  text NOT NULL,
    seq     integer NOT NULL,
    pos     bigint NOT NULL,
    ts      double precision NOT NULL,
    type    text NOT NULL,
    flow    text NOT NULL,
    step    text,
    attempt integer,
    data    jsonb,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX events_feed ON events (pos) WHERE type LIKE 'flow.%' OR type LIKE 'step.%';
CREATE INDEX events_by_type ON events (type, ts);

-- Jobs: step jobs have id "<run_id>:<step>"; seq is the insertion order (FIFO tie-break and
-- the cursor of job listings).
CREATE TABLE jobs (
    id          text PRIMARY KEY,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    queue       text NOT NULL,
    name        text NOT NULL,
    run_id      text,
    flow        text,
    state       text NOT NULL,
    attempt     integer NOT NULL DEFAULT 0,
    reclaims    integer NOT NULL DEFAULT 0,
    priority    integer NOT NULL DEFAULT 0,
    run_at      double precision NOT NULL,
    created_at  double precision NOT NULL,
    finished_at double precision,
    key         text,
    worker      text,
    lease_until double precision,
    input       jsonb,
    result      jsonb,
    error       jsonb
);
CREATE INDEX jobs_due ON jobs (priority DESC, run_at, seq) WHERE state IN ('waiting', 'delayed');
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'active';
CREATE INDEX jobs_by_queue ON jobs (queue, seq);
CREATE INDEX jobs_by_run ON jobs (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX jobs_by_key ON jobs (queue, key)
    WHERE key IS NOT NULL AND state IN ('waiting', 'delayed', 'active');

-- State: per run (or per job, for standalone functions); expired values are invisible.
CREATE TABLE state (
    scope      text NOT NULL,
    key        text NOT NULL,
    value      jsonb NOT NULL,
    expires_at double precision,
    PRIMARY KEY (scope, key)
);

CREATE TABLE queues (
    name   text PRIMARY KEY,
    paused boolean NOT NULL DEFAULT false
);

-- Timers: stall deadlines (later cron occurrences and await deadlines); claiming one pushes
-- its due time forward by a lease, so exactly one process acts on it.
CREATE TABLE timers (
    id   text PRIMARY KEY,
    due  double precision NOT NULL,
    kind text NOT NULL,
    data jsonb
);
CREATE INDEX timers_by_due ON timers (due);
