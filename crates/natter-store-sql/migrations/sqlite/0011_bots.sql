-- Issue 21: bot accounts, their API tokens and rooms' incoming webhooks (docs/api.md).
-- A bot is a user row with no password; `bots` says whose it is. A token acts as its bot;
-- `rooms` is its scope (room ids joined by commas, '' for every room the bot is in);
-- `hook_room` is set for a webhook, whose secret is in its URL. Tokens are stored only as
-- their SHA-256, like sessions.
CREATE TABLE bots (
    user_id INTEGER PRIMARY KEY REFERENCES users(id),
    owner_id INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL
);
CREATE INDEX bots_by_owner ON bots(owner_id);
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    bot_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    rooms TEXT NOT NULL DEFAULT '',
    hook_room INTEGER REFERENCES rooms(id),
    created_by INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX api_tokens_by_bot ON api_tokens(bot_id);
CREATE INDEX api_tokens_by_hook_room ON api_tokens(hook_room) WHERE hook_room IS NOT NULL;
