-- Issue 20: group DMs (rooms of kind 'group': 3 to 8 people, named by their members). Their
-- member set is their `dm_key` ('g:' and the sorted ids), so opening the same set again finds
-- the same group; leaving a group drops its key. The rooms' kind CHECK is widened in place as
-- in 0008 (nothing rewritten; RESET reloads this connection's schema, and the runner moves
-- `schema_version` after a migration that edits the schema so, for other connections).
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (kind IN (''public'', ''dm'', ''private''))',
                     'CHECK (kind IN (''public'', ''dm'', ''private'', ''group''))')
 WHERE type = 'table' AND name = 'rooms';
PRAGMA writable_schema = RESET;
