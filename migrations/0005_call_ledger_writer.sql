-- The call ledger writer's own role (docs/infrastructure.md, "Data stores"): it writes the ledger,
-- reads campaigns (the retry policy is in their config) and nothing else, so it cannot read
-- do_not_call, change a campaign or drop a table. Created NOLOGIN and without a password, as
-- campaigns_reader in 0002: the migration function gives it LOGIN and the password of the
-- ledger writer secret (LEDGER_WRITER_SECRET_ARN). The same idempotence as 0002.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'call_ledger_writer') THEN
        CREATE ROLE call_ledger_writer NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO call_ledger_writer', current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO call_ledger_writer;
GRANT SELECT ON campaigns TO call_ledger_writer;
-- Rows are merged (INSERT ... ON CONFLICT DO UPDATE), never deleted through the parent table.
GRANT SELECT, INSERT, UPDATE ON call_attempt_keys, call_attempts TO call_ledger_writer;
-- Retention: the keys of dropped months, and rows of such months left in the default partition
-- (a DELETE with a WHERE reads the table too).
GRANT DELETE ON call_attempt_keys TO call_ledger_writer;
GRANT SELECT, DELETE ON call_attempts_default TO call_ledger_writer;

-- The partitions belong to the owner of call_attempts, so creating and dropping one is done by a
-- function that runs as that owner (SECURITY DEFINER), with a fixed search_path, and that only
-- the writer may call: PostgreSQL lets PUBLIC execute any new function unless revoked.
ALTER FUNCTION call_attempts_add_month(timestamptz) SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE ALL ON FUNCTION call_attempts_add_month(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION call_attempts_add_month(timestamptz) TO call_ledger_writer;

-- Drops one monthly partition of call_attempts, by the name call_attempts_add_month gave it, and
-- nothing else: any other name, or a table that is not such a partition, is refused.
CREATE OR REPLACE FUNCTION call_attempts_drop_month(partition_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF partition_name !~ '^call_attempts_y[0-9]{4}m[0-9]{2}$' OR NOT EXISTS (
        SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'call_attempts'::regclass AND c.relname = partition_name
    ) THEN
        RAISE EXCEPTION 'not a monthly partition of call_attempts: %', partition_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('DROP TABLE %I', partition_name);
END
$$;
REVOKE ALL ON FUNCTION call_attempts_drop_month(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION call_attempts_drop_month(text) TO call_ledger_writer;
