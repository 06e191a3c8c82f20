//! `MemoryStore`'s bots, API tokens and webhooks (`crate::bots`).

use crate::bots::{ApiToken, Bot, NewApiToken, TokenId, TokensOf};
use crate::error::StoreError;
use crate::model::*;
use std::collections::{BTreeMap, HashMap};

#[derive(Default)]
pub(super) struct BotRecords {
    /// Bot user id -> (owner, created at).
    bots: BTreeMap<UserId, (UserId, Millis)>,
    /// Tokens by id, with their hashes.
    tokens: BTreeMap<TokenId, (Vec<u8>, ApiToken)>,
    by_hash: HashMap<Vec<u8>, TokenId>,
    next_token: i64,
}

impl BotRecords {
    pub(super) fn add(&mut self, bot: UserId, owner: UserId, at: Millis) -> Result<(), StoreError> {
        if self.bots.contains_key(&bot) {
            return Err(StoreError::Conflict("already a bot".into()));
        }
        self.bots.insert(bot, (owner, at));
        Ok(())
    }

    pub(super) fn list(&self, owner: Option<UserId>) -> Vec<(UserId, UserId, Millis)> {
        self.bots
            .iter()
            .filter(|(_, (o, _))| owner.is_none_or(|w| w == *o))
            .map(|(b, (o, at))| (*b, *o, *at))
            .collect()
    }

    pub(super) fn get(&self, bot: UserId) -> Option<(UserId, Millis)> {
        self.bots.get(&bot).copied()
    }

    pub(super) fn remove(&mut self, bot: UserId) -> bool {
        let ids: Vec<TokenId> = self
            .tokens
            .iter()
            .filter(|(_, (_, t))| t.bot == bot)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.delete_token(id);
        }
        self.bots.remove(&bot).is_some()
    }

    pub(super) fn create_token(&mut self, new: NewApiToken) -> Result<ApiToken, StoreError> {
        if self.by_hash.contains_key(&new.token_hash) {
            return Err(StoreError::Conflict("token hash taken".into()));
        }
        self.next_token += 1;
        let token = ApiToken {
            id: TokenId(self.next_token),
            bot: new.bot,
            name: new.name,
            rooms: new.rooms,
            hook_room: new.hook_room,
            created_by: new.created_by,
            created_at: new.created_at,
            last_used_at: None,
        };
        self.by_hash.insert(new.token_hash.clone(), token.id);
        self.tokens
            .insert(token.id, (new.token_hash, token.clone()));
        Ok(token)
    }

    pub(super) fn tokens(&self, of: TokensOf) -> Vec<ApiToken> {
        self.tokens
            .values()
            .map(|(_, t)| t)
            .filter(|t| match of {
                TokensOf::Bot(bot) => t.bot == bot && t.hook_room.is_none(),
                TokensOf::Hooks(room) => t.hook_room == Some(room),
            })
            .cloned()
            .collect()
    }

    pub(super) fn by_hash(&self, hash: &[u8]) -> Option<ApiToken> {
        let id = self.by_hash.get(hash)?;
        self.tokens.get(id).map(|(_, t)| t.clone())
    }

    pub(super) fn delete_token(&mut self, id: TokenId) -> Option<ApiToken> {
        let (hash, token) = self.tokens.remove(&id)?;
        self.by_hash.remove(&hash);
        Some(token)
    }

    pub(super) fn touch(&mut self, id: TokenId, now: Millis) {
        if let Some((_, t)) = self.tokens.get_mut(&id) {
            t.last_used_at = Some(now);
        }
    }

    /// A bot as `Store::bot` returns it.
    pub(super) fn bot(user: User, (owner, created_at): (UserId, Millis)) -> Bot {
        Bot {
            user,
            owner,
            created_at,
        }
    }
}
