-- The campaigns table, shared with the rest of the platform (docs/design.md, "Contracts").
-- The enrichment reads it by primary key (`WHERE id = ANY(...)`), so the key's index is all the
-- query needs. Idempotent: db_migrate records applied versions, and IF NOT EXISTS keeps a
-- database that already has the table (created by another part of the platform) usable.
CREATE TABLE IF NOT EXISTS campaigns (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    status      text NOT NULL,
    config      jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Operators list campaigns by status; the pipeline itself never scans by it.
CREATE INDEX IF NOT EXISTS campaigns_status_idx ON campaigns (status);
