-- The call ledger (docs/design.md, "The ledger and retries"): one row per call attempt, keyed by
-- its callId (the dialer's UUIDv5 of campaignId, contactId, attempts), written idempotently and
-- in any order by the records writer (lambdas/call_ledger) and never read by the enrichment.
--
-- Partitioned by month on recorded_at, so retention drops whole partitions. PostgreSQL wants the
-- partition key in every unique key, and neither an outcome nor an attempt record can tell which
-- month the other one will pick (an outcome may come first, a call may span midnight on the 1st).
-- So each callId gets its recorded_at once, in call_attempt_keys below (unpartitioned, callId
-- alone is its key): every write takes the month from there, in the same statement, and the
-- primary key (call_id, recorded_at) is then one row per callId.

CREATE TABLE IF NOT EXISTS call_attempt_keys (
    call_id     text PRIMARY KEY,
    -- When the ledger first heard of the call: the row's partition key, never changed.
    recorded_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS call_attempts (
    call_id          text NOT NULL,
    -- The attempt this one retries (set when the retry is enqueued), or null.
    parent_call_id   text,
    campaign_id      text NOT NULL,
    -- Null while only the outcome is known (an orphan).
    contact_id       text,
    phone_number     text,
    attempt          integer CHECK (attempt >= 0),
    -- Null while only the outcome is known, or while a retry waits to be dialed.
    disposition      text CHECK (disposition IN ('dialed', 'dropped')),
    -- The drop reason, from the shared vocabulary (shared/drops.py).
    reason           text,
    admitted_at      timestamptz,
    sent_at          timestamptz,
    dropped_at       timestamptz,
    worker_status    integer,
    outcome          text CHECK (outcome IN ('answered', 'machine', 'no_answer', 'busy', 'failed', 'rejected')),
    ended_at         timestamptz,
    duration_seconds double precision CHECK (duration_seconds >= 0),
    -- The task's body as the scheduler sent it: what a retry re-sends, attempts + 1.
    task_body        jsonb,
    -- The retry enqueued after this attempt ended (its deterministic callId): at most one.
    retry_call_id    text,
    recorded_at      timestamptz NOT NULL,
    PRIMARY KEY (call_id, recorded_at),
    CHECK (disposition IS DISTINCT FROM 'dropped' OR reason IS NOT NULL),
    CHECK (outcome IS NULL OR ended_at IS NOT NULL)
) PARTITION BY RANGE (recorded_at);

-- Nothing is ever refused for want of a month: rows land here until their month exists, and
-- call_attempts_add_month moves them out when it creates it.
CREATE TABLE IF NOT EXISTS call_attempts_default PARTITION OF call_attempts DEFAULT;

-- "Every call to this number" (an audit, two years back) and "was contact X called" (on-call,
-- and the retry policy's count of a contact's outcomes per campaign).
CREATE INDEX IF NOT EXISTS call_attempts_phone_idx ON call_attempts (phone_number, recorded_at);
CREATE INDEX IF NOT EXISTS call_attempts_contact_idx ON call_attempts (contact_id, campaign_id, attempt);
-- Outcomes still waiting for their attempt (counted, alarmed on).
CREATE INDEX IF NOT EXISTS call_attempts_orphans_idx ON call_attempts (recorded_at)
    WHERE disposition IS NULL AND outcome IS NOT NULL;
-- What a Redis restore reads (call_ledger/restore.py, same expression and predicate): the calls
-- that took a claim the dialer settled, by the time they were admitted, over the last day. A
-- worker's 4xx (worker_rejected) keeps its claim and its recipient count, as a dialed call does.
CREATE INDEX IF NOT EXISTS call_attempts_claimed_idx ON call_attempts ((COALESCE(admitted_at, sent_at, dropped_at)))
    WHERE disposition = 'dialed' OR reason = 'worker_rejected';

-- The partition of the month that holds `month_start` (UTC months), created if missing; rows of
-- that month already in the default partition move into it. Returns its name. Run ahead of time
-- (the retention job) so the default partition stays empty and this never has much to move.
CREATE OR REPLACE FUNCTION call_attempts_add_month(month_start timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := date_trunc('month', month_start, 'UTC');
    hi timestamptz := date_trunc('month', month_start, 'UTC') + interval '1 month';
    name text := 'call_attempts_y' || to_char(lo AT TIME ZONE 'UTC', 'YYYY"m"MM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    -- Serializes concurrent creators (the migration and the job) in this database.
    PERFORM pg_advisory_xact_lock(7340004);
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE call_attempts INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    EXECUTE format(
        'WITH moved AS (DELETE FROM call_attempts_default WHERE recorded_at >= %L AND recorded_at < %L RETURNING *)'
        ' INSERT INTO %I SELECT * FROM moved', lo, hi, name);
    EXECUTE format('ALTER TABLE call_attempts ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
    RETURN name;
END
$$;

-- This month and the next three, so a fresh database never writes into the default partition.
SELECT call_attempts_add_month(date_trunc('month', now(), 'UTC') + make_interval(months => m))
FROM generate_series(0, 3) AS m;

-- No grants: the enrichment's read-only role (campaigns_reader) never sees the ledger.
