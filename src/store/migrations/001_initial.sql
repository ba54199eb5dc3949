-- Agents authenticate with an API key; only its SHA-256 is kept.
CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

-- Humans script the admin API with admin tokens; only their SHA-256 is kept.
CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

-- One row per permission request, through its whole life.
CREATE TABLE permissions (
    id               TEXT PRIMARY KEY,
    agent_id         TEXT NOT NULL REFERENCES agents(id),
    action           TEXT NOT NULL,
    resource         TEXT,
    requested_scope  TEXT NOT NULL,
    scope            TEXT NOT NULL,
    context          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN
                       ('pending', 'approved', 'denied', 'expired', 'used', 'revoked')),
    reason           TEXT,
    rule             TEXT,
    policy_version   TEXT NOT NULL,
    decided_by       TEXT,
    decided_at       INTEGER,
    ttl_secs         INTEGER NOT NULL,
    uses_total       INTEGER NOT NULL,
    uses_remaining   INTEGER NOT NULL CHECK (uses_remaining >= 0),
    token_hash       TEXT,
    token_issued_at  INTEGER,
    expires_at       INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX permissions_live ON permissions(status, expires_at);
CREATE INDEX permissions_by_agent ON permissions(agent_id, created_at);

-- Append-only, hash-chained event log (see audit.rs).
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    event       TEXT NOT NULL,
    request_id  TEXT,
    agent_id    TEXT,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_request ON audit_events(request_id);

-- Small facts the binary remembers between runs (e.g. the public URL it last served).
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) STRICT;
