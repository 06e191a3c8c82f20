-- A user row says whether it is a bot, so every User read with a message, a member or a
-- token carries `bot` (docs/protocol.md section 3) without a look into `bots`. Set by
-- `add_bot` in the same transaction as the `bots` row; existing bots are marked here.
ALTER TABLE users ADD COLUMN bot INTEGER NOT NULL DEFAULT 0;
UPDATE users SET bot = 1 WHERE id IN (SELECT user_id FROM bots);
