//! Changes to earlier messages, each stored as a new entry of the room's stream and
//! published like a message: `message.edit` (the author only), `message.delete` (the author,
//! or a moderator of a higher rank: `moderation.rs`), `reaction.add` / `reaction.remove`,
//! and `message.edits`, a message's earlier texts.

use super::messages::unknown_message;
use super::Node;
use crate::broker::BusEvent;
use crate::error::{ChatError, ErrorCode};
use crate::model::*;
use crate::protocol::*;
use crate::session::SessionHandle;

impl Node {
    /// The target of an edit or delete by `session`'s user: it must exist, not be deleted,
    /// and be theirs (or, with `moderating`, one they may delete as a moderator).
    async fn own_message(
        &self,
        session: &SessionHandle,
        room: RoomId,
        seq: Seq,
        moderating: bool,
    ) -> Result<Message, ChatError> {
        if let Err(e) = self.check_member(session, room).await {
            // A server admin moderates every room, member or not.
            if !(moderating && self.is_admin(session.user.id).await?) {
                return Err(e);
            }
        }
        let target = self
            .store
            .message(room, seq)
            .await?
            .ok_or_else(unknown_message)?;
        if target.deleted {
            return Err(ChatError::new(
                ErrorCode::MessageDeleted,
                "that message was deleted",
            ));
        }
        let allowed = if moderating {
            self.may_delete_of(session.user.id, target.sender.id, room)
                .await?
        } else {
            target.sender.id == session.user.id
        };
        if !allowed {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only its author can change a message",
            ));
        }
        Ok(target)
    }

    /// Stores a change and publishes its entry (again, for a retry: see `send`).
    async fn apply(&self, change: NewChange) -> Result<Reply, ChatError> {
        let (entry, duplicate) = match self.store.change(change).await? {
            ChangeOutcome::Applied(entry) => (Some(entry), false),
            ChangeOutcome::Duplicate(entry) => (Some(entry), true),
            ChangeOutcome::Unchanged => (None, false),
        };
        if let Some(entry) = &entry {
            self.publish(BusEvent::Message {
                message: entry.clone(),
            })
            .await;
        }
        Ok(ChangeReply { entry, duplicate }.into())
    }

    fn new_change(
        session: &SessionHandle,
        room: RoomId,
        client_id: String,
        change: Change,
    ) -> NewChange {
        NewChange {
            room,
            sender: session.user.clone(),
            client_id,
            ts: now_millis(),
            change,
            body: String::new(),
            max_reactions: 0,
        }
    }

    pub(crate) async fn edit(
        &self,
        session: &SessionHandle,
        args: EditArgs,
    ) -> Result<Reply, ChatError> {
        self.check_body(&args.body)?;
        Self::check_client_id(&args.client_id)?;
        self.own_message(session, args.room, args.seq, false)
            .await?;
        self.check_may_post(session.user.id, args.room).await?;
        let mut change = Self::new_change(
            session,
            args.room,
            args.client_id,
            Change::Edit { target: args.seq },
        );
        change.body = args.body;
        self.apply(change).await
    }

    pub(crate) async fn delete(
        &self,
        session: &SessionHandle,
        args: DeleteArgs,
    ) -> Result<Reply, ChatError> {
        Self::check_client_id(&args.client_id)?;
        self.own_message(session, args.room, args.seq, true).await?;
        let change = Self::new_change(
            session,
            args.room,
            args.client_id,
            Change::Delete { target: args.seq },
        );
        self.apply(change).await
    }

    pub(crate) async fn react(
        &self,
        session: &SessionHandle,
        args: ReactArgs,
        add: bool,
    ) -> Result<Reply, ChatError> {
        Self::check_client_id(&args.client_id)?;
        if !crate::text::is_single_emoji(&args.emoji) {
            return Err(ChatError::new(
                ErrorCode::InvalidEmoji,
                "a reaction is one emoji (not text or a shortcode)",
            ));
        }
        self.check_member(session, args.room).await?;
        self.check_may_post(session.user.id, args.room).await?;
        let mut change = Self::new_change(
            session,
            args.room,
            args.client_id,
            Change::React {
                target: args.seq,
                emoji: args.emoji,
                add,
            },
        );
        change.max_reactions = self.config.max_reactions_per_message;
        self.apply(change).await
    }

    pub(crate) async fn edits(
        &self,
        session: &SessionHandle,
        args: MessageArg,
    ) -> Result<Reply, ChatError> {
        self.check_member(session, args.room).await?;
        let target = self
            .store
            .message(args.room, args.seq)
            .await?
            .ok_or_else(unknown_message)?;
        if target.deleted {
            return Err(ChatError::new(
                ErrorCode::MessageDeleted,
                "that message was deleted",
            ));
        }
        let versions = self.store.versions(args.room, args.seq).await?;
        Ok(VersionsReply { versions }.into())
    }

    pub(crate) async fn room_notify(
        &self,
        session: &SessionHandle,
        args: NotifyArgs,
    ) -> Result<Reply, ChatError> {
        self.check_member(session, args.room).await?;
        if !self
            .store
            .set_notify(args.room, session.user.id, args.level)
            .await?
        {
            return Err(ChatError::not_member(args.room));
        }
        self.publish(BusEvent::RoomNotify {
            user: session.user.id,
            room: args.room,
            notify: args.level,
        })
        .await;
        Ok(NotifyReply {
            room: args.room,
            notify: args.level,
        }
        .into())
    }
}
