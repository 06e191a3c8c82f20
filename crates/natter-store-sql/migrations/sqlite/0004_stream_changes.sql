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
ALTER TABLE messages ADD COLUMN kind INTEGER NOT NULL DEFAULT 0 CHECK (kind IN (0, 1, 2, 3));
ALTER TABLE messages ADD COLUMN target INTEGER;
ALTER TABLE messages ADD COLUMN emoji TEXT;
ALTER TABLE messages ADD COLUMN reaction_add INTEGER;
ALTER TABLE messages ADD COLUMN thread INTEGER;
ALTER TABLE messages ADD COLUMN also_room INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE messages ADD COLUMN mentions_room INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN original_body TEXT;
ALTER TABLE messages ADD COLUMN replies INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN last_reply_ts INTEGER;
-- Pages of a thread, and the changes of a message (its versions; what a delete empties).
-- Partial: a plain message is in neither, so appending one costs no more than before.
CREATE INDEX messages_by_thread ON messages(room_id, thread, seq) WHERE thread IS NOT NULL;
CREATE INDEX messages_by_target ON messages(room_id, target, seq) WHERE target IS NOT NULL;
-- The current reactions of each message. Emoji show in the order of their first use (kept
-- while anyone still uses it), users in the order they reacted; both orders are the seq of
-- the reaction entry that set them.
CREATE TABLE reactions (
    room_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    emoji TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    emoji_order INTEGER NOT NULL,
    user_order INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq, emoji, user_id)
) WITHOUT ROWID;
-- Who each message mentions, for counting a member's mentions after their read marker
-- without reading the messages: user 0 is `@room` (then the only row of that message). A
-- deleted message's rows are removed.
CREATE TABLE mentions (
    room_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    sender_id INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id, seq)
) WITHOUT ROWID;
-- A member's notification level for the room: 'all', 'mentions' or 'none' (NULL: the
-- default, 'mentions').
ALTER TABLE members ADD COLUMN notify TEXT;
