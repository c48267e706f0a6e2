-- Per-device period of the history register group (closed billing periods).
ALTER TABLE devices
    ADD COLUMN history_seconds integer NOT NULL DEFAULT 900,
    ADD CONSTRAINT devices_history_seconds_check CHECK (history_seconds > 0);
