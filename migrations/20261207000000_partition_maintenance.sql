-- Partitions are made ahead of time by the maintenance task
-- (src/maintenance), never by ingest: a reading or an interval for a month
-- with no partition yet goes to the default partition, and moves to its
-- month's partition when the maintenance task creates it.
--
-- Readings carry their data class, so that the values kept for a while
-- (instantaneous values) and those kept for ever (registers) lie in
-- partitions of their own within each month and retention drops whole
-- partitions: 0 = instantaneous (OBIS value group D = 7), 1 = everything
-- else (energy and demand registers, counters, times, status).

CREATE FUNCTION ohmnibus_reading_class(obis text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN split_part(split_part(split_part(obis, '*', 1), ':', 2), '.', 2) = '7'
                THEN 0 ELSE 1 END::smallint
$$;

ALTER TABLE readings ADD COLUMN data_class smallint NOT NULL DEFAULT 1;
UPDATE readings SET data_class = 0 WHERE ohmnibus_reading_class(obis) = 0;
-- Every writer names the class (ingest computes it with the function above).
ALTER TABLE readings ALTER COLUMN data_class DROP DEFAULT;
ALTER TABLE readings ADD CONSTRAINT readings_data_class_check CHECK (data_class IN (0, 1));
-- The class is a function of the code: the key stays unique per device,
-- code and time, and holds the class as every partition key must.
ALTER TABLE readings DROP CONSTRAINT readings_pkey;
ALTER TABLE readings ADD CONSTRAINT readings_pkey PRIMARY KEY (device_id, obis, read_at, data_class);

CREATE TABLE readings_default PARTITION OF readings DEFAULT;
CREATE TABLE load_profile_intervals_default PARTITION OF load_profile_intervals DEFAULT;

DROP FUNCTION ohmnibus_ensure_readings_partition(timestamptz);
DROP FUNCTION ohmnibus_ensure_interval_partition(timestamptz);
