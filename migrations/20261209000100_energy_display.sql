-- What a device's meter is set to count its energies in (profiles'
-- [energy_display]): its unit (kWh or MWh, the TH40C may be set to either)
-- and its decimals, which fix where its registers roll over. NULL: the
-- profile's default.
ALTER TABLE devices
    ADD COLUMN energy_unit text CHECK (energy_unit IN ('kWh', 'MWh')),
    ADD COLUMN energy_decimals smallint CHECK (energy_decimals BETWEEN 0 AND 6);
