-- Issue 19: search. Two FTS5 indexes of the messages' current text, both external content
-- (they keep no copy of the text: `messages.body` is read where a query needs it) and both
-- of messages only (kind 0; change entries are never found):
-- - `message_words`: words, `porter unicode61` (case-folded, diacritics removed, English
--   stems: "deploying" finds "deployed"), with bm25 ranking for relevance order;
-- - `message_trigrams`: every 3 characters, for substrings: phrases and words of scripts
--   written without spaces (Chinese, Japanese). A substring of 1-2 characters has no
--   trigram; search matches it with `instr` on the rows the other terms (or the rooms) give.
-- Triggers keep both in step in the transaction that stores, edits or deletes (blanks) a
-- message: a plain send is still one INSERT from the writer's side. An external-content
-- index must be told the old text to remove it, so the update trigger passes `old.body`.
CREATE VIRTUAL TABLE message_words USING fts5(
    body, content = 'messages', content_rowid = 'id', tokenize = 'porter unicode61'
);
CREATE VIRTUAL TABLE message_trigrams USING fts5(
    body, content = 'messages', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER messages_search_insert AFTER INSERT ON messages WHEN new.kind = 0 BEGIN
    INSERT INTO message_words (rowid, body) VALUES (new.id, new.body);
    INSERT INTO message_trigrams (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages
WHEN old.kind = 0 AND old.body IS NOT new.body BEGIN
    INSERT INTO message_words (message_words, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO message_trigrams (message_trigrams, rowid, body)
        VALUES ('delete', old.id, old.body);
    INSERT INTO message_words (rowid, body) VALUES (new.id, new.body);
    INSERT INTO message_trigrams (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages WHEN old.kind = 0 BEGIN
    INSERT INTO message_words (message_words, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO message_trigrams (message_trigrams, rowid, body)
        VALUES ('delete', old.id, old.body);
END;
-- The messages stored before this migration.
INSERT INTO message_words (rowid, body) SELECT id, body FROM messages WHERE kind = 0;
INSERT INTO message_trigrams (rowid, body) SELECT id, body FROM messages WHERE kind = 0;
