-- One table for the work an operator asks of a bus: an on-demand read of a
-- device (`read_now`), a scan of a bus's unit addresses (`scan`), a command
-- written to a device (`command`). The worker that owns the bus claims its
-- queued jobs (`FOR UPDATE SKIP LOCKED`), so a job queued while no worker
-- runs its bus waits for one, and survives a restart.
--
-- Replaces read_jobs, scan_jobs and command_jobs. Their rows move here in
-- the order they were created, so they get new ids; `done` becomes
-- `succeeded`, and their failures, whose cause was recorded as text only,
-- get the error code `unknown`.
CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT jobs_pkey PRIMARY KEY,
    kind             text NOT NULL,
    bus_id           bigint NOT NULL CONSTRAINT jobs_bus_id_fkey REFERENCES buses (id) ON DELETE CASCADE,
    -- The device a read or a command is for; none for a scan.
    device_id        bigint CONSTRAINT jobs_device_id_fkey REFERENCES devices (id) ON DELETE CASCADE,
    state            text NOT NULL DEFAULT 'queued',
    -- What was asked: a scan's {"first_address", "last_address"}; a
    -- command's {"command", "values", "broadcast"} (values null for a clock
    -- command the server fills when it sends it).
    parameters       jsonb NOT NULL DEFAULT '{}',
    -- How far it got: a scan's {"probed", "found"}; a command's
    -- {"values"} actually sent.
    progress         jsonb NOT NULL DEFAULT '{}',
    -- What came of it: a read's {"readings"}; a command's {"outcome"}.
    result           jsonb,
    error_code       text,
    error_message    text,
    requested_by     text NOT NULL,
    -- A key the requester sends so that a retried request does not queue
    -- the job twice: one job per requester, kind and key.
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    CONSTRAINT jobs_kind_check CHECK (kind IN ('read_now', 'scan', 'command')),
    CONSTRAINT jobs_state_check CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    CONSTRAINT jobs_device_check CHECK ((kind = 'scan') = (device_id IS NULL)),
    CONSTRAINT jobs_error_check CHECK ((error_code IS NULL) = (error_message IS NULL)),
    CONSTRAINT jobs_idempotency_key_key UNIQUE (requested_by, kind, idempotency_key)
);
-- What a bus's worker claims.
CREATE INDEX jobs_queued_idx ON jobs (bus_id, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_device_idx ON jobs (device_id, created_at DESC);
CREATE INDEX jobs_bus_idx ON jobs (bus_id, created_at DESC);
CREATE INDEX jobs_created_idx ON jobs (id DESC);

INSERT INTO jobs (kind, bus_id, device_id, state, parameters, progress, result, error_code, error_message,
                  requested_by, created_at, started_at, finished_at)
SELECT kind, bus_id, device_id, state, parameters, progress, result,
       CASE WHEN error IS NULL THEN NULL ELSE 'unknown' END, error,
       requested_by, created_at, started_at, finished_at
FROM (
    SELECT 'read_now' AS kind, d.bus_id, r.device_id,
           CASE r.state WHEN 'done' THEN 'succeeded' ELSE r.state END AS state,
           '{}'::jsonb AS parameters, '{}'::jsonb AS progress,
           CASE WHEN r.readings IS NULL THEN NULL ELSE jsonb_build_object('readings', r.readings) END AS result,
           r.error, r.requested_by, r.created_at, r.started_at, r.finished_at
    FROM read_jobs r JOIN devices d ON d.id = r.device_id
    UNION ALL
    SELECT 'scan', s.bus_id, NULL,
           CASE s.state WHEN 'done' THEN 'succeeded' ELSE s.state END,
           jsonb_build_object('first_address', s.first_address, 'last_address', s.last_address),
           jsonb_build_object('probed', s.probed, 'found', s.found),
           NULL, s.error, s.requested_by, s.created_at, NULL, s.finished_at
    FROM scan_jobs s
    UNION ALL
    SELECT 'command', d.bus_id, c.device_id,
           CASE c.state WHEN 'done' THEN 'succeeded' ELSE c.state END,
           jsonb_build_object('command', c.command, 'values', to_jsonb(c."values"), 'broadcast', c.broadcast),
           CASE WHEN c.started_at IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('values', to_jsonb(c."values")) END,
           CASE WHEN c.state = 'done' THEN jsonb_build_object('outcome', c.outcome) ELSE NULL END,
           c.error, c.requested_by, c.created_at, c.started_at, c.finished_at
    FROM command_jobs c JOIN devices d ON d.id = c.device_id
) AS old
ORDER BY created_at;

DROP TABLE read_jobs;
DROP TABLE scan_jobs;
DROP TABLE command_jobs;
