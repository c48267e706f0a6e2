-- Per-device secrets (docs/API.md, "Device secrets"), sealed with
-- XChaCha20-Poly1305 under OHMNIBUS_SECRET_KEY: the value is never stored
-- in the clear. One row per device and name; the names are the
-- SecretName vocabulary (src/domain/secret.rs).
CREATE TABLE device_secrets (
    device_id   bigint NOT NULL CONSTRAINT device_secrets_device_id_fkey REFERENCES devices (id) ON DELETE CASCADE,
    name        text NOT NULL,
    ciphertext  bytea NOT NULL,
    nonce       bytea NOT NULL,
    set_by      text NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT device_secrets_pkey PRIMARY KEY (device_id, name),
    CONSTRAINT device_secrets_name_check CHECK (name IN ('iec_password')),
    -- 16 bytes of Poly1305 tag after at least one byte of text.
    CONSTRAINT device_secrets_ciphertext_check CHECK (octet_length(ciphertext) > 16),
    CONSTRAINT device_secrets_nonce_check CHECK (octet_length(nonce) = 24)
);

-- When the meter last refused the programming-mode password: while set,
-- the poller does no programming-mode work for the device (a meter may lock
-- itself after refused passwords); setting the password again clears it.
ALTER TABLE devices ADD COLUMN password_refused_at timestamptz;
