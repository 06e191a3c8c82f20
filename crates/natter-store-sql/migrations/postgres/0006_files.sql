-- Issue 19: uploaded files (see the SQLite migration of the same number for the columns).
-- `file_chunks` holds the blobs themselves, 256 KiB a row, so every node serves every file.
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    owner_id BIGINT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    type TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    hash TEXT NOT NULL,
    thumb_hash TEXT,
    created_at BIGINT NOT NULL,
    posted BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX files_by_owner ON files(owner_id);
CREATE INDEX files_by_hash ON files(hash);
CREATE INDEX files_by_thumb_hash ON files(thumb_hash) WHERE thumb_hash IS NOT NULL;
CREATE TABLE message_files (
    room_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    n INTEGER NOT NULL,
    file_id TEXT NOT NULL REFERENCES files(id),
    PRIMARY KEY (room_id, seq, n)
);
CREATE INDEX message_files_by_file ON message_files(file_id);
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE file_chunks (
    hash TEXT NOT NULL,
    n INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (hash, n)
);
