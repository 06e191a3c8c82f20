//! Message requests: `message.send` (validated, mentions resolved, stored, published) and
//! `history` (the room's timeline, a thread, or the page around a message).

use super::Node;
use crate::broker::BusEvent;
use crate::error::{ChatError, ErrorCode};
use crate::model::*;
use crate::protocol::*;
use crate::session::SessionHandle;
use crate::store::name_key;
use std::sync::Arc;

impl Node {
    /// Checks a message text (a send's or an edit's) against the documented limits.
    pub(crate) fn check_body(&self, body: &str) -> Result<(), ChatError> {
        if body.trim().is_empty() {
            return Err(ChatError::new(
                ErrorCode::EmptyMessage,
                "a message cannot be empty",
            ));
        }
        self.check_length(body)
    }

    /// Checks a text against `max_message_chars` (a message with files may be empty), and
    /// refuses a NUL character.
    pub(crate) fn check_length(&self, body: &str) -> Result<(), ChatError> {
        // PostgreSQL cannot store a NUL in text (SQLite can): one rule for both backends.
        if body.contains('\0') {
            return Err(ChatError::invalid(
                "a message cannot contain a NUL character",
            ));
        }
        let chars = body.chars().count();
        if chars > self.config.max_message_chars {
            return Err(ChatError::new(
                ErrorCode::MessageTooLong,
                format!(
                    "a message is at most {} characters (this one has {chars})",
                    self.config.max_message_chars
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_client_id(client_id: &str) -> Result<(), ChatError> {
        let id_chars = client_id.chars().count();
        if id_chars == 0 || id_chars > MAX_CLIENT_ID_CHARS {
            return Err(ChatError::invalid("`client_id` must be 1 to 64 characters"));
        }
        Ok(())
    }

    /// The members a body mentions (by `@name`, members of the room only), and `@room`.
    async fn resolve_mentions(
        &self,
        room: RoomId,
        sender: UserId,
        body: &str,
    ) -> Result<(Vec<UserId>, bool), ChatError> {
        if !body.contains('@') {
            return Ok((Vec::new(), false));
        }
        let (names, everyone) = crate::text::mentions(body);
        if names.is_empty() {
            return Ok((Vec::new(), everyone));
        }
        let members = self.store.members(room).await?;
        let ids = names
            .iter()
            .filter_map(|n| members.iter().find(|m| name_key(&m.name) == *n))
            .map(|m| m.id)
            .filter(|id| *id != sender)
            .collect();
        Ok((ids, everyone))
    }

    pub(crate) async fn send(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        args: SendArgs,
    ) -> Result<Reply, ChatError> {
        if args.files.is_empty() {
            self.check_body(&args.body)?;
        } else {
            self.check_length(&args.body)?;
        }
        Self::check_files(&args.files)?;
        Self::check_client_id(&args.client_id)?;
        if args.also_room && args.thread.is_none() {
            return Err(ChatError::invalid("`also_room` needs `thread`"));
        }
        self.check_member(session, args.room).await?;
        let check_rules = self.check_may_send(session.user.id, args.room)?;
        let (mentions, mentions_room) = self
            .resolve_mentions(args.room, session.user.id, &args.body)
            .await?;
        let started = std::time::Instant::now();
        let appended = self
            .store
            .append(NewMessage {
                room: args.room,
                sender: session.user.clone(),
                body: args.body,
                client_id: args.client_id,
                ts: now_millis(),
                thread: args.thread,
                also_room: args.also_room,
                mentions,
                mentions_room,
                files: args.files,
                check_rules,
            })
            .await?;
        self.metrics.store_append.observe(started.elapsed());
        if !appended.duplicate {
            self.metrics.messages_stored.inc();
        }
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
        let anchors = [args.before, args.after, args.around]
            .iter()
            .filter(|a| a.is_some())
            .count();
        if anchors > 1 {
            return Err(ChatError::invalid(
                "give at most one of `before`, `after` and `around`",
            ));
        }
        self.check_member(session, args.room).await?;
        let (scope, parent) = match args.thread {
            Some(_) if args.events => {
                return Err(ChatError::invalid(
                    "`events` is for the room's timeline, not a thread",
                ));
            }
            Some(seq) => {
                let parent = self
                    .store
                    .message(args.room, seq)
                    .await?
                    .ok_or_else(unknown_message)?;
                if parent.thread.is_some() {
                    return Err(ChatError::new(
                        ErrorCode::InvalidThread,
                        "that message is a thread reply: it has no thread of its own",
                    ));
                }
                (Scope::Thread(seq), Some(parent))
            }
            None if args.events => (Scope::RoomAndEvents, None),
            None => (Scope::Room, None),
        };
        let page = |before, after, limit| {
            self.store
                .message_page(args.room, scope, before, after, limit)
        };
        if let Some(around) = args.around {
            // The older half ends with the message itself; the newer half follows it.
            let older_n = limit.div_ceil(2);
            let newer_n = limit - older_n;
            let mut older = page(Some(around.next()), None, older_n + 1).await?;
            let has_more = older.len() > older_n as usize;
            if has_more {
                older.remove(0);
            }
            let mut newer = page(None, Some(around), newer_n + 1).await?;
            let has_newer = newer.len() > newer_n as usize;
            newer.truncate(newer_n as usize);
            older.extend(newer);
            return Ok(HistoryReply {
                messages: older,
                has_more,
                has_newer: Some(has_newer),
                parent,
            }
            .into());
        }
        let mut messages = page(args.before, args.after, limit + 1).await?;
        let has_more = messages.len() > limit as usize;
        if has_more {
            if args.after.is_some() {
                messages.truncate(limit as usize);
            } else {
                messages.remove(0);
            }
        }
        Ok(HistoryReply {
            messages,
            has_more,
            has_newer: None,
            parent,
        }
        .into())
    }
}

pub(crate) fn unknown_message() -> ChatError {
    ChatError::new(ErrorCode::UnknownMessage, "no such message in this room")
}
