-- Which meter answers at each device's address (issue: meter identity).
-- `expected` is the identity first seen, or set by an engineer; `seen` the
-- one read last. While they differ the device is quarantined: its readings
-- wait in held_readings, never billed as the old meter's, until an
-- engineer confirms the replacement, which starts a new register series
-- (no consumption is derived across `series_started_at`).
CREATE TABLE device_identities (
    device_id          bigint PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    expected           text,
    expected_since     timestamptz,
    seen               text,
    seen_at            timestamptz,
    quarantined_since  timestamptz,
    series             integer NOT NULL DEFAULT 1,
    series_started_at  timestamptz
);

-- Readings of a quarantined device, as `readings` would hold them.
CREATE TABLE held_readings (
    device_id    bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    obis         text NOT NULL,
    read_at      timestamptz NOT NULL,
    value        double precision NOT NULL,
    unit         text NOT NULL,
    captured_at  timestamptz,
    quality      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, obis, read_at)
);
