-- Sessions of the pages: signing in with a token creates one; the browser
-- holds only its id, of which the digest is stored (as for tokens). The
-- session stands for its token's user and role, so revoking the token or
-- its expiry ends it. `csrf_token` is the value each of its forms must
-- send back.
CREATE TABLE ui_sessions (
    id              bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT ui_sessions_pkey PRIMARY KEY,
    session_sha256  bytea NOT NULL CONSTRAINT ui_sessions_session_sha256_key UNIQUE,
    token_id        bigint NOT NULL CONSTRAINT ui_sessions_token_id_fkey REFERENCES api_tokens (id) ON DELETE CASCADE,
    csrf_token      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ui_sessions_token_id_idx ON ui_sessions (token_id);
