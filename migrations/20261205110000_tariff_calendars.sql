-- Tariff calendars (docs/TARIFFS.md): a name, and versions each with the
-- instant it takes effect and its definition (the JSON of
-- metering::tou::definition). A site may name the calendar its statements
-- use by default.
CREATE TABLE tariff_calendars (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT tariff_calendars_pkey PRIMARY KEY,
    name        text NOT NULL CONSTRAINT tariff_calendars_name_key UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tariff_calendar_versions (
    calendar_id     bigint NOT NULL
                    CONSTRAINT tariff_calendar_versions_calendar_id_fkey REFERENCES tariff_calendars (id) ON DELETE CASCADE,
    version         integer NOT NULL CONSTRAINT tariff_calendar_versions_version_check CHECK (version >= 1),
    effective_from  timestamptz NOT NULL,
    definition      jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,
    CONSTRAINT tariff_calendar_versions_pkey PRIMARY KEY (calendar_id, version),
    CONSTRAINT tariff_calendar_versions_effective_from_key UNIQUE (calendar_id, effective_from)
);

ALTER TABLE sites ADD COLUMN default_calendar_id bigint
    CONSTRAINT sites_default_calendar_id_fkey REFERENCES tariff_calendars (id);
