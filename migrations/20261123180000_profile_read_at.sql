-- When a device's own load profile was last read through to the present:
-- a span after its last stored interval that such a read returned nothing
-- for is a gap the meter will not fill; a span not yet read (a backfill
-- still catching up after an outage) is not.
ALTER TABLE devices ADD COLUMN profile_read_at timestamptz;
