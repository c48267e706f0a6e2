-- Commands sent to many devices at once (`POST /api/v1/commands/bulk`):
-- one row per request, with the command as asked, its target and what came
-- of it for each device: the command job queued for it (a broadcast's one
-- job for its whole bus) or why it was refused. The jobs' states give the
-- progress, so it survives a restart.
CREATE TABLE command_batches (
    id               bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT command_batches_pkey PRIMARY KEY,
    -- {"kind", ...its named parameters}, as a single command's job holds it.
    command          jsonb NOT NULL,
    -- {"device_ids": [...]}, {"site_id": N} or {"bus_id": N}.
    target           jsonb NOT NULL,
    broadcast        boolean NOT NULL DEFAULT false,
    -- [{"device_id", "command_id", "error": {"code", "message"} | null}].
    results          jsonb NOT NULL DEFAULT '[]',
    requested_by     text NOT NULL,
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT command_batches_idempotency_key_key UNIQUE (requested_by, idempotency_key)
);

-- A site's clock synchronisation: while enabled, once a day at `at`
-- (local, in the site's zone) the server queues a clock set for each of its
-- meters whose clock was last read at least `min_drift_s` seconds off.
ALTER TABLE sites ADD COLUMN clock_sync_enabled boolean NOT NULL DEFAULT false;
ALTER TABLE sites ADD COLUMN clock_sync_at time NOT NULL DEFAULT '03:00';
ALTER TABLE sites ADD COLUMN clock_sync_min_drift_s integer NOT NULL DEFAULT 1
    CONSTRAINT sites_clock_sync_min_drift_s_check CHECK (clock_sync_min_drift_s >= 0);

-- A meter whose tariff source is the bus: the server switches its tariff
-- at each switch time of this calendar.
ALTER TABLE devices ADD COLUMN tariff_calendar_id bigint
    CONSTRAINT devices_tariff_calendar_id_fkey REFERENCES tariff_calendars (id);
