-- A token may be given an end: after `expires_at` it authenticates nothing,
-- as if revoked. NULL: it lasts until revoked.
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_expires_at_check CHECK (expires_at IS NULL OR expires_at > created_at);
