-- What a grant is bound to beyond its scope (issue: what the human approves is what the token
-- allows). `require_details`: a use must carry actionDetails (policy `requireActionDetails`).
-- `action_details`: the exact details the request said it will perform, shown to the human;
-- `details_digest`: SHA-256 of their canonical JSON, which every use must match.
ALTER TABLE permissions ADD COLUMN require_details INTEGER NOT NULL DEFAULT 0;
ALTER TABLE permissions ADD COLUMN action_details TEXT;
ALTER TABLE permissions ADD COLUMN details_digest TEXT;

-- Protected services introspect and use tokens by the token alone.
CREATE UNIQUE INDEX permissions_by_token ON permissions(token_hash) WHERE token_hash IS NOT NULL;

-- Protected services hold their own key (only its SHA-256 is kept), for the actions they serve.
CREATE TABLE services (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    key_hash    TEXT NOT NULL UNIQUE,
    actions     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;
