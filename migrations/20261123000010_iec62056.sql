-- IEC 62056-21 devices and meter load profiles.
--
-- A device on an IEC 62056-21 bus is selected by its device address (the
-- text of the sign-on `/?ADDRESS!`, up to 32 characters; empty on an optical
-- probe), not by a Modbus unit: each device has exactly one of the two.
ALTER TABLE devices ALTER COLUMN address DROP NOT NULL;
ALTER TABLE devices ADD COLUMN iec_address text;
ALTER TABLE devices ADD CONSTRAINT devices_bus_iec_address_key UNIQUE (bus_id, iec_address);
ALTER TABLE devices ADD CONSTRAINT devices_one_address_check
    CHECK ((address IS NULL) <> (iec_address IS NULL));
ALTER TABLE devices ADD CONSTRAINT devices_iec_address_check
    CHECK (iec_address IS NULL OR length(iec_address) <= 32);

-- Load profile intervals: the energy of one interval per channel, as the
-- meter recorded it. Never updated: a correction is a later version of the
-- row under another source (see docs). Partitioned by month of the
-- interval's start, keyed device first, like readings.
CREATE TABLE load_profile_intervals (
    device_id         bigint NOT NULL,
    obis              text NOT NULL,
    interval_start    timestamptz NOT NULL,
    interval_minutes  integer NOT NULL,
    value             double precision NOT NULL,
    unit              text NOT NULL,
    -- The meter's status of the interval, as it sent it (EMH: two hex digits).
    meter_status      text NOT NULL DEFAULT '',
    quality           integer NOT NULL DEFAULT 0,
    source            text NOT NULL DEFAULT 'meter',
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT load_profile_intervals_pkey PRIMARY KEY (device_id, obis, interval_start),
    CONSTRAINT load_profile_intervals_minutes_check CHECK (interval_minutes BETWEEN 1 AND 120),
    CONSTRAINT load_profile_intervals_source_check CHECK (source IN ('meter', 'derived', 'estimated'))
) PARTITION BY RANGE (interval_start);

CREATE FUNCTION ohmnibus_ensure_interval_partition(at timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    partition   text := format('load_profile_intervals_y%sm%s',
                               to_char(month_start AT TIME ZONE 'UTC', 'YYYY'),
                               to_char(month_start AT TIME ZONE 'UTC', 'MM'));
BEGIN
    IF to_regclass(partition) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF load_profile_intervals FOR VALUES FROM (%L) TO (%L)',
                           partition, month_start, month_start + interval '1 month');
        EXCEPTION WHEN duplicate_table THEN
            NULL; -- another instance created it first
        END;
    END IF;
    RETURN partition;
END;
$$;
