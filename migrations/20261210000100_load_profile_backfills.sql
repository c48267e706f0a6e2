-- The first read of a meter's own load profile goes newest first, a chunk
-- at a time, back to the oldest interval the meter keeps (or the profile's
-- backfill depth). Its progress is kept so that a restart resumes where it
-- stopped, and so that the spans it has not reached yet are shown as
-- pending rather than missing.
CREATE TABLE load_profile_backfills (
    device_id      bigint NOT NULL
        CONSTRAINT load_profile_backfills_device_id_fkey REFERENCES devices (id) ON DELETE CASCADE,
    started_at     timestamptz NOT NULL,
    -- The deepest the backfill goes: its start minus the profile's
    -- backfill depth.
    depth_limit    timestamptz NOT NULL,
    -- Everything from here to the present has been asked of the meter.
    oldest_reached timestamptz NOT NULL,
    -- Set once the meter had nothing older (or the depth was reached).
    completed_at   timestamptz,
    CONSTRAINT load_profile_backfills_pkey PRIMARY KEY (device_id),
    CONSTRAINT load_profile_backfills_order_check CHECK (depth_limit <= oldest_reached)
);
