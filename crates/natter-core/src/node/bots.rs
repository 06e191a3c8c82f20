//! Bots, API tokens and incoming webhooks (docs/api.md), and the HTTP API's requests.
//!
//! Who may do what is decided here, not in the HTTP layer:
//! - a registered (not guest, not bot) user may own up to `max_bots_per_user` bots and
//!   manage their tokens; a server admin sees and manages every bot;
//! - an owner adds their bot to a room they are a member of (any public or private room:
//!   `room.invite`'s rule), unless the bot is banned there;
//! - a room's owners and moderators (and admins) manage its webhooks; each webhook has a
//!   bot of its own, made for it and deleted with it.
//!
//! A request of the HTTP API (`api_request`) runs the `/ws` request path: `dispatch` on a
//! session built for the call from the caller's rooms and never registered in the hub or in
//! presence, so every rule (membership, bans, mutes, archived rooms, message length,
//! idempotent `client_id`) is the one sockets get, and a bot posting is not "online". Each
//! token (a session token on the API counts as one) has a bucket of `api_per_minute`.

use super::Node;
use crate::accounts;
use crate::bots::*;
use crate::error::{ChatError, ErrorCode, StoreError};
use crate::metrics::RateLimitKind;
use crate::model::*;
use crate::protocol::*;
use crate::session;
use serde::Serialize;
use std::sync::Arc;

/// What an HTTP API caller's bucket is kept under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ApiKey {
    Token(TokenId),
    Session(UserId),
}

/// Who makes an HTTP API request: a bot by one of its tokens, or a person by a session
/// token (no room scope).
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub user: User,
    /// The rooms the token may act in; `None`: all of the user's.
    pub scope: Option<Vec<RoomId>>,
    /// SHA-256 of the token used.
    token_hash: [u8; 32],
    key: ApiKey,
}

impl ApiCaller {
    /// Whether the token's scope allows `room`.
    pub fn may_use(&self, room: RoomId) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|rooms| rooms.is_empty() || rooms.contains(&room))
    }

    fn check_scope(&self, room: RoomId) -> Result<(), ChatError> {
        if self.may_use(room) {
            Ok(())
        } else {
            Err(ChatError::new(
                ErrorCode::Forbidden,
                "this token's room scope does not include that room",
            ))
        }
    }
}

/// A bot as its owner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct BotView {
    /// The bot's user id.
    pub id: UserId,
    pub name: String,
    /// Its profile's display name ("" for none).
    pub display_name: String,
    pub owner: UserId,
    pub created_at: Millis,
}

/// A new API token or webhook: the record and its secret, shown this once.
#[derive(Debug, Clone)]
pub struct NewSecret {
    pub token: ApiToken,
    pub secret: String,
}

/// An API token's or a webhook's last use is written at most this often.
const TOKEN_TOUCH_MS: Millis = 60_000;

fn not_found(what: &str) -> ChatError {
    ChatError::new(ErrorCode::NotFound, format!("no such {what}"))
}

fn check_token_name(name: &str) -> Result<String, ChatError> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_TOKEN_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ChatError::invalid(format!(
            "`name` is 1 to {MAX_TOKEN_NAME_CHARS} characters on one line"
        )));
    }
    Ok(name.to_string())
}

/// A random name for a webhook's bot: `hook-` and 12 hex digits.
fn hook_bot_name() -> String {
    let token = accounts::token_hash(&accounts::new_token());
    format!("hook-{}", accounts::to_hex(&token[..6]))
}

impl Node {
    // ----- callers ----------------------------------------------------------------------

    /// Who a bearer token belongs to on the HTTP API: a bot's API token (`nbt_...`) or a
    /// session token. Revoked, expired, unknown, a webhook secret, a deactivated account:
    /// `unauthenticated` / `account_deactivated`. Takes one of the caller's
    /// `api_per_minute` (`rate_limited` when there is none).
    pub async fn api_caller(&self, bearer: &str) -> Result<ApiCaller, ChatError> {
        let hash = accounts::token_hash(bearer);
        let caller = if bearer.starts_with(API_TOKEN_PREFIX) {
            let (token, user) = self
                .store
                .api_token(&hash)
                .await?
                .filter(|(t, _)| t.hook_room.is_none())
                .ok_or_else(|| {
                    ChatError::new(ErrorCode::Unauthenticated, "invalid or revoked token")
                })?;
            self.check_active(user.id).await?;
            self.touch_token(&token).await?;
            ApiCaller {
                user,
                scope: Some(token.rooms),
                token_hash: hash,
                key: ApiKey::Token(token.id),
            }
        } else {
            let user = self.user_for_token(bearer).await?;
            ApiCaller {
                key: ApiKey::Session(user.id),
                user,
                scope: None,
                token_hash: hash,
            }
        };
        self.take_api_call(caller.key)?;
        Ok(caller)
    }

