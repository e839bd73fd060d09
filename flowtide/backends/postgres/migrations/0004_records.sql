-- flowtide PostgreSQL schema, version 4: records, small keyed collections (triggers, fires,
-- schedules, awaits, counters). A record whose expires_at has passed is absent for every
-- operation; expired rows are overwritten in place, or deleted by retention in small batches.
-- Keys sort bytewise (COLLATE "C"): listings page through them in a stable order whatever the
-- database's collation is (fire ids are time-ordered UUIDv7).
CREATE TABLE records (
    collection text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    value      jsonb NOT NULL,
    expires_at double precision,
    PRIMARY KEY (collection, key)
);
CREATE INDEX records_expiring ON records (expires_at) WHERE expires_at IS NOT NULL;
ALTER TABLE records SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
