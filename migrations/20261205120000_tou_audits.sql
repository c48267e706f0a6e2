-- The TOU audit: each closed billing period of a meter with tariff
-- registers is compared once with the server's split of its intervals
-- (docs/STATEMENTS.md, "TOU audit"). One row per audited period, so a
-- period is audited once; a period whose intervals were incomplete is
-- recorded as such and not compared.
CREATE TABLE tou_audits (
    billing_period_id  bigint NOT NULL
        CONSTRAINT tou_audits_billing_period_id_fkey REFERENCES billing_periods (id) ON DELETE CASCADE,
    calendar_id        bigint NOT NULL,
    outcome            text NOT NULL,
    -- Per quantity and band compared: meter and server energy, milli-units.
    detail             jsonb NOT NULL DEFAULT '[]',
    audited_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tou_audits_pkey PRIMARY KEY (billing_period_id),
    CONSTRAINT tou_audits_outcome_check CHECK (outcome IN ('matched', 'mismatch', 'incomplete'))
);

-- How far a meter's tariff register may differ from the server's split of
-- the same period before a `tou_mismatch` event, in percent of the
-- period's energy (default 1 %).
ALTER TABLE sites
    ADD COLUMN tou_tolerance_percent double precision NOT NULL DEFAULT 1,
    ADD CONSTRAINT sites_tou_tolerance_percent_check CHECK (tou_tolerance_percent > 0 AND tou_tolerance_percent <= 100);