    fn take_api_call(&self, key: ApiKey) -> Result<(), ChatError> {
        let taken = self
            .api_calls
            .take(key, self.config.api_per_minute)
            .map_err(|wait| ChatError::rate_limited("too many API requests, slow down", wait));
        self.count_refusal(RateLimitKind::Request, taken)
    }

    async fn check_active(&self, user: UserId) -> Result<(), ChatError> {
        if self
            .store
            .user_flags(user)
            .await?
            .is_some_and(|f| f.deactivated)
        {
            return Err(ChatError::new(
                ErrorCode::AccountDeactivated,
                "this account was deactivated",
            ));
        }
        Ok(())
    }

    async fn touch_token(&self, token: &ApiToken) -> Result<(), ChatError> {
        let now = self.config.clock.now_millis();
        if token
            .last_used_at
            .is_none_or(|at| now.saturating_sub(at) >= TOKEN_TOUCH_MS)
        {
            self.store.touch_api_token(token.id, now).await?;
        }
        Ok(())
    }

    // ----- requests ---------------------------------------------------------------------

    /// Runs a request of the HTTP API as `caller`: `message.send`, `history` and
    /// `room.members` (others are `invalid_request`), in a room the token's scope allows,
    /// through the same path as a `/ws` request, on a session registered nowhere.
    pub async fn api_request(
        self: &Arc<Self>,
        caller: &ApiCaller,
        request: Request,
    ) -> Result<Reply, ChatError> {
        let room = match &request {
            Request::MessageSend(a) => a.room,
            Request::History(a) => a.room,
            Request::RoomMembers(a) => a.room,
            _ => {
                return Err(ChatError::invalid(
                    "the HTTP API takes messages, history and members only",
                ))
            }
        };
        caller.check_scope(room)?;
        let rooms: Vec<RoomId> = self
            .store
            .rooms_of(caller.user.id)
            .await?
            .into_iter()
            .map(|(r, _)| r.id)
            .collect();
        // Not in the hub, not in presence: the outbox is dropped at once, and nothing is
        // ever pushed to the handle.
        let (handle, _outbox) = session::session(
            caller.user.clone(),
            caller.token_hash,
            false,
            rooms,
            16,
            self.sessions.clone(),
        );
        self.dispatch(&handle, request).await
    }

    /// `POST /api/rooms/{id}/messages`: `message.send` as the caller (idempotent by
    /// `client_id`: a repeat returns the stored message with `duplicate: true`).
    pub async fn api_send(
        self: &Arc<Self>,
        caller: &ApiCaller,
        args: SendArgs,
    ) -> Result<SentReply, ChatError> {
        match self.api_request(caller, Request::MessageSend(args)).await? {
            Reply::Sent(sent) => Ok(sent),
            _ => Err(ChatError::internal()),
        }
    }

    /// `GET /api/rooms/{id}/messages`: `history` as the caller.
    pub async fn api_history(
        self: &Arc<Self>,
        caller: &ApiCaller,
        args: HistoryArgs,
    ) -> Result<HistoryReply, ChatError> {
        match self.api_request(caller, Request::History(args)).await? {
            Reply::History(page) => Ok(page),
            _ => Err(ChatError::internal()),
        }
    }

    /// `GET /api/rooms`: the caller's rooms (as in `auth`), those of the token's scope only.
    pub async fn api_rooms(&self, caller: &ApiCaller) -> Result<Vec<RoomView>, ChatError> {
        let mut rooms = self.my_rooms(caller.user.id).await?;
        rooms.retain(|r| caller.may_use(r.id));
        Ok(rooms)
    }

    // ----- bots -------------------------------------------------------------------------

