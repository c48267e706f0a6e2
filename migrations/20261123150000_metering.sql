-- Metering data: billing periods, the sites' billing schedule, interval
-- length and physical limits per device, and versioned intervals.

-- A site's billing schedule: the day of the month (1–28, as the A1000 offers)
-- and the hour, in the site's zone, at which the server closes a billing
-- period for meters that keep no history of their own. Both or neither.
ALTER TABLE sites
    ADD COLUMN billing_day  smallint,
    ADD COLUMN billing_hour smallint,
    ADD CONSTRAINT sites_billing_day_check CHECK (billing_day BETWEEN 1 AND 28),
    ADD CONSTRAINT sites_billing_hour_check CHECK (billing_hour BETWEEN 0 AND 23),
    ADD CONSTRAINT sites_billing_schedule_check CHECK ((billing_day IS NULL) = (billing_hour IS NULL));

-- Refuses any change to a row of a table whose rows are records of fact.
CREATE FUNCTION ohmnibus_refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rows of % are never changed; store a correction as a new row', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

-- A closed billing period: the registers as they stood at a billing reset,
-- read from the meter's history (source meter) or snapshotted by the server
-- on the site's schedule (source server). Immutable.
CREATE TABLE billing_periods (
    id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT billing_periods_pkey PRIMARY KEY,
    device_id    bigint NOT NULL CONSTRAINT billing_periods_device_id_fkey REFERENCES devices (id) ON DELETE CASCADE,
    reset_at     timestamptz NOT NULL,
    source       text NOT NULL,
    -- The meter's own count of resets, where it keeps one (0-0:0.1.0).
    reset_count  integer,
    -- [{"obis": "1-1:1.8.0", "value": 1234.5, "unit": "kWh", "captured_at": null}, …]
    registers    jsonb NOT NULL,
    quality      integer NOT NULL DEFAULT 0,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT billing_periods_source_check CHECK (source IN ('meter', 'server')),
    CONSTRAINT billing_periods_registers_check CHECK (jsonb_typeof(registers) = 'array'),
    CONSTRAINT billing_periods_reset_key UNIQUE (device_id, source, reset_at)
);
CREATE INDEX billing_periods_device_reset_idx ON billing_periods (device_id, reset_at DESC);
CREATE TRIGGER billing_periods_immutable BEFORE UPDATE ON billing_periods
    FOR EACH ROW EXECUTE FUNCTION ohmnibus_refuse_update();

-- Per device: the length of its derived intervals, and what bounds its
-- consumption physically (spike detection): the CT ratio, the largest
-- current on the meter's terminals, the nominal phase voltage and the
-- number of phases. A null max_current_a takes the profile's value.
ALTER TABLE devices
    ADD COLUMN interval_minutes integer NOT NULL DEFAULT 15,
    ADD COLUMN ct_ratio         double precision NOT NULL DEFAULT 1,
    ADD COLUMN max_current_a    double precision,
    ADD COLUMN voltage_v        double precision NOT NULL DEFAULT 230,
    ADD COLUMN phases           smallint NOT NULL DEFAULT 3,
    ADD CONSTRAINT devices_interval_minutes_check CHECK (interval_minutes BETWEEN 1 AND 120),
    ADD CONSTRAINT devices_ct_ratio_check CHECK (ct_ratio > 0),
    ADD CONSTRAINT devices_max_current_a_check CHECK (max_current_a > 0),
    ADD CONSTRAINT devices_voltage_v_check CHECK (voltage_v > 0),
    ADD CONSTRAINT devices_phases_check CHECK (phases IN (1, 2, 3));

-- Intervals become versioned: version 1 is what was first stored (read from
-- the meter, derived from registers, or estimated for a gap); a later
-- version (a meter value arriving for an estimated interval, an operator's
-- correction) is a new row saying who made it and why. The newest version
-- is the interval's value; no row is ever changed.
ALTER TABLE load_profile_intervals
    ADD COLUMN version    integer NOT NULL DEFAULT 1,
    ADD COLUMN changed_by text,
    ADD COLUMN reason     text,
    ADD CONSTRAINT load_profile_intervals_version_check CHECK (version >= 1),
    ADD CONSTRAINT load_profile_intervals_change_check CHECK (version = 1 OR (changed_by IS NOT NULL AND reason IS NOT NULL));
ALTER TABLE load_profile_intervals DROP CONSTRAINT load_profile_intervals_pkey;
ALTER TABLE load_profile_intervals
    ADD CONSTRAINT load_profile_intervals_pkey PRIMARY KEY (device_id, obis, interval_start, version);
ALTER TABLE load_profile_intervals DROP CONSTRAINT load_profile_intervals_source_check;
ALTER TABLE load_profile_intervals
    ADD CONSTRAINT load_profile_intervals_source_check CHECK (source IN ('meter', 'derived', 'estimated', 'edited'));
CREATE TRIGGER load_profile_intervals_immutable BEFORE UPDATE ON load_profile_intervals
    FOR EACH ROW EXECUTE FUNCTION ohmnibus_refuse_update();
