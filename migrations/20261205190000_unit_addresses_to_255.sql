-- Unit addresses 1-255: the Modbus serial line specification reserves
-- 248-255, but the COUNTIS E33 and the pulse concentrator take them (their
-- manuals: 1-255); each device's profile bounds its own (`max_address`).
ALTER TABLE devices DROP CONSTRAINT devices_address_check;
ALTER TABLE devices ADD CONSTRAINT devices_address_check CHECK (address BETWEEN 1 AND 255);
