-- Sites as trees of meters: every device belongs to a site (until now only
-- through its bus), may name the meter upstream of it on the same site,
-- and virtual meters sum or subtract devices. docs/SITES.md.

-- A device's site: its bus's site unless set otherwise (a gateway's line
-- may serve meters of two sites).
ALTER TABLE devices ADD COLUMN site_id bigint CONSTRAINT devices_site_id_fkey REFERENCES sites (id);
UPDATE devices d SET site_id = b.site_id FROM buses b WHERE b.id = d.bus_id;
ALTER TABLE devices ALTER COLUMN site_id SET NOT NULL;
CREATE INDEX devices_site_idx ON devices (site_id);

-- The meter upstream of a device: on the same site (the pair references
-- the parent's own pair), never itself. Cycles are refused by the service,
-- which walks the chain up inside the change's transaction.
ALTER TABLE devices
    ADD COLUMN parent_device_id bigint,
    ADD CONSTRAINT devices_id_site_key UNIQUE (id, site_id),
    ADD CONSTRAINT devices_parent_same_site_fkey FOREIGN KEY (parent_device_id, site_id)
        REFERENCES devices (id, site_id),
    ADD CONSTRAINT devices_parent_not_self_check CHECK (parent_device_id <> id);
CREATE INDEX devices_parent_idx ON devices (parent_device_id);

-- The share of a parent's energy its children may leave unmetered before a
-- balance raises an event, in percent (issue 11: default 5 %).
-- The derivation pass balances each closed local day once; this is the end
-- of the last day it balanced.
ALTER TABLE sites
    ADD COLUMN balance_threshold_percent double precision NOT NULL DEFAULT 5,
    ADD COLUMN balance_checked_until timestamptz,
    ADD CONSTRAINT sites_balance_threshold_percent_check
        CHECK (balance_threshold_percent > 0 AND balance_threshold_percent <= 100);

-- A virtual meter: a named signed sum of devices of one site. Its id comes
-- from the devices' own identity sequence, so a virtual meter's id is never
-- a device's and the load-profile and statement endpoints take either.
CREATE TABLE virtual_meters (
    id                bigint NOT NULL DEFAULT nextval(pg_get_serial_sequence('devices', 'id')::regclass)
                      CONSTRAINT virtual_meters_pkey PRIMARY KEY,
    site_id           bigint NOT NULL CONSTRAINT virtual_meters_site_id_fkey REFERENCES sites (id),
    name              text NOT NULL,
    -- Where it sits in the site's tree: the device upstream of it, if any.
    parent_device_id  bigint,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT virtual_meters_site_name_key UNIQUE (site_id, name),
    CONSTRAINT virtual_meters_id_site_key UNIQUE (id, site_id),
    CONSTRAINT virtual_meters_parent_same_site_fkey FOREIGN KEY (parent_device_id, site_id)
        REFERENCES devices (id, site_id),
    CONSTRAINT virtual_meters_name_check CHECK (btrim(name) <> '')
);

-- Its terms: each device of its site once, added (+1) or subtracted (-1).
CREATE TABLE virtual_meter_terms (
    virtual_meter_id  bigint NOT NULL,
    position          integer NOT NULL,
    device_id         bigint NOT NULL,
    site_id           bigint NOT NULL,
    sign              smallint NOT NULL,
    CONSTRAINT virtual_meter_terms_pkey PRIMARY KEY (virtual_meter_id, device_id),
    CONSTRAINT virtual_meter_terms_meter_same_site_fkey FOREIGN KEY (virtual_meter_id, site_id)
        REFERENCES virtual_meters (id, site_id) ON DELETE CASCADE,
    CONSTRAINT virtual_meter_terms_device_same_site_fkey FOREIGN KEY (device_id, site_id)
        REFERENCES devices (id, site_id),
    CONSTRAINT virtual_meter_terms_sign_check CHECK (sign IN (-1, 1))
);
CREATE INDEX virtual_meter_terms_device_idx ON virtual_meter_terms (device_id);
