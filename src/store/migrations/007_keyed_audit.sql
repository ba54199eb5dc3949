-- The audit chain is keyed from here on (HMAC-SHA-256 with a key kept outside the database);
-- the events before stay as they were, plain SHA-256, and still verify (see audit/mod.rs).
ALTER TABLE audit_events ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;
