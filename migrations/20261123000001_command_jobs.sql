-- Commands to devices: an engineer writes a profile command (set the tariff,
-- the clock, the address, reset a counter) to one device or, where the
-- profile allows it, to every device of the bus at once (unit 0).
CREATE TABLE command_jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT command_jobs_pkey PRIMARY KEY,
    device_id     bigint NOT NULL CONSTRAINT command_jobs_device_id_fkey REFERENCES devices (id) ON DELETE CASCADE,
    -- The profile's `[modbus.commands]` key, e.g. set_tariff.
    command       text NOT NULL,
    -- Register values written; NULL until sent for a clock command whose
    -- values the server fills from the time it sends it.
    "values"      integer[],
    broadcast     boolean NOT NULL DEFAULT false,
    state         text NOT NULL DEFAULT 'queued',
    -- What came of it: a broadcast's note, or why it failed.
    outcome       text,
    error         text,
    requested_by  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    CONSTRAINT command_jobs_state_check CHECK (state IN ('queued', 'running', 'done', 'failed')),
    CONSTRAINT command_jobs_values_check CHECK (0 <= ALL ("values") AND 65535 >= ALL ("values"))
);
CREATE INDEX command_jobs_device_idx ON command_jobs (device_id, created_at DESC);
