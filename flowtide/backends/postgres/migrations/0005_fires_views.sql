-- flowtide PostgreSQL schema, version 5: the trigger history as views over records.
-- fires: one row per fire of an entry trigger (newest fire ids sort last: they are UUIDv7).
CREATE VIEW fires AS
SELECT substr(r.collection, 7) AS trigger_name,
       r.key AS fire_id,
       r.value ->> 'type' AS trigger_type,
       (r.value ->> 'ts')::timestamptz AS fired_at,
       r.value ->> 'source' AS source,
       jsonb_array_length(coalesce(r.value -> 'run_ids', '[]'::jsonb)) AS runs_started,
       r.value -> 'run_ids' AS run_ids,
       r.value -> 'skipped' AS skipped,
       r.value -> 'failed' AS failed,
       r.value ->> 'replay_of' AS replay_of,
       (r.value ->> 'scheduled_at')::timestamptz AS scheduled_at,
       r.value -> 'payload' AS payload
FROM records r
WHERE r.collection LIKE 'fires:%';

-- pending_awaits: one row per open await (webhook approvals, event and time waits).
CREATE VIEW pending_awaits AS
SELECT r.key AS await_id,
       r.value ->> 'run_id' AS run_id,
       r.value ->> 'flow' AS flow,
       r.value ->> 'step' AS step,
       r.value ->> 'position' AS position,
       r.value ->> 'type' AS await_type,
       (r.value ->> 'registered_at')::timestamptz AS registered_at,
       (r.value ->> 'deadline')::timestamptz AS deadline
FROM records r
WHERE r.collection = 'awaits';
