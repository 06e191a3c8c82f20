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
-- Substrings of 1-2 characters in scripts written without spaces (a Chinese or Japanese
-- word is often two characters): each message holding such a script is indexed by its
-- characters and pairs of characters (`natter_grams`), so `natter_grams(body) @> ARRAY[s]`
-- finds them. Partial: English text pays nothing for it beyond the predicate's test. The
-- predicate's character class is `natter_core::search::is_unspaced` (search repeats it
-- verbatim, so the planner can use the index).
CREATE FUNCTION natter_grams(body TEXT) RETURNS TEXT[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ARRAY(
        SELECT DISTINCT substr(lower(body), i, n)
        FROM generate_series(1, char_length(body)) AS i, (VALUES (1), (2)) AS g(n)
    )
$$;
CREATE INDEX messages_unspaced_grams ON messages USING gin (natter_grams(body))
    WHERE kind = 0 AND body ~ '[\u0E00-\u0EFF\u1000-\u109F\u1780-\u17FF\u2E80-\u2FDF\u3040-\u30FF\u3100-\u312F\u3130-\u318F\u31F0-\u31FF\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF\uFF66-\uFF9F\U00020000-\U0002FA1F]';