    /// Checks that `user` may own bots: registered, not a bot.
    async fn check_may_own(&self, user: &User) -> Result<(), ChatError> {
        if user.guest {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "guests cannot have bots or webhooks: register first",
            ));
        }
        if self.store.bot(user.id).await?.is_some() {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "a bot cannot manage bots or webhooks",
            ));
        }
        Ok(())
    }

    async fn bot_view(&self, bot: Bot) -> Result<BotView, ChatError> {
        let display_name = self
            .store
            .profile(bot.user.id)
            .await?
            .map(|p| p.display_name)
            .unwrap_or_default();
        Ok(BotView {
            id: bot.user.id,
            name: bot.user.name,
            display_name,
            owner: bot.owner,
            created_at: bot.created_at,
        })
    }

    /// Makes a bot account (no password) and its user row.
    async fn make_bot(
        &self,
        owner: UserId,
        name: &str,
        display_name: &str,
    ) -> Result<Bot, ChatError> {
        let user = match self.store.create_user(name, None, false).await {
            Ok(user) => user,
            Err(StoreError::Conflict(_)) => {
                return Err(ChatError::new(ErrorCode::NameTaken, "that name is taken"))
            }
            Err(e) => return Err(e.into()),
        };
        let now = self.config.clock.now_millis();
        if let Err(e) = self.store.add_bot(user.id, owner, now).await {
            // Do not leave a passwordless account behind that is no one's bot.
            let _ = self.store.delete_account(user.id).await;
            return Err(e.into());
        }
        if !display_name.is_empty() {
            let update = ProfileUpdate {
                display_name: Some(display_name.to_string()),
                status: None,
                avatar: None,
            };
            self.store.set_profile(user.id, update).await?;
        }
        Ok(Bot {
            user,
            owner,
            created_at: now,
        })
    }

    /// `POST /api/bots`: a new bot of the caller's (`limit_reached` past
    /// `max_bots_per_user`; the name follows the username rules and is unique among users).
    pub async fn create_bot(
        &self,
        owner: &User,
        name: &str,
        display_name: Option<&str>,
    ) -> Result<BotView, ChatError> {
        self.check_may_own(owner).await?;
        accounts::check_username(name)?;
        let display_name = display_name.unwrap_or_default().trim();
        if display_name.chars().count() > MAX_DISPLAY_NAME_CHARS
            || display_name.chars().any(char::is_control)
        {
            return Err(ChatError::invalid(format!(
                "`display_name` is at most {MAX_DISPLAY_NAME_CHARS} characters on one line"
            )));
        }
        let owned = self.store.bots(Some(owner.id)).await?.len();
        if owned >= self.config.max_bots_per_user as usize {
            return Err(ChatError::new(
                ErrorCode::LimitReached,
                format!(
                    "you have {owned} bots: at most {} per user",
                    self.config.max_bots_per_user
                ),
            ));
        }
        let bot = self.make_bot(owner.id, name, display_name).await?;
        tracing::info!(owner = %owner.name, bot = %bot.user.name, "bot created");
        self.bot_view(bot).await
    }

    /// `GET /api/bots`: the caller's bots; every bot for a server admin.
    pub async fn list_bots(&self, user: &User) -> Result<Vec<BotView>, ChatError> {
        let owner = if self.is_admin(user.id).await? {
            None
        } else {
            Some(user.id)
        };
        let mut views = Vec::new();
        for bot in self.store.bots(owner).await? {
            views.push(self.bot_view(bot).await?);
        }
        Ok(views)
    }

    /// A bot the caller manages: `not_found` if there is no such bot, `forbidden` if it is
    /// someone else's (and the caller is no admin).
    async fn managed_bot(&self, user: &User, bot: UserId) -> Result<Bot, ChatError> {
        let found = self.store.bot(bot).await?.ok_or_else(|| not_found("bot"))?;
        if found.owner != user.id && !self.is_admin(user.id).await? {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "that bot is someone else's",
            ));
        }
        Ok(found)
    }

    /// `DELETE /api/bots/{id}`: deletes the bot, its tokens and webhooks; it leaves its rooms
    /// and its messages stay (from "deleted user").
    pub async fn delete_bot(&self, user: &User, bot: UserId) -> Result<(), ChatError> {
        let bot = self.managed_bot(user, bot).await?;
        self.remove_bot_account(&bot.user).await
    }

    async fn remove_bot_account(&self, bot: &User) -> Result<(), ChatError> {
        self.store.remove_bot(bot.id).await?;
        self.delete_and_leave(bot).await?;
        Ok(())
    }

    /// `POST /api/bots/{id}/tokens`: a new API token for the bot, scoped to `rooms` (empty:
    /// every room the bot is in). The token is in the result, and nowhere else, ever.
    pub async fn create_api_token(
        &self,
        user: &User,
        bot: UserId,
        name: &str,
        rooms: Vec<RoomId>,
    ) -> Result<NewSecret, ChatError> {
        let bot = self.managed_bot(user, bot).await?;
        let name = check_token_name(name)?;
        if rooms.len() > MAX_TOKEN_ROOMS {
            return Err(ChatError::invalid(format!(
                "a token's scope lists at most {MAX_TOKEN_ROOMS} rooms"
            )));
        }
        let mut rooms = rooms;
        rooms.sort();
        rooms.dedup();
        let secret = format!("{API_TOKEN_PREFIX}{}", accounts::new_token());
        let token = self
            .store
            .create_api_token(NewApiToken {
                bot: bot.user.id,
                name,
                token_hash: accounts::token_hash(&secret).to_vec(),
                rooms,
                hook_room: None,
                created_by: user.id,
                created_at: self.config.clock.now_millis(),
            })
            .await?;
        Ok(NewSecret { token, secret })
    }

    /// `GET /api/bots/{id}/tokens`: the bot's tokens (never their secrets).
    pub async fn list_api_tokens(
        &self,
        user: &User,
        bot: UserId,
    ) -> Result<Vec<ApiToken>, ChatError> {
        let bot = self.managed_bot(user, bot).await?;
        Ok(self.store.api_tokens(TokensOf::Bot(bot.user.id)).await?)
    }

    /// `DELETE /api/bots/{id}/tokens/{tid}`: revokes a token; its next use is refused, on
    /// every node (tokens are looked up in the store at each request).
    pub async fn revoke_api_token(
        &self,
        user: &User,
        bot: UserId,
        token: TokenId,
    ) -> Result<(), ChatError> {
        let bot = self.managed_bot(user, bot).await?;
        let owned = self
            .store
            .api_tokens(TokensOf::Bot(bot.user.id))
            .await?
            .iter()
            .any(|t| t.id == token);
        if !owned {
            return Err(not_found("token"));
        }
        self.store.delete_api_token(token).await?;
        Ok(())
    }

    /// `POST /api/rooms/{id}/members`: adds a bot the caller manages to a public or private
    /// room the caller is a member of (an admin: any such room).
    pub async fn add_bot_to_room(
        &self,
        user: &User,
        room: RoomId,
        bot_name: &str,
    ) -> Result<RoomView, ChatError> {
        let target = self.named_user(bot_name).await?;
        let bot = self
            .store
            .bot(target.id)
            .await?
            .ok_or_else(|| ChatError::invalid("only bots can be added to a room this way"))?;
        let bot = self.managed_bot(user, bot.user.id).await?;
        let (found, actor) = self.acting_in(user.id, room).await?;
        if found.kind.is_direct() {
            return Err(ChatError::invalid(
                "bots are added to public and private rooms only",
            ));
        }
        if !actor.standing.member && !actor.admin {
            return Err(ChatError::not_member(room));
        }
        if found.archived {
            return Err(ChatError::archived());
        }
        let standing = self.store.standing(room, bot.user.id).await?;
        if standing.banned {
            return Err(ChatError::new(
                ErrorCode::Banned,
                "that bot is banned from this room",
            ));
        }
        if standing.member {
            return Err(ChatError::invalid("that bot is a member already"));
        }
        self.add_member(room, &bot.user).await
    }

    // ----- webhooks ---------------------------------------------------------------------

    /// Checks that `user` manages `room`'s webhooks: its owner or a moderator, or an admin.
    async fn check_hook_manager(&self, user: &User, room: RoomId) -> Result<Room, ChatError> {
        let (found, actor) = self.acting_in(user.id, room).await?;
        if found.kind.is_direct() {
            return Err(ChatError::invalid(
                "webhooks are for public and private rooms only",
            ));
        }
        let moderates = actor.standing.member && actor.standing.role >= RoomRole::Moderator;
        if !moderates && !actor.admin {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only the room's owners and moderators manage its webhooks",
            ));
        }
        Ok(found)
    }

    /// `POST /api/rooms/{id}/webhooks`: a new incoming webhook posting to `room` as a bot
    /// made for it (named `hook-...`, shown with the webhook's name). The secret is in the
    /// result, and nowhere else, ever.
    pub async fn create_webhook(
        &self,
        user: &User,
        room: RoomId,
        name: &str,
    ) -> Result<NewSecret, ChatError> {
        self.check_may_own(user).await?;
        let found = self.check_hook_manager(user, room).await?;
        if found.archived {
            return Err(ChatError::archived());
        }
        let name = check_token_name(name)?;
        let display: String = name.chars().take(MAX_DISPLAY_NAME_CHARS).collect();
        let bot = self.make_bot(user.id, &hook_bot_name(), &display).await?;
        self.add_member(room, &bot.user).await?;
        let secret = format!("{HOOK_SECRET_PREFIX}{}", accounts::new_token());
        let token = self
            .store
            .create_api_token(NewApiToken {
                bot: bot.user.id,
                name,
                token_hash: accounts::token_hash(&secret).to_vec(),
                rooms: vec![room],
                hook_room: Some(room),
                created_by: user.id,
                created_at: self.config.clock.now_millis(),
            })
            .await?;
        Ok(NewSecret { token, secret })
    }

    /// `GET /api/rooms/{id}/webhooks`.
    pub async fn list_webhooks(
        &self,
        user: &User,
        room: RoomId,
    ) -> Result<Vec<ApiToken>, ChatError> {
        self.check_hook_manager(user, room).await?;
        Ok(self.store.api_tokens(TokensOf::Hooks(room)).await?)
    }

    /// `DELETE /api/rooms/{id}/webhooks/{hid}`: the webhook and its bot are deleted (its
    /// messages stay).
    pub async fn delete_webhook(
        &self,
        user: &User,
        room: RoomId,
        hook: TokenId,
    ) -> Result<(), ChatError> {
        self.check_hook_manager(user, room).await?;
        let found = self
            .store
            .api_tokens(TokensOf::Hooks(room))
            .await?
            .into_iter()
            .find(|t| t.id == hook)
            .ok_or_else(|| not_found("webhook"))?;
        let bot = self.store.bot(found.bot).await?;
        self.store.delete_api_token(hook).await?;
        if let Some(bot) = bot {
            self.remove_bot_account(&bot.user).await?;
        }
        Ok(())
    }

    /// `POST /hooks/{secret}`: posts `text` to the webhook's room as its bot. `not_found` for
    /// a secret that is not a webhook's. A `client_id` makes a retry return the stored
    /// message; without one, every post is a new message.
    pub async fn hook_post(
        self: &Arc<Self>,
        secret: &str,
        text: String,
        client_id: Option<String>,
    ) -> Result<SentReply, ChatError> {
        if !secret.starts_with(HOOK_SECRET_PREFIX) {
            return Err(not_found("webhook"));
        }
        let hash = accounts::token_hash(secret);
        let (token, user) = self
            .store
            .api_token(&hash)
            .await?
            .filter(|(t, _)| t.hook_room.is_some())
            .ok_or_else(|| not_found("webhook"))?;
        let Some(room) = token.hook_room else {
            return Err(not_found("webhook"));
        };
        self.touch_token(&token).await?;
        self.take_api_call(ApiKey::Token(token.id))?;
        let caller = ApiCaller {
            user,
            scope: Some(vec![room]),
            token_hash: hash,
            key: ApiKey::Token(token.id),
        };
        let client_id = client_id.unwrap_or_else(|| {
            let id = accounts::token_hash(&accounts::new_token());
            format!("hook-{}", accounts::to_hex(&id[..12]))
        });
        self.api_send(
            &caller,
            SendArgs {
                room,
                body: text,
                client_id,
                thread: None,
                also_room: false,
                files: Vec::new(),
            },
        )
        .await
    }

    /// Whether a user is a bot (profiles carry it too: `Profile::bot`).
    pub(crate) async fn is_bot(&self, user: UserId) -> Result<bool, ChatError> {
        Ok(self.store.bot(user).await?.is_some())
    }
}
