-- Who created each public room (`room.create`), so the server can cap rooms per user
-- (`max_rooms_per_user`). Rooms from before this migration, `general` and DMs have no
-- creator and count for no one.
ALTER TABLE rooms ADD COLUMN created_by INTEGER REFERENCES users(id);
CREATE INDEX rooms_by_creator ON rooms(created_by) WHERE created_by IS NOT NULL;
