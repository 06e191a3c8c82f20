-- Issue 21: bot accounts, API tokens and webhooks (the SQLite migration of the same number
-- says what each column is).
CREATE TABLE bots (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    owner_id BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX bots_by_owner ON bots(owner_id);
CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    bot_id BIGINT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    rooms TEXT NOT NULL DEFAULT '',
    hook_room BIGINT REFERENCES rooms(id),
    created_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_by_bot ON api_tokens(bot_id);
CREATE INDEX api_tokens_by_hook_room ON api_tokens(hook_room) WHERE hook_room IS NOT NULL;
