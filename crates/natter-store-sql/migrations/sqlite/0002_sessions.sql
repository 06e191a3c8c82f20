-- Sessions that expire and can be listed: each session's last use and device label, and each
-- user's last activity (guests expire after inactivity). Sessions and users that exist when
-- this runs count as used now, so an upgrade expires nobody at once.
ALTER TABLE sessions ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN label TEXT NOT NULL DEFAULT '';
UPDATE sessions SET last_used_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
CREATE INDEX sessions_by_user ON sessions(user_id, created_at);
CREATE INDEX sessions_by_last_use ON sessions(last_used_at);
ALTER TABLE users ADD COLUMN last_active INTEGER NOT NULL DEFAULT 0;
UPDATE users SET last_active = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
CREATE INDEX guests_by_last_active ON users(last_active) WHERE guest = 1;
