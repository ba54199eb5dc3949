-- A token names its request (issue 20; `domain::token::mint_token`): a protected service, which
-- has the token alone, reads the request by that id and compares the token's SHA-256 with the
-- stored hash. The unique index of every token hash that this lookup used cost each issued token
-- a write to a random page of the database (its keys are random), as much as the rest of an
-- auto-approval's writes together.
--
-- Tokens issued before this version do not name their request. They are marked here, and only
-- they stay in an index of hashes, so they work as before until they lapse (their rows, and so
-- their index entries, stay until they are pruned).
ALTER TABLE permissions ADD COLUMN unnamed_token INTEGER;
UPDATE permissions SET unnamed_token = 1 WHERE token_hash IS NOT NULL;
DROP INDEX permissions_by_token;
CREATE UNIQUE INDEX permissions_by_unnamed_token ON permissions(token_hash)
    WHERE unnamed_token = 1;
