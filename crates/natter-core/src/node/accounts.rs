//! Accounts on the node: sign-up (people and guests), sign-in, tokens and sign-out. The rules
//! for names, passwords and tokens themselves are in `crate::accounts`.

use super::{Node, SignedIn};
use crate::accounts;
use crate::broker::BusEvent;
use crate::error::{ChatError, ErrorCode, StoreError};
use crate::model::*;

impl Node {
    // ----- accounts -------------------------------------------------------------------

    pub async fn register(&self, username: &str, password: &str) -> Result<SignedIn, ChatError> {
        accounts::check_username(username)?;
        accounts::check_password(password)?;
        let hash = self.hashing.hash_password(password.to_string()).await?;
        let user = self.create_account(username, Some(&hash), false).await?;
        self.sign_in(user).await
    }

    pub async fn register_guest(&self, nickname: &str) -> Result<SignedIn, ChatError> {
        if !self.config.allow_guests {
            return Err(ChatError::new(
                ErrorCode::GuestsDisabled,
                "this server does not allow guests",
            ));
        }
        accounts::check_username(nickname)?;
        let user = self.create_account(nickname, None, true).await?;
        self.sign_in(user).await
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

    pub async fn login(&self, username: &str, password: &str) -> Result<SignedIn, ChatError> {
        let creds = self.store.credentials(username).await?;
        let (user, hash) = match creds {
            Some(c) => (Some(c.user), c.password_hash),
            None => (None, None),
        };
        let ok = self
            .hashing
            .verify_password(password.to_string(), hash)
            .await?;
        match user {
            Some(user) if ok => self.sign_in(user).await,
            _ => Err(ChatError::new(
                ErrorCode::InvalidCredentials,
                "wrong username or password",
            )),
        }
    }

    pub(crate) async fn sign_in(&self, user: User) -> Result<SignedIn, ChatError> {
        let token = accounts::new_token();
        self.store
            .create_session(&accounts::token_hash(&token), user.id)
            .await?;
        Ok(SignedIn { token, user })
    }

    /// Who a token belongs to.
    pub async fn user_for_token(&self, token: &str) -> Result<User, ChatError> {
        self.store
            .session_user(&accounts::token_hash(token))
            .await?
            .ok_or_else(|| ChatError::new(ErrorCode::Unauthenticated, "invalid or revoked token"))
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
