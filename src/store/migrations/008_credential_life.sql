-- Admin tokens get an optional expiry and the time they were last used (written at most once a
-- minute per token).
ALTER TABLE admin_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE admin_tokens ADD COLUMN last_used_at INTEGER;

-- A login link, and the web session it opens, may be limited to one permission request (the
-- link in a Telegram approval message): such a session sees and decides that request only.
ALTER TABLE login_links ADD COLUMN request_id TEXT;
ALTER TABLE sessions ADD COLUMN request_id TEXT;
