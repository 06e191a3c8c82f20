//! What both backends share about stream entries (migration 0004): how a `Change` is spread
//! over the `kind`, `target`, `emoji` and `reaction_add` columns and read back, the text form
//! of a message's mentions, the checks a change or thread reply passes against the message
//! it names (`Refusal`s), and grouping reaction rows into each message's `reactions`.

use natter_core::model::*;
use natter_core::{Refusal, StoreError};

/// `messages.kind` of a message.
pub(crate) const KIND_MESSAGE: i16 = 0;
/// `messages.kind` of an edit entry.
pub(crate) const KIND_EDIT: i16 = 1;
/// `messages.kind` of a delete entry.
pub(crate) const KIND_DELETE: i16 = 2;
/// `messages.kind` of a reaction entry.
pub(crate) const KIND_REACT: i16 = 3;
/// `messages.kind` of a room event (migration 0008): the `Change` as JSON in `body`.
pub(crate) const KIND_ROOM_EVENT: i16 = 4;

/// The `mentions.user_id` of `@room`.
pub(crate) const ROOM_MENTION: i64 = 0;

/// A change's columns: (kind, target, emoji, reaction_add).
pub(crate) fn change_columns(change: &Change) -> (i16, i64, Option<&str>, Option<bool>) {
    match change {
        Change::Edit { target } => (KIND_EDIT, target.0, None, None),
        Change::Delete { target } => (KIND_DELETE, target.0, None, None),
        Change::React { target, emoji, add } => {
            (KIND_REACT, target.0, Some(emoji.as_str()), Some(*add))
        }
        // Stored by `room_event_body` instead: no target.
        _ => (KIND_ROOM_EVENT, 0, None, None),
    }
}

/// A room event's `body`: the change as JSON.
pub(crate) fn room_event_body(change: &Change) -> Result<String, StoreError> {
    serde_json::to_string(change).map_err(|e| StoreError::Backend(e.to_string()))
}

/// The entry read back from its columns: a room event's change comes from its body (which
/// clients then see empty).
pub(crate) fn fill_room_event(message: &mut Message, kind: i16) -> Result<(), String> {
    if kind == KIND_ROOM_EVENT {
        let change: Change = serde_json::from_str(&message.body)
            .map_err(|e| format!("room event entry {}: {e}", message.id))?;
        message.change = Some(change);
        message.body.clear();
    }
    Ok(())
}

/// The change an entry's columns describe (None for a message).
pub(crate) fn change_from(
    kind: i16,
    target: Option<i64>,
    emoji: Option<String>,
    add: Option<bool>,
) -> Result<Option<Change>, String> {
    let target = || {
        target
            .map(Seq)
            .ok_or_else(|| format!("entry of kind {kind} without target"))
    };
    Ok(match kind {
        KIND_MESSAGE => None,
        KIND_EDIT => Some(Change::Edit { target: target()? }),
        KIND_DELETE => Some(Change::Delete { target: target()? }),
        KIND_REACT => Some(Change::React {
            target: target()?,
            emoji: emoji.unwrap_or_default(),
            add: add.unwrap_or(true),
        }),
        // Filled from the body by `fill_room_event`.
        KIND_ROOM_EVENT => None,
        other => return Err(format!("unknown entry kind {other}")),
    })
}

/// `messages.mentions`: the ids, comma-separated; None for none.
pub(crate) fn mentions_text(mentions: &[UserId]) -> Option<String> {
    if mentions.is_empty() {
        return None;
    }
    let ids: Vec<String> = mentions.iter().map(|u| u.0.to_string()).collect();
    Some(ids.join(","))
}

/// The ids `messages.mentions` holds.
pub(crate) fn mentions_from(text: Option<&str>) -> Vec<UserId> {
    text.map_or_else(Vec::new, |t| {
        t.split(',')
            .filter_map(|id| id.trim().parse().ok())
            .map(UserId)
            .collect()
    })
}

