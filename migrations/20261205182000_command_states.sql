-- Typed commands. A command that needs a technician on site (a meter that
-- takes programming only while its "PRG" window is open) waits in
-- `awaiting_field_programming`; it is still pending, so its bus's claimer
-- keeps it, and it may be cancelled like a queued one.
--
-- A command's `parameters` are now {"kind", ...its named parameters};
-- commands queued before hold {"command", "values", "broadcast"} and are
-- shown as they were.
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('queued', 'running', 'awaiting_field_programming', 'succeeded', 'failed', 'cancelled'));

DROP INDEX jobs_queued_idx;
CREATE INDEX jobs_queued_idx ON jobs (bus_id, id) WHERE state IN ('queued', 'running', 'awaiting_field_programming');
