-- flowtide SQLite schema, version 2: records, small keyed collections (triggers, fires,
-- schedules, awaits, counters). A record whose expires_at has passed is absent for every
-- operation; expired rows are overwritten in place or deleted now and then by the backend.
CREATE TABLE IF NOT EXISTS records (
    collection TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at REAL,
    PRIMARY KEY (collection, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_expiring ON records (expires_at)
    WHERE expires_at IS NOT NULL;
