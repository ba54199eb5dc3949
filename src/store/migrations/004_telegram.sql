-- Telegram approvers: linked with `agent-otp telegram link` + `/start CODE` in a private chat.
CREATE TABLE telegram_approvers (
    user_id    INTEGER PRIMARY KEY,
    chat_id    INTEGER NOT NULL,
    name       TEXT NOT NULL,
    linked_at  INTEGER NOT NULL
) STRICT;

-- One-time link codes; only their SHA-256 is kept.
CREATE TABLE telegram_link_codes (
    code_hash   TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    used_by     INTEGER
) STRICT;

-- Every approval message sent, so it can be edited when the request is decided or expires.
-- `message_id` is NULL when the chat could not be reached (bot blocked): it is not retried.
CREATE TABLE telegram_messages (
    id               INTEGER PRIMARY KEY,
    request_id       TEXT NOT NULL REFERENCES permissions(id),
    chat_id          INTEGER NOT NULL,
    message_id       INTEGER,
    login_link_hash  TEXT,
    sent_at          INTEGER NOT NULL,
    closed_at        INTEGER
) STRICT;
CREATE INDEX telegram_messages_by_request ON telegram_messages(request_id);
CREATE INDEX telegram_messages_open ON telegram_messages(closed_at) WHERE closed_at IS NULL;

-- The last update handled, so no update is handled twice across restarts.
CREATE TABLE telegram_poll_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    last_update_id  INTEGER NOT NULL
) STRICT;
