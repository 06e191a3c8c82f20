-- Issue 19, item 4 (ADR 0021). SQLite's step 7 moves its indexing to the writer; on
-- PostgreSQL the words of each message are stored once, in `words`, instead of being worked
-- out again from `body` whenever a search ranks a row. `ts_rank` on the expression index of 0005 ran
-- `to_tsvector` on every row a query matched (about 9 ms per 900 rows, most of a relevance
-- search for a common word on 1M messages), and the planner had no statistics for it
-- (an expression of a partial index), so it guessed 5,000 rows for every word.
-- - `words`: a stored generated column, `to_tsvector('english', body)` for a message
--   (kind 0), NULL for a change entry (nothing to search, nothing to compute). PostgreSQL
--   keeps it in step with every insert and update of `body`; an insert works it out once,
--   as the old index did.
-- - `messages_words` (the expression index) gives way to `messages_word_index` on `words`,
--   the same partial GIN: same rows, same matches.
-- Adding a stored column rewrites `messages` once (about 45 s per million rows on a small
-- machine; the table is locked meanwhile) and makes each row ~95 bytes bigger. The old index
-- goes first so the rewrite does not rebuild it; the new one is built after. ANALYZE gives
-- the planner the column's statistics (most common words) at once.
DROP INDEX messages_words;
ALTER TABLE messages ADD COLUMN words tsvector
    GENERATED ALWAYS AS (CASE WHEN kind = 0 THEN to_tsvector('english', body) END) STORED;
CREATE INDEX messages_word_index ON messages USING gin (words) WHERE kind = 0;
ANALYZE messages;
