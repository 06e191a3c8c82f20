-- Issue 20: profiles (the SQLite migration of the same number says what each column is).
ALTER TABLE users
    ADD COLUMN display_name TEXT NOT NULL DEFAULT '',
    ADD COLUMN status TEXT NOT NULL DEFAULT '',
    ADD COLUMN avatar TEXT;
CREATE INDEX users_by_avatar ON users(avatar) WHERE avatar IS NOT NULL;
