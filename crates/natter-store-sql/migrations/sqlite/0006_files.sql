-- Issue 19: uploaded files. A file record (`files`) is one upload: its public id, who uploaded
-- it, the name given, its size, the type sniffed from its bytes, an image's size, and the
-- SHA-256 (hex) of its bytes and of its thumbnail: the blobs, kept once per hash in the file
-- store (a directory, or `file_chunks` on PostgreSQL). `posted` is set once a message carries
-- it: the sweep removes a posted file as soon as no message carries it, and an unposted upload
-- after 24 hours. `message_files` holds which files each message carries, in order (`n`); a
-- delete removes its rows. `server_secrets` holds secrets every node must share (the key that
-- signs download keys).
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    owner_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    type TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    hash TEXT NOT NULL,
    thumb_hash TEXT,
    created_at INTEGER NOT NULL,
    posted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX files_by_owner ON files(owner_id);
CREATE INDEX files_by_hash ON files(hash);
CREATE INDEX files_by_thumb_hash ON files(thumb_hash) WHERE thumb_hash IS NOT NULL;
CREATE TABLE message_files (
    room_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    n INTEGER NOT NULL,
    file_id TEXT NOT NULL REFERENCES files(id),
    PRIMARY KEY (room_id, seq, n)
);
CREATE INDEX message_files_by_file ON message_files(file_id);
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
