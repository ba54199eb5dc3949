-- Web sessions of humans. The cookie carries a random secret; only its SHA-256 is kept. `id` is a
-- public handle (shown on the sessions page and used to revoke), never the secret.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    secret_hash   TEXT NOT NULL UNIQUE,
    human         TEXT NOT NULL,
    user_agent    TEXT,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
) STRICT;
CREATE INDEX sessions_live ON sessions(revoked_at, expires_at);
