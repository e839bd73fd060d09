-- flowtide SQLite schema, version 1.
-- Runs: indexed columns plus one JSON body (input, trigger, error, tokens, started/active/done).
CREATE TABLE IF NOT EXISTS runs (
    run_id       TEXT PRIMARY KEY,
    flow         TEXT NOT NULL,
    status       TEXT NOT NULL,
    version      INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL DEFAULT 0,
    started_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    completed_at REAL,
    body         TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_flow ON runs (flow, run_id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, run_id);

-- Events: the run history. gid is a global cursor for the lifecycle feed.
CREATE TABLE IF NOT EXISTS events (
    gid    INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    type   TEXT NOT NULL,
    body   TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_run ON events (run_id, seq);

-- Jobs: step jobs have id "<run_id>:<step>", so a run's jobs are a range of the primary key.
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    queue       TEXT NOT NULL,
    name        TEXT NOT NULL,
    run_id      TEXT,
    flow        TEXT,
    state       TEXT NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 0,
    reclaims    INTEGER NOT NULL DEFAULT 0,
    priority    INTEGER NOT NULL DEFAULT 0,
    run_at      REAL NOT NULL,
    created_at  REAL NOT NULL,
    finished_at REAL,
    key         TEXT,
    worker      TEXT,
    lease_until REAL,
    input       TEXT,
    result      TEXT,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (priority DESC, run_at)
    WHERE state IN ('waiting', 'delayed');
CREATE INDEX IF NOT EXISTS jobs_due_by_queue ON jobs (queue, priority DESC, run_at)
    WHERE state IN ('waiting', 'delayed');
CREATE INDEX IF NOT EXISTS jobs_leased ON jobs (lease_until) WHERE state = 'active';
CREATE INDEX IF NOT EXISTS jobs_by_queue ON jobs (queue, state);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_key ON jobs (queue, key)
    WHERE key IS NOT NULL AND state IN ('waiting', 'delayed', 'active');

CREATE TABLE IF NOT EXISTS state (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at REAL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS queues (
    name   TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS timers (
    id   TEXT PRIMARY KEY,
    due  REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due);
