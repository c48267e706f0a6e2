-- A logbook (event logbook or programming log, by profile number) the
-- meter refused whole: it keeps none, and it is not asked again, also
-- after a restart.
CREATE TABLE meter_logbook_refusals (
    device_id  bigint NOT NULL
        CONSTRAINT meter_logbook_refusals_device_id_fkey REFERENCES devices (id) ON DELETE CASCADE,
    profile    smallint NOT NULL,
    refused_at timestamptz NOT NULL,
    CONSTRAINT meter_logbook_refusals_pkey PRIMARY KEY (device_id, profile)
);
