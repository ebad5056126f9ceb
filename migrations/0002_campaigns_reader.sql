-- The enrichment's own read-only role (docs/infrastructure.md, "Data stores"): it may read
-- campaigns and nothing else, so a bug or an injection in the enrichment cannot write or drop.
-- Created NOLOGIN and without a password: no secret belongs in SQL. The migration function gives
-- it LOGIN and the password of the reader secret (READER_SECRET_ARN) after applying migrations.
-- Roles belong to the whole cluster while migrations run per database, possibly at the same
-- time (tests): so "already exists", also from a concurrent run, is fine, and the per-role
-- setting is per database.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'campaigns_reader') THEN
        CREATE ROLE campaigns_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO campaigns_reader', current_database());
    -- Also set by the enrichment on each connection; here it holds even for a client that forgets.
    EXECUTE format('ALTER ROLE campaigns_reader IN DATABASE %I SET statement_timeout = %L', current_database(), '2s');
END
$$;

GRANT USAGE ON SCHEMA public TO campaigns_reader;
GRANT SELECT ON campaigns TO campaigns_reader;
