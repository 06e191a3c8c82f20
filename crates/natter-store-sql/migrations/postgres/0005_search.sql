-- Issue 19: search. Two GIN indexes of the messages' current text, both partial on messages
-- (kind 0; change entries are never found), both expression/operator-class indexes of `body`
-- (no column added, no table rewrite; they index the rows already there as they are built):
-- - `messages_words`: `to_tsvector('english', body)`, words with English stems ("deploying"
--   finds "deployed"), matched with `plainto_tsquery('english', ...)`, ranked by `ts_rank`;
-- - `messages_trigrams`: `pg_trgm` trigrams of `body`, for substrings (phrases, words of
--   scripts written without spaces) matched with `ILIKE '%...%'`. A substring of 1-2
--   characters has no trigram: it is checked on the rows the rest of the query finds.
-- PostgreSQL keeps both in step with every insert and update of `body`.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX messages_words ON messages USING gin (to_tsvector('english', body))
    WHERE kind = 0;
CREATE INDEX messages_trigrams ON messages USING gin (body gin_trgm_ops) WHERE kind = 0;
