-- On-demand reads: an operator asks for a device's full readout now.
CREATE TABLE read_jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT read_jobs_pkey PRIMARY KEY,
    device_id     bigint NOT NULL CONSTRAINT read_jobs_device_id_fkey REFERENCES devices (id) ON DELETE CASCADE,
    state         text NOT NULL DEFAULT 'queued',
    -- Values read, once done.
    readings      integer,
    error         text,
    requested_by  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    CONSTRAINT read_jobs_state_check CHECK (state IN ('queued', 'running', 'done', 'failed'))
);
CREATE INDEX read_jobs_device_idx ON read_jobs (device_id, created_at DESC);
