//! An account's own end and its data: deleting one's account (`DELETE /api/account`: its
//! personal data gone, its sessions closed, its memberships ended, its messages kept under
//! "deleted user" or, with `--deleted-account-messages remove`, each deleted as its author
//! would, an entry of its room's stream) and exporting it (`GET /api/account/export`: the
//! profile, rooms and every message of one's own, as JSON).

use super::Node;
use crate::accounts;
use crate::broker::BusEvent;
use crate::error::{ChatError, ErrorCode, Refusal, StoreError};
use crate::model::*;
use serde::Serialize;
use std::net::IpAddr;

/// Messages read per page while exporting or removing an account's messages.
const PAGE: u32 = 500;

/// `GET /api/account/export`.
#[derive(Debug, Clone, Serialize)]
pub struct Export {
    pub exported_at: Millis,
    pub user: User,
    pub profile: MemberView,
    pub rooms: Vec<RoomView>,
    /// Every message of the user's, in their current state, by id (with the files they
    /// carry; fetch each with the same bearer token).
    pub messages: Vec<Message>,
}

impl Node {
    /// Every message of `user` that is not deleted, by id.
    async fn own_messages(&self, user: UserId) -> Result<Vec<(MessageId, RoomId, Seq)>, ChatError> {
        let mut all = Vec::new();
        let mut after = MessageId(0);
        loop {
            let page = self.store.messages_of(user, after, PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(all);
            };
            after = last.0;
            let full = page.len() == PAGE as usize;
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Deletes the caller's account. A registered account must give its password
    /// (`invalid_credentials` otherwise; it counts as a sign-in attempt); a guest need not.
    pub async fn delete_account(
        &self,
        client: IpAddr,
        token: &str,
        password: Option<&str>,
    ) -> Result<(), ChatError> {
        let me = self.session_for_token(token).await?;
        if !me.user.guest {
            let hash = self
                .store
                .credentials(&me.user.name)
                .await?
                .filter(|c| c.user.id == me.user.id)
                .and_then(|c| c.password_hash);
            let verified = self
                .hashing
                .verify_password(client, password.unwrap_or_default().to_string(), hash)
                .await?;
            if !verified {
                return Err(ChatError::new(
                    ErrorCode::InvalidCredentials,
                    "the password is wrong",
                ));
            }
        }
        let user = me.user.clone();
        if self.config.remove_deleted_accounts_messages {
            for (_, room, seq) in self.own_messages(user.id).await? {
                let change = NewChange {
                    room,
                    sender: user.clone(),
                    client_id: format!("account-deleted-{}", seq.0),
                    ts: self.config.clock.now_millis(),
                    change: Change::Delete { target: seq },
                    body: String::new(),
                    max_reactions: 0,
                };
                match self.store.change(change).await {
                    Ok(ChangeOutcome::Applied(entry)) => {
                        self.publish(BusEvent::Message { message: entry }).await;
                    }
                    Ok(_) | Err(StoreError::Refused(Refusal::Deleted)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let deleted = self.delete_and_leave(&user).await?;
        self.store
            .record_audit(NewAudit {
                ts: self.config.clock.now_millis(),
                actor: user.id,
                action: "delete_account".into(),
                room: None,
                target: Some(user.id),
                detail: String::new(),
            })
            .await?;
        for hash in deleted.sessions {
            self.publish(BusEvent::SessionRevoked {
                user: user.id,
                token_hash: accounts::to_hex(&hash),
            })
            .await;
        }
        Ok(())
    }

    /// Deletes an account (a person's or a bot's) and tells its rooms: first it leaves each
    /// room but DMs (a `leave` entry each, shown from "deleted user"), so the rooms' streams
    /// say so; then the store deletes it, which also takes it out of its DMs (`member_left`
    /// there).
    pub(crate) async fn delete_and_leave(
        &self,
        user: &User,
    ) -> Result<crate::store::DeletedAccount, ChatError> {
        let gone = User {
            name: crate::store::DELETED_USER_NAME.into(),
            ..user.clone()
        };
        for (room, _) in self.store.rooms_of(user.id).await? {
            if room.kind != RoomKind::Dm {
                self.remove_from_room(room.id, user, &gone).await?;
            }
        }
        let deleted = self.store.delete_account(user.id).await?;
        for &room in &deleted.rooms {
            let count = self.store.room(room).await?.map_or(0, |r| r.member_count);
            self.publish(BusEvent::MemberLeft {
                room,
                user: gone.clone(),
                member_count: count,
            })
            .await;
        }
        Ok(deleted)
    }

    /// The caller's data: profile, rooms, and every message of theirs in its current state.
    pub async fn export(&self, token: &str) -> Result<Export, ChatError> {
        let me = self.session_for_token(token).await?;
        let profile = self
            .store
            .profile(me.user.id)
            .await?
            .ok_or_else(ChatError::internal)?;
        let mut messages = Vec::new();
        for (_, room, seq) in self.own_messages(me.user.id).await? {
            if let Some(m) = self.store.message(room, seq).await? {
                messages.push(m);
            }
        }
        Ok(Export {
            exported_at: self.config.clock.now_millis(),
            user: me.user.clone(),
            profile: self.profile_view(profile, true).await?,
            rooms: self.my_rooms(me.user.id).await?,
            messages,
        })
    }
}
