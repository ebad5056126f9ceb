-- The recipient's IANA zones the dialer judged a call's calling window in, comma-separated (from
-- its `dialed` record): with admitted_at, what an audit of "called at the wrong hour" reads. Null
-- for rows recorded before this column, for drops and for duplicates that carried none. Added to
-- the partitioned table, so every partition has it, and call_attempts_add_month copies it.
ALTER TABLE call_attempts ADD COLUMN IF NOT EXISTS time_zones text;
