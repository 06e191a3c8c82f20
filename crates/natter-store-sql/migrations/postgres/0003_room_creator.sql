-- Who created each public room (`room.create`), so the server can cap rooms per user
-- (`max_rooms_per_user`). Rooms from before this migration, `general` and DMs have no
-- creator and count for no one.
ALTER TABLE rooms ADD COLUMN created_by BIGINT REFERENCES users(id);
CREATE INDEX rooms_by_creator ON rooms(created_by) WHERE created_by IS NOT NULL;
-- `room.list` pages public rooms by name key in byte order (as SQLite does), whatever the
-- database's collation: an index in that order lets a page start at its cursor.
CREATE INDEX rooms_by_name_key_c ON rooms (name_key COLLATE "C") WHERE kind = 'public';
