//! Accounts on the node: sign-up (people and guests), sign-in, tokens and their sliding
//! expiry, sign-out, the session list (revoke one, sign out everywhere) and password change;
//! and what an operator does to accounts (`natter admin`: create one, set a password).
//! The rules for names, passwords and tokens themselves are in `crate::accounts`.

use super::{Node, SignedIn};
use crate::accounts;
use crate::broker::BusEvent;
use crate::config::SESSION_TOUCH_INTERVAL;
use crate::error::{ChatError, ErrorCode, StoreError};
use crate::metrics::RateLimitKind;
use crate::model::*;
use crate::store::StoredSession;
use std::net::IpAddr;

/// One of a user's sessions as `GET /api/sessions` lists it (never the token).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionView {
    /// A public id for revoking it (`accounts::session_id`).
    pub id: String,
    /// The device label given at sign-in.
    pub label: String,
    pub created_at: Millis,
    /// The last recorded use (recorded at most once a minute).
    pub last_used_at: Millis,
    /// True for the session making the request.
    pub current: bool,
}

/// The hashing queue's key for an operator's requests (see `accounts::Hashing`).
const OPERATOR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn unauthenticated(message: &str) -> ChatError {
    ChatError::new(ErrorCode::Unauthenticated, message.to_string())
}

impl Node {
    // ----- accounts -------------------------------------------------------------------

    /// Creates an account and signs it in; `label` names the device (see
    /// `accounts::device_label`). `client` is the caller's key in the hashing queue (its
    /// address; see `accounts::Hashing`).
    pub async fn register(
        &self,
        client: IpAddr,
        username: &str,
        password: &str,
        label: &str,
    ) -> Result<SignedIn, ChatError> {
        accounts::check_username(username)?;
        accounts::check_password(password)?;
        let hash = self
            .hashing
            .hash_password(client, password.to_string())
            .await;
        let hash = self.count_refusal(RateLimitKind::PasswordHash, hash)?;
        let user = self.create_account(username, Some(&hash), false).await?;
        self.sign_in(user, label).await
    }

    pub async fn register_guest(&self, nickname: &str, label: &str) -> Result<SignedIn, ChatError> {
        if !self.config.allow_guests {
            return Err(ChatError::new(
                ErrorCode::GuestsDisabled,
                "this server does not allow guests",
            ));
        }
        accounts::check_username(nickname)?;
        let user = self.create_account(nickname, None, true).await?;
        self.sign_in(user, label).await
    }

    pub(crate) async fn create_account(
        &self,
        name: &str,
        hash: Option<&str>,
        guest: bool,
    ) -> Result<User, ChatError> {
        let user = match self.store.create_user(name, hash, guest).await {
            Ok(user) => user,
            Err(StoreError::Conflict(_)) => {
                return Err(ChatError::new(ErrorCode::NameTaken, "that name is taken"))
            }
            Err(e) => return Err(e.into()),
        };
        self.add_member(self.general, &user).await?;
        Ok(user)
    }

    /// Signs in with a name and password; `client` as for [`Node::register`].
    pub async fn login(
        &self,
        client: IpAddr,
        username: &str,
        password: &str,
        label: &str,
    ) -> Result<SignedIn, ChatError> {
        let creds = self.store.credentials(username).await?;
        let (user, hash) = match creds {
            Some(c) => (Some(c.user), c.password_hash),
            None => (None, None),
        };
        let ok = self
            .hashing
            .verify_password(client, password.to_string(), hash)
            .await;
        let ok = self.count_refusal(RateLimitKind::PasswordHash, ok)?;
        match user {
            Some(user) if ok => {
                let flags = self.store.user_flags(user.id).await?.unwrap_or_default();
                if flags.deactivated {
                    return Err(ChatError::new(
                        ErrorCode::AccountDeactivated,
                        "this account was deactivated by an admin",
                    ));
                }
                self.sign_in(user, label).await
            }
            _ => Err(ChatError::new(
                ErrorCode::InvalidCredentials,
                "wrong username or password",
            )),
        }
    }

    pub(crate) async fn sign_in(&self, user: User, label: &str) -> Result<SignedIn, ChatError> {
        let token = accounts::new_token();
        let label = accounts::clean_label(label);
        self.store
            .create_session(
                &accounts::token_hash(&token),
                user.id,
                &label,
                self.config.clock.now_millis(),
            )
            .await?;
        Ok(SignedIn { token, user })
    }

    /// Who a token belongs to. A token unused for longer than its TTL (the session TTL; for
    /// a guest, the shorter of it and the guest TTL) is expired: deleted, and refused. A use
    /// restarts the window, but is written at most once per `SESSION_TOUCH_INTERVAL`.
    pub async fn user_for_token(&self, token: &str) -> Result<User, ChatError> {
        Ok(self.session_for_token(token).await?.user)
    }

    pub(crate) async fn session_for_token(&self, token: &str) -> Result<StoredSession, ChatError> {
        let hash = accounts::token_hash(token);
        let session = self
            .store
            .session(&hash)
            .await?
            .ok_or_else(|| unauthenticated("invalid or revoked token"))?;
        let now = self.config.clock.now_millis();
        let mut ttl = self.config.session_ttl;
        if session.user.guest {
            ttl = ttl.min(self.config.guest_ttl);
        }
        if now.saturating_sub(session.last_used_at) > duration_ms(ttl) {
            self.revoke(session.user.id, vec![hash.to_vec()]).await?;
            return Err(unauthenticated("the session expired; sign in again"));
        }
        let stale_before = now.saturating_sub(duration_ms(SESSION_TOUCH_INTERVAL));
        if session.last_used_at < stale_before {
            self.store
                .touch_sessions(&[hash.to_vec()], now, stale_before)
                .await?;
        }
        Ok(session)
    }

