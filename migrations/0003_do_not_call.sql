-- Numbers that must never be dialed (docs/design.md, "Do-not-call"). The enrichment looks up
-- every batch's numbers here, uncached, in the same round trip as its campaigns: a number added
-- stops being dialed from the next batch. Numbers are E.164, as in the dial task.
CREATE TABLE IF NOT EXISTS do_not_call (
    phone_number text PRIMARY KEY CHECK (phone_number ~ '^\+[1-9][0-9]{1,14}$'),
    source text,
    added_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT ON do_not_call TO campaigns_reader;
