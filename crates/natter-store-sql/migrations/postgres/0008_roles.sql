-- Issue 20: private rooms, room settings, roles and moderation, server admins (the SQLite
-- migration of the same number says what each column means).
ALTER TABLE rooms DROP CONSTRAINT rooms_kind_check;
ALTER TABLE rooms ADD CONSTRAINT rooms_kind_check CHECK (kind IN ('public', 'dm', 'private'));
ALTER TABLE messages DROP CONSTRAINT messages_kind_check;
ALTER TABLE messages ADD CONSTRAINT messages_kind_check CHECK (kind IN (0, 1, 2, 3, 4));
ALTER TABLE rooms
    ADD COLUMN topic TEXT NOT NULL DEFAULT '',
    ADD COLUMN description TEXT NOT NULL DEFAULT '',
    ADD COLUMN archived BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE members
    ADD COLUMN role TEXT,
    ADD COLUMN muted_until BIGINT;
ALTER TABLE users
    ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN deactivated BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE bans (
    room_id BIGINT NOT NULL REFERENCES rooms(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    by_id BIGINT NOT NULL REFERENCES users(id),
    reason TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE TABLE invites (
    room_id BIGINT NOT NULL REFERENCES rooms(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    by_id BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX invites_by_user ON invites(user_id, created_at);
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    created_at BIGINT NOT NULL,
    actor_id BIGINT NOT NULL REFERENCES users(id),
    action TEXT NOT NULL,
    room_id BIGINT,
    target_id BIGINT,
    detail TEXT NOT NULL DEFAULT ''
);
UPDATE members m SET role = 'owner'
  FROM rooms r WHERE r.id = m.room_id AND r.created_by = m.user_id;
UPDATE users SET admin = TRUE
 WHERE id = (SELECT MIN(id) FROM users WHERE NOT guest);
