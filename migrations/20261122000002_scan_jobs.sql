-- Bus scans: an operator asks a bus which addresses answer and what they are.
CREATE TABLE scan_jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT scan_jobs_pkey PRIMARY KEY,
    bus_id          bigint NOT NULL CONSTRAINT scan_jobs_bus_id_fkey REFERENCES buses (id) ON DELETE CASCADE,
    first_address   smallint NOT NULL,
    last_address    smallint NOT NULL,
    state           text NOT NULL DEFAULT 'queued',
    -- Addresses probed so far.
    probed          integer NOT NULL DEFAULT 0,
    -- [{"address": 3, "profiles": ["countis-e44"]}, ...]
    found           jsonb NOT NULL DEFAULT '[]',
    error           text,
    requested_by    text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CONSTRAINT scan_jobs_range_check CHECK (first_address BETWEEN 1 AND 247 AND last_address BETWEEN first_address AND 247),
    CONSTRAINT scan_jobs_state_check CHECK (state IN ('queued', 'running', 'done', 'failed'))
);
CREATE INDEX scan_jobs_bus_idx ON scan_jobs (bus_id, created_at DESC);
