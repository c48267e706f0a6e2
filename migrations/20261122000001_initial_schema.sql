-- Ohmnibus initial schema: sites, buses, devices, readings, events, users,
-- API tokens and the audit log.

CREATE TABLE sites (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT sites_pkey PRIMARY KEY,
    name        text NOT NULL CONSTRAINT sites_name_key UNIQUE,
    time_zone   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Every bus belongs to a site; installations with one site never see this row.
INSERT INTO sites (name, time_zone) VALUES ('Default', 'UTC');

CREATE TABLE buses (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT buses_pkey PRIMARY KEY,
    site_id     bigint NOT NULL CONSTRAINT buses_site_id_fkey REFERENCES sites (id),
    name        text NOT NULL CONSTRAINT buses_name_key UNIQUE,
    -- {"kind": "modbus_tcp" | "rtu_over_tcp" | "serial_rtu", ...settings}
    transport   jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT buses_transport_kind_check CHECK (transport ? 'kind')
);

CREATE TABLE devices (
    id                    bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT devices_pkey PRIMARY KEY,
    bus_id                bigint NOT NULL CONSTRAINT devices_bus_id_fkey REFERENCES buses (id),
    name                  text NOT NULL,
    profile               text NOT NULL,
    address               smallint NOT NULL,
    realtime_seconds      integer NOT NULL,
    energy_seconds        integer NOT NULL,
    enabled               boolean NOT NULL DEFAULT true,
    state                 text NOT NULL DEFAULT 'unknown',
    last_success_at       timestamptz,
    last_attempt_at       timestamptz,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    last_error            text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT devices_bus_address_key UNIQUE (bus_id, address),
    CONSTRAINT devices_address_check CHECK (address BETWEEN 1 AND 247),
    CONSTRAINT devices_state_check CHECK (state IN ('online', 'unreachable', 'unknown')),
    CONSTRAINT devices_realtime_seconds_check CHECK (realtime_seconds > 0),
    CONSTRAINT devices_energy_seconds_check CHECK (energy_seconds > 0)
);

-- Readings: partitioned by month of read_at, keyed device first so the table
-- can later be distributed by device without a schema change. Partitions are
-- created on demand by ohmnibus_ensure_readings_partition().
CREATE TABLE readings (
    device_id    bigint NOT NULL,
    obis         text NOT NULL,
    read_at      timestamptz NOT NULL,
    value        double precision NOT NULL,
    unit         text NOT NULL,
    captured_at  timestamptz,
    quality      integer NOT NULL DEFAULT 0,
    CONSTRAINT readings_pkey PRIMARY KEY (device_id, obis, read_at)
) PARTITION BY RANGE (read_at);

CREATE FUNCTION ohmnibus_ensure_readings_partition(at timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    partition   text := format('readings_y%sm%s', to_char(month_start AT TIME ZONE 'UTC', 'YYYY'),
                                                  to_char(month_start AT TIME ZONE 'UTC', 'MM'));
BEGIN
    IF to_regclass(partition) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)',
                           partition, month_start, month_start + interval '1 month');
        EXCEPTION WHEN duplicate_table THEN
            NULL; -- another instance created it first
        END;
    END IF;
    RETURN partition;
END;
$$;

-- Latest value per device and OBIS code, kept by ingest, so the dashboards and
-- /registers never scan the time series.
CREATE TABLE latest_readings (
    device_id    bigint NOT NULL CONSTRAINT latest_readings_device_id_fkey REFERENCES devices (id) ON DELETE CASCADE,
    obis         text NOT NULL,
    read_at      timestamptz NOT NULL,
    value        double precision NOT NULL,
    unit         text NOT NULL,
    captured_at  timestamptz,
    quality      integer NOT NULL DEFAULT 0,
    CONSTRAINT latest_readings_pkey PRIMARY KEY (device_id, obis)
);

CREATE TABLE events (
    id               bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT events_pkey PRIMARY KEY,
    device_id        bigint CONSTRAINT events_device_id_fkey REFERENCES devices (id),
    code             text NOT NULL,
    severity         text NOT NULL,
    started_at       timestamptz NOT NULL,
    cleared_at       timestamptz,
    message          text NOT NULL,
    acknowledged_by  text,
    acknowledged_at  timestamptz,
    CONSTRAINT events_severity_check CHECK (severity IN ('info', 'warning', 'critical'))
);
CREATE INDEX events_device_started_idx ON events (device_id, started_at DESC);
-- At most one open event of a code per device.
CREATE UNIQUE INDEX events_open_key ON events (device_id, code) WHERE cleared_at IS NULL;

CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT users_pkey PRIMARY KEY,
    name        text NOT NULL CONSTRAINT users_name_key UNIQUE,
    role        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_role_check CHECK (role IN ('viewer', 'operator', 'engineer', 'secadm', 'secaud'))
);

-- Tokens are stored as SHA-256 digests; the token itself is shown once.
CREATE TABLE api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT api_tokens_pkey PRIMARY KEY,
    user_id       bigint NOT NULL CONSTRAINT api_tokens_user_id_fkey REFERENCES users (id),
    token_sha256  bytea NOT NULL CONSTRAINT api_tokens_token_sha256_key UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT audit_log_pkey PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL,
    detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
