-- One-time login links for humans: only the SHA-256 of the link secret is kept.
CREATE TABLE login_links (
    secret_hash  TEXT PRIMARY KEY,
    human        TEXT NOT NULL,
    next_path    TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
) STRICT;
