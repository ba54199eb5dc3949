-- Per-row write costs that bought nothing (issue 20; plans in src/store/mod.rs tests).
--
-- No query reads the audit trail through `audit_by_request`: every one filters with
-- `(?1 IS NULL OR request_id = ?1)`, which SQLite answers by scanning in `seq` order (EXPLAIN
-- QUERY PLAN: SCAN audit_events). Keeping it cost every event an index insert and every commit
-- one more page.
DROP INDEX IF EXISTS audit_by_request;

-- `CHECK (status IN (six values))` built a temporary B-tree of the six values for every INSERT
-- and every UPDATE of a permission (OpenEphemeral and six IdxInserts). The same rule as plain
-- comparisons costs a few string compares. SQLite cannot alter a CHECK constraint, so the
-- table's definition is edited in place, as SQLite documents for constraint changes that leave
-- the stored rows' format alone (https://www.sqlite.org/lang_altertable.html#otheralter); the
-- DDL around it moves the schema version on, so every other connection reloads the schema.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'CHECK (status IN
                       (''pending'', ''approved'', ''denied'', ''expired'', ''used'', ''revoked''))',
       'CHECK (status = ''pending'' OR status = ''approved'' OR status = ''denied''
                       OR status = ''expired'' OR status = ''used'' OR status = ''revoked'')')
 WHERE type = 'table' AND name = 'permissions';
-- RESET also makes this connection parse the schema again: without it, its parse of the old text
-- stays, and a later `ALTER TABLE permissions ADD COLUMN` on it (migration 010 on a new or an old
-- database) splices the new text at the old text's offsets and garbles the table's definition.
PRAGMA writable_schema = RESET;
CREATE TABLE schema_reload (x INTEGER);
DROP TABLE schema_reload;
