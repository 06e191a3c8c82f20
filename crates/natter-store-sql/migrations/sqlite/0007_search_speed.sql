-- Issue 19, item 4: sending at the speed it had before search (ADR 0021).
-- 1. The word index is no longer filled by a trigger per message: FTS5 writes its pending
--    terms out at every statement's end, so a trigger per row wrote a tiny index segment per
--    message (natter-bench durable: 71k -> 20k acked msg/s). The writer now indexes the
--    messages stored since `search_progress.indexed_up_to` with one INSERT ... SELECT per
--    write batch, before that batch's COMMIT: still in the transaction that stores them.
-- 2. The trigram index holds only texts with a character of a script written without spaces
--    (the GLOB below is natter_core::search::is_unspaced): that is what it is for, substrings
--    of Chinese, Japanese, Korean, Thai...; a phrase in other scripts is found as words by the
--    word index (a phrase query) and checked against the text.
-- Edits and tombstones of indexed messages still go through the update trigger (rare); a
-- message stored in the current batch is not indexed yet, so the triggers leave it alone.
DROP TRIGGER messages_search_insert;
DROP TRIGGER messages_search_update;
DROP TRIGGER messages_search_delete;
CREATE TABLE search_progress (indexed_up_to INTEGER NOT NULL);
INSERT INTO search_progress (indexed_up_to) SELECT coalesce(max(id), 0) FROM messages;
CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages
WHEN old.kind = 0 AND old.body IS NOT new.body
    AND old.id <= (SELECT indexed_up_to FROM search_progress) BEGIN
    INSERT INTO message_words (message_words, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO message_words (rowid, body) VALUES (new.id, new.body);
    DELETE FROM message_trigrams WHERE rowid = old.id AND old.body GLOB '*[฀-໿က-႟ក-៿⺀-⿟぀-ヿ㄀-ㄯ㄰-㆏ㇰ-ㇿ㐀-䶿一-鿿가-힯豈-﫿ｦ-ﾟ𠀀-𯨟]*';
    INSERT INTO message_trigrams (rowid, body)
        SELECT new.id, new.body || char(10, 10) WHERE new.body GLOB '*[฀-໿က-႟ក-៿⺀-⿟぀-ヿ㄀-ㄯ㄰-㆏ㇰ-ㇿ㐀-䶿一-鿿가-힯豈-﫿ｦ-ﾟ𠀀-𯨟]*';
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages
WHEN old.kind = 0 AND old.id <= (SELECT indexed_up_to FROM search_progress) BEGIN
    INSERT INTO message_words (message_words, rowid, body) VALUES ('delete', old.id, old.body);
    DELETE FROM message_trigrams WHERE rowid = old.id AND old.body GLOB '*[฀-໿က-႟ក-៿⺀-⿟぀-ヿ㄀-ㄯ㄰-㆏ㇰ-ㇿ㐀-䶿一-鿿가-힯豈-﫿ｦ-ﾟ𠀀-𯨟]*';
END;
-- The trigram index again, of the texts it is now for.
INSERT INTO message_trigrams (message_trigrams) VALUES ('delete-all');
INSERT INTO message_trigrams (rowid, body)
    SELECT id, body || char(10, 10) FROM messages WHERE kind = 0 AND body GLOB '*[฀-໿က-႟ក-៿⺀-⿟぀-ヿ㄀-ㄯ㄰-㆏ㇰ-ㇿ㐀-䶿一-鿿가-힯豈-﫿ｦ-ﾟ𠀀-𯨟]*';
