-- Issue 20: private rooms, room settings, roles and moderation, server admins.
-- Rooms: `kind` may be 'private' (invite-only; no name key, so private names are not
-- unique and reveal nothing), a topic, a description, and `archived` (read-only).
-- Stream entries: kind 4 is a room event (kick, ban, unban, mute, unmute, role, settings),
-- its JSON in `body`. Both CHECK constraints are widened in place (SQLite's documented
-- procedure for changing a CHECK without rebuilding the table: existing rows satisfy the
-- wider rule, so nothing is rewritten; RESET reloads this connection's schema, and the
-- ALTERs below move `schema_version`, so other connections reload theirs).
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (kind IN (0, 1, 2, 3))', 'CHECK (kind IN (0, 1, 2, 3, 4))')
 WHERE type = 'table' AND name = 'messages';
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (kind IN (''public'', ''dm''))',
                     'CHECK (kind IN (''public'', ''dm'', ''private''))')
 WHERE type = 'table' AND name = 'rooms';
PRAGMA writable_schema = RESET;
ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';
ALTER TABLE rooms ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE rooms ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
-- A member's role ('moderator', 'owner'; NULL: member) and mute (ms since the epoch).
ALTER TABLE members ADD COLUMN role TEXT;
ALTER TABLE members ADD COLUMN muted_until INTEGER;
-- Server admins and deactivated accounts.
ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN deactivated INTEGER NOT NULL DEFAULT 0;
CREATE TABLE bans (
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    by_id INTEGER NOT NULL REFERENCES users(id),
    reason TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE TABLE invites (
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    by_id INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX invites_by_user ON invites(user_id, created_at);
-- Who did what: room events and moderators' deletes (in the transaction that stores them),
-- admin grants and deactivations.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    actor_id INTEGER NOT NULL REFERENCES users(id),
    action TEXT NOT NULL,
    room_id INTEGER,
    target_id INTEGER,
    detail TEXT NOT NULL DEFAULT ''
);
-- Existing rooms' creators own them; the oldest registered account is the first admin.
UPDATE members SET role = 'owner'
 WHERE EXISTS (SELECT 1 FROM rooms r WHERE r.id = members.room_id AND r.created_by = members.user_id);
UPDATE users SET admin = 1
 WHERE id = (SELECT MIN(id) FROM users WHERE guest = 0);
