//! Message requests: `message.send` (validated, stored, published) and `history`.

use super::Node;
use crate::broker::BusEvent;
use crate::error::{ChatError, ErrorCode};
use crate::model::*;
use crate::protocol::*;
use crate::session::SessionHandle;
use std::sync::Arc;

impl Node {
    pub(crate) async fn send(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        args: SendArgs,
    ) -> Result<Reply, ChatError> {
        if args.body.trim().is_empty() {
            return Err(ChatError::new(
                ErrorCode::EmptyMessage,
                "a message cannot be empty",
            ));
        }
        let chars = args.body.chars().count();
        if chars > self.config.max_message_chars {
            return Err(ChatError::new(
                ErrorCode::MessageTooLong,
                format!(
                    "a message is at most {} characters (this one has {chars})",
                    self.config.max_message_chars
                ),
            ));
        }
        let id_chars = args.client_id.chars().count();
        if id_chars == 0 || id_chars > MAX_CLIENT_ID_CHARS {
            return Err(ChatError::invalid("`client_id` must be 1 to 64 characters"));
        }
        self.check_member(session, args.room).await?;
        let appended = self
            .store
            .append(NewMessage {
                room: args.room,
                sender: session.user.clone(),
                body: args.body,
                client_id: args.client_id,
                ts: now_millis(),
            })
            .await?;
        // A duplicate is published again: the first attempt may have been stored by a node
        // that died before publishing it. Sessions that have it already skip it by seq.
        self.publish(BusEvent::Message {
            message: appended.message.clone(),
        })
        .await;
        if !appended.duplicate {
            self.end_typing(args.room, &session.user).await;
        }
        Ok(SentReply {
            message: appended.message,
            duplicate: appended.duplicate,
        }
        .into())
    }

    pub(crate) async fn history(
        &self,
        session: &SessionHandle,
        args: HistoryArgs,
    ) -> Result<Reply, ChatError> {
        let limit = args.limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
        if limit == 0 || limit > MAX_HISTORY_LIMIT {
            return Err(ChatError::invalid("`limit` must be 1 to 100"));
        }
        if args.before.is_some() && args.after.is_some() {
            return Err(ChatError::invalid(
                "give at most one of `before` and `after`",
            ));
        }
        self.check_member(session, args.room).await?;
        let mut messages = match args.after {
            Some(after) => {
                self.store
                    .messages_after(args.room, after, limit + 1)
                    .await?
            }
            None => {
                self.store
                    .messages_before(args.room, args.before, limit + 1)
                    .await?
            }
        };
        let has_more = messages.len() > limit as usize;
        if has_more {
            if args.after.is_some() {
                messages.truncate(limit as usize);
            } else {
                messages.remove(0);
            }
        }
        Ok(HistoryReply { messages, has_more }.into())
    }
}
