-- The entries of a meter's event logbook (IEC 62056-21 `P.98`), each once:
-- a read asks again for the newest entry stored, and what is already here
-- is not stored (nor its event raised) twice. The event log holds each
-- entry as an event at the meter's time; this table is the key.
CREATE TABLE meter_logbook_entries (
    device_id    bigint NOT NULL
        CONSTRAINT meter_logbook_entries_device_id_fkey REFERENCES devices (id) ON DELETE CASCADE,
    -- 98 for P.98.
    profile      smallint NOT NULL,
    -- The entry's stamp, as an instant.
    stamped_at   timestamptz NOT NULL,
    -- What the meter wrote in the entry's status field.
    status       text NOT NULL,
    -- Its values as written, `code(value*unit)` joined by spaces.
    entry_values text NOT NULL,
    read_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT meter_logbook_entries_pkey PRIMARY KEY (device_id, profile, stamped_at, status)
);
