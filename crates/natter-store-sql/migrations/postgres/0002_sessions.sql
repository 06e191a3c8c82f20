-- Sessions that expire and can be listed: each session's last use and device label, and each
-- user's last activity (guests expire after inactivity). Sessions and users that exist when
-- this runs count as used now, so an upgrade expires nobody at once.
ALTER TABLE sessions ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN label TEXT NOT NULL DEFAULT '';
UPDATE sessions SET last_used_at = (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT;
CREATE INDEX sessions_by_user ON sessions(user_id, created_at);
CREATE INDEX sessions_by_last_use ON sessions(last_used_at);
ALTER TABLE users ADD COLUMN last_active BIGINT NOT NULL DEFAULT 0;
UPDATE users SET last_active = (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT;
CREATE INDEX guests_by_last_active ON users(last_active) WHERE guest;
