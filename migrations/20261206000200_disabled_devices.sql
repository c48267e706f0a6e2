-- A disabled device is `disabled`, not `unreachable`: it is not polled, so
-- nothing is known of its reachability, and its communication events are
-- closed when it is disabled (an open `comm_lost` would page someone for
-- a meter nobody polls).
ALTER TABLE devices DROP CONSTRAINT devices_state_check;
ALTER TABLE devices ADD CONSTRAINT devices_state_check
    CHECK (state IN ('online', 'unreachable', 'unknown', 'disabled'));
UPDATE devices SET state = 'disabled' WHERE NOT enabled;
UPDATE events SET cleared_at = now()
    WHERE cleared_at IS NULL AND code = 'comm_lost'
      AND device_id IN (SELECT id FROM devices WHERE NOT enabled);
