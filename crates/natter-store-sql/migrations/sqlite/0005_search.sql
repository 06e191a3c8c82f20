-- Issue 19: search. Two FTS5 indexes of the messages' current text, both of messages only
-- (kind 0; change entries are never found), neither with a copy of the text:
-- - `message_words`: words, `porter unicode61` (case-folded, diacritics removed, English
--   stems: "deploying" finds "deployed"), bm25 for relevance order. External content on
--   `messages` (an external-content index is told the old text to remove it: `old.body`).
-- - `message_trigrams`: every 3 characters, for substrings: phrases and words of scripts
--   written without spaces (Chinese, Japanese). Contentless (`contentless_delete` removes a
--   row by id) because what it indexes is the text plus two newlines: then every substring
--   of 1 or 2 characters starts some trigram, and search finds it as the OR of the indexed
--   trigrams that start with it (listed by `message_trigram_terms`, a range of terms).
-- Triggers keep both in step in the transaction that stores, edits or deletes (blanks) a
-- message: a plain send is still one INSERT from the writer's side.
CREATE VIRTUAL TABLE message_words USING fts5(
    body, content = 'messages', content_rowid = 'id', tokenize = 'porter unicode61'
);
CREATE VIRTUAL TABLE message_trigrams USING fts5(
    body, content = '', contentless_delete = 1, tokenize = 'trigram'
);
CREATE VIRTUAL TABLE message_trigram_terms USING fts5vocab(message_trigrams, 'row');
CREATE TRIGGER messages_search_insert AFTER INSERT ON messages WHEN new.kind = 0 BEGIN
    INSERT INTO message_words (rowid, body) VALUES (new.id, new.body);
    INSERT INTO message_trigrams (rowid, body) VALUES (new.id, new.body || char(10, 10));
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages
WHEN old.kind = 0 AND old.body IS NOT new.body BEGIN
    INSERT INTO message_words (message_words, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO message_words (rowid, body) VALUES (new.id, new.body);
    DELETE FROM message_trigrams WHERE rowid = old.id;
    INSERT INTO message_trigrams (rowid, body) VALUES (new.id, new.body || char(10, 10));
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages WHEN old.kind = 0 BEGIN
    INSERT INTO message_words (message_words, rowid, body) VALUES ('delete', old.id, old.body);
    DELETE FROM message_trigrams WHERE rowid = old.id;
END;
-- The messages stored before this migration.
INSERT INTO message_words (rowid, body) SELECT id, body FROM messages WHERE kind = 0;
INSERT INTO message_trigrams (rowid, body)
    SELECT id, body || char(10, 10) FROM messages WHERE kind = 0;
