-- A device's intervals by start, whatever their channel: the data-quality
-- summary asks for a device's first interval and for the period of its
-- newest one read from the meter, which the primary key (device, channel,
-- start, version) answers only by reading every interval of the device.
-- On the partitioned table, so every month's partition has it.
CREATE INDEX load_profile_intervals_device_start ON load_profile_intervals (device_id, interval_start);
