-- A user row says whether it is a bot (the SQLite migration of the same number says why).
ALTER TABLE users ADD COLUMN bot BOOLEAN NOT NULL DEFAULT false;
UPDATE users SET bot = true WHERE id IN (SELECT user_id FROM bots);
