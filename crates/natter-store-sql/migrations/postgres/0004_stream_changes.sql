-- Issue 18: every change to a room is an entry of its stream (one `messages` table holds them
-- all, numbered by seq). `kind` says what an entry is: 0 a message, 1 an edit, 2 a delete,
-- 3 a reaction; a change names the message it changes in `target` (its seq), a reaction also
-- its `emoji` and whether it was added (`reaction_add`). A message keeps its current state:
-- its text (`body`, with the first one in `original_body` from its first edit on),
-- `edited_at`, `deleted` (a tombstone, its texts emptied), and on a thread's first message its
-- reply count and last reply time (a reply keeps the count as it stood once it was stored).
-- `thread` is a reply's parent seq; `mentions` the mentioned user ids, comma-separated, as
-- shown to clients. Every column added has a constant default or none: existing rows are
-- messages, and the upgrade rewrites nothing.
ALTER TABLE messages
    ADD COLUMN kind SMALLINT NOT NULL DEFAULT 0 CHECK (kind IN (0, 1, 2, 3)),
    ADD COLUMN target BIGINT,
    ADD COLUMN emoji TEXT,
    ADD COLUMN reaction_add BOOLEAN,
    ADD COLUMN thread BIGINT,
    ADD COLUMN also_room BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN mentions TEXT,
    ADD COLUMN mentions_room BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN edited_at BIGINT,
    ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN original_body TEXT,
    ADD COLUMN replies INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN last_reply_ts BIGINT;
-- Pages of a thread, and the changes of a message (its versions; what a delete empties).
-- Partial: a plain message is in neither, so appending one costs no more than before.
CREATE INDEX messages_by_thread ON messages(room_id, thread, seq) WHERE thread IS NOT NULL;
CREATE INDEX messages_by_target ON messages(room_id, target, seq) WHERE target IS NOT NULL;
-- The current reactions of each message. Emoji show in the order of their first use (kept
-- while anyone still uses it), users in the order they reacted; both orders are the seq of
-- the reaction entry that set them.
CREATE TABLE reactions (
    room_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    emoji TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id),
    emoji_order BIGINT NOT NULL,
    user_order BIGINT NOT NULL,
    PRIMARY KEY (room_id, seq, emoji, user_id)
);
-- Who each message mentions, for counting a member's mentions after their read marker
-- without reading the messages: user 0 is `@room` (then the only row of that message). A
-- deleted message's rows are removed.
CREATE TABLE mentions (
    room_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    sender_id BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id, seq)
);
-- A member's notification level for the room: 'all', 'mentions' or 'none' (NULL: the
-- default, 'mentions').
ALTER TABLE members ADD COLUMN notify TEXT;