    /// Deletes these sessions of `user` (if still there) and closes their connections with
    /// 4003, on every node.
    pub(crate) async fn revoke(&self, user: UserId, hashes: Vec<Vec<u8>>) -> Result<(), ChatError> {
        for hash in hashes {
            self.store.delete_session(&hash).await?;
            self.publish(BusEvent::SessionRevoked {
                user,
                token_hash: accounts::to_hex(&hash),
            })
            .await;
        }
        Ok(())
    }

    /// The caller's sessions, newest first, the caller's own marked `current`.
    pub async fn sessions(&self, token: &str) -> Result<Vec<SessionView>, ChatError> {
        let me = self.session_for_token(token).await?;
        Ok(self
            .store
            .sessions_of(me.user.id)
            .await?
            .into_iter()
            .map(|s| SessionView {
                id: accounts::session_id(&s.token_hash),
                current: s.token_hash == me.token_hash,
                label: s.label,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
            })
            .collect())
    }

    /// Revokes one of the caller's sessions by its public id; `not_found` if they have none
    /// with that id.
    pub async fn revoke_session(&self, token: &str, id: &str) -> Result<(), ChatError> {
        let me = self.session_for_token(token).await?;
        let found = self
            .store
            .sessions_of(me.user.id)
            .await?
            .into_iter()
            .find(|s| accounts::session_id(&s.token_hash) == id)
            .ok_or_else(|| ChatError::new(ErrorCode::NotFound, "no such session"))?;
        self.revoke(me.user.id, vec![found.token_hash]).await
    }

    /// Signs the caller out everywhere: every session of theirs, this one included.
    pub async fn logout_all(&self, token: &str) -> Result<(), ChatError> {
        let me = self.session_for_token(token).await?;
        let hashes = self.store.delete_sessions_of(me.user.id, None).await?;
        self.revoke(me.user.id, hashes).await
    }

    /// Changes the caller's password: the old one must verify (`invalid_credentials`
    /// otherwise; guests have none), the new one follows the password rules. Every other
    /// session of theirs is revoked; the caller's stays. `client` as for [`Node::register`].
    pub async fn change_password(
        &self,
        client: IpAddr,
        token: &str,
        old_password: &str,
        new_password: &str,
    ) -> Result<(), ChatError> {
        let me = self.session_for_token(token).await?;
        let hash = self
            .store
            .credentials(&me.user.name)
            .await?
            .filter(|c| c.user.id == me.user.id)
            .and_then(|c| c.password_hash);
        let verified = self
            .hashing
            .verify_password(client, old_password.to_string(), hash)
            .await;
        let verified = self.count_refusal(RateLimitKind::PasswordHash, verified)?;
        if !verified {
            return Err(ChatError::new(
                ErrorCode::InvalidCredentials,
                "the old password is wrong",
            ));
        }
        accounts::check_password(new_password)?;
        let new_hash = self
            .hashing
            .hash_password(client, new_password.to_string())
            .await;
        let new_hash = self.count_refusal(RateLimitKind::PasswordHash, new_hash)?;
        self.store.set_password(me.user.id, &new_hash).await?;
        let others = self
            .store
            .delete_sessions_of(me.user.id, Some(&me.token_hash))
            .await?;
        self.revoke(me.user.id, others).await
    }

    // ----- operators (`natter admin`) ------------------------------------------------

    /// Creates an account for an operator: the sign-up's name and password rules, errors and
    /// hashing, and like every sign-up it joins `general`; no session is made.
    pub async fn create_user_as_operator(
        &self,
        username: &str,
        password: &str,
    ) -> Result<User, ChatError> {
        accounts::check_username(username)?;
        accounts::check_password(password)?;
        let hash = self
            .hashing
            .hash_password(OPERATOR, password.to_string())
            .await?;
        self.create_account(username, Some(&hash), false).await
    }

    /// Sets a user's password for an operator (the password rules and hashing of sign-up) and
    /// deletes every session of theirs, so their tokens stop working; returns the user and how
    /// many sessions were deleted. Connections open on this node are closed with 4003; those
    /// on other nodes hear of it only through a shared broker. `unknown_user` if there is no
    /// such (named) user; guests have no password.
    pub async fn set_password_as_operator(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(User, usize), ChatError> {
        let creds = self.store.credentials(username).await?.ok_or_else(|| {
            ChatError::new(ErrorCode::UnknownUser, format!("no user named {username}"))
        })?;
        if creds.user.guest {
            return Err(ChatError::invalid(format!(
                "{} is a guest: guests have no password",
                creds.user.name
            )));
        }
        if self.is_bot(creds.user.id).await? {
            return Err(ChatError::invalid(format!(
                "{} is a bot: bots sign in with API tokens, not a password",
                creds.user.name
            )));
        }
        accounts::check_password(password)?;
        let hash = self
            .hashing
            .hash_password(OPERATOR, password.to_string())
            .await?;
        self.store.set_password(creds.user.id, &hash).await?;
        let deleted = self.store.delete_sessions_of(creds.user.id, None).await?;
        let count = deleted.len();
        self.revoke(creds.user.id, deleted).await?;
        Ok((creds.user, count))
    }

    /// Revokes a token and closes the connections that used it.
    pub async fn logout(&self, token: &str) -> Result<(), ChatError> {
        let hash = accounts::token_hash(token);
        let Some(user) = self.store.delete_session(&hash).await? else {
            return Err(ChatError::new(
                ErrorCode::Unauthenticated,
                "invalid or revoked token",
            ));
        };
        self.publish(BusEvent::SessionRevoked {
            user,
            token_hash: accounts::to_hex(&hash),
        })
        .await;
        Ok(())
    }
}
