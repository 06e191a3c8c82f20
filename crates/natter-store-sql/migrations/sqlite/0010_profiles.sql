-- Issue 20: profiles. A display name and a status line of the user's own (empty: none), and
-- an avatar: one of their image uploads (its file is kept by the sweep while it is someone's
-- avatar). "Last seen" is `users.last_active`, which sessions already keep.
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN avatar TEXT;
CREATE INDEX users_by_avatar ON users(avatar) WHERE avatar IS NOT NULL;