/// The `mentions` rows of a message: `@room` alone, or each user named once.
pub(crate) fn mention_rows(message: &NewMessage) -> Vec<i64> {
    if message.mentions_room {
        return vec![ROOM_MENTION];
    }
    let mut ids: Vec<i64> = message.mentions.iter().map(|u| u.0).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Whether appending `message` takes more than the one insert of a plain message.
pub(crate) fn has_extras(message: &NewMessage) -> bool {
    message.thread.is_some()
        || message.check_rules
        || message.mentions_room
        || !message.mentions.is_empty()
        || !message.files.is_empty()
}

/// What a change or thread reply needs to know of the entry at the seq it names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TargetState {
    pub kind: i16,
    /// It is a thread reply.
    pub in_thread: bool,
    pub deleted: bool,
}

/// A change may name a message (not a change entry) that is not deleted.
pub(crate) fn check_target(target: Option<TargetState>) -> Result<TargetState, StoreError> {
    match target {
        Some(t) if t.kind == KIND_MESSAGE => {
            if t.deleted {
                Err(StoreError::Refused(Refusal::Deleted))
            } else {
                Ok(t)
            }
        }
        _ => Err(StoreError::Refused(Refusal::UnknownMessage)),
    }
}

/// Whether a sender muted until `muted_until` may post at `ts` in a room `archived` or not
/// (`NewMessage::check_rules`).
pub(crate) fn check_rules(
    archived: bool,
    muted_until: Option<i64>,
    ts: i64,
) -> Result<(), StoreError> {
    if archived {
        return Err(StoreError::Refused(Refusal::Archived));
    }
    match muted_until {
        Some(until) if until > ts => Err(StoreError::Refused(Refusal::Muted(until))),
        _ => Ok(()),
    }
}

/// A thread reply's parent: a message, not itself a reply, not deleted.
pub(crate) fn check_parent(parent: Option<TargetState>) -> Result<(), StoreError> {
    let parent = match parent {
        Some(p) if p.kind == KIND_MESSAGE => p,
        _ => return Err(StoreError::Refused(Refusal::UnknownMessage)),
    };
    if parent.in_thread {
        return Err(StoreError::Refused(Refusal::InvalidThread));
    }
    if parent.deleted {
        return Err(StoreError::Refused(Refusal::Deleted));
    }
    Ok(())
}

/// Gives each message of `page` its reactions from `rows` (seq, emoji, user), which come
/// ordered by seq, then emoji order, then user order.
pub(crate) fn attach_reactions(page: &mut [Message], rows: Vec<(Seq, String, User)>) {
    for (seq, emoji, user) in rows {
        let Some(message) = page.iter_mut().find(|m| m.seq == seq) else {
            continue;
        };
        match message.reactions.last_mut() {
            Some(r) if r.emoji == emoji => r.users.push(user),
            _ => message.reactions.push(Reaction {
                emoji,
                users: vec![user],
            }),
        }
    }
}

/// The stored form of a notification level (NULL is the default).
pub(crate) fn notify_from(text: Option<&str>) -> NotifyLevel {
    text.and_then(NotifyLevel::parse).unwrap_or_default()
}

/// The `dm_key` of a group DM's member set: `g:` and the sorted ids (a DM's is `a:b`).
pub(crate) fn group_key(members: &[UserId]) -> String {
    let mut ids: Vec<i64> = members.iter().map(|u| u.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("g:{}", ids.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_survive_their_columns() {
        for change in [
            Change::Edit { target: Seq(4) },
            Change::Delete { target: Seq(5) },
            Change::React {
                target: Seq(6),
                emoji: "👍".into(),
                add: false,
            },
        ] {
            let (kind, target, emoji, add) = change_columns(&change);
            let back = change_from(kind, Some(target), emoji.map(str::to_string), add);
            assert_eq!(back, Ok(Some(change)));
        }
        assert_eq!(change_from(KIND_MESSAGE, None, None, None), Ok(None));
        assert!(change_from(9, Some(1), None, None).is_err());
    }

    #[test]
    fn mentions_survive_their_text() {
        let ids = vec![UserId(3), UserId(15)];
        assert_eq!(mentions_from(mentions_text(&ids).as_deref()), ids);
        assert_eq!(mentions_text(&[]), None);
        assert!(mentions_from(None).is_empty());
    }
}
