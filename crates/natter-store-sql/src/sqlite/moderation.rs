//! SQLite roles, bans, mutes, invitations, room settings, admin flags and the audit log
//! (migration 0008): room events applied with their stream entry in the writer's
//! transaction (`apply_room_event`, called by `changes::apply_change`), and the reads
//! authorization needs.

use super::error::{backend, is_unique_violation};
use super::rooms::{add_member, forget_group, remove_member};
use super::rows::{user_from, USER_WIDTH};
use super::SqliteStore;
use crate::entries::{room_event_body, KIND_ROOM_EVENT};
use natter_core::model::*;
use natter_core::store::name_key;
use natter_core::{Refusal, StoreError};
use rusqlite::{params, Connection, OptionalExtension};

fn run(conn: &Connection, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .map_err(backend)?
        .execute(params)
        .map_err(backend)
}

fn standing_of(conn: &Connection, room: RoomId, user: UserId) -> Result<Standing, StoreError> {
    let member: Option<(Option<String>, Option<i64>)> = conn
        .prepare_cached("SELECT role, muted_until FROM members WHERE room_id = ?1 AND user_id = ?2")
        .map_err(backend)?
        .query_row(params![room.0, user.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(backend)?;
    let exists = |sql: &str| -> Result<bool, StoreError> {
        conn.prepare_cached(sql)
            .map_err(backend)?
            .exists(params![room.0, user.0])
            .map_err(backend)
    };
    let banned = exists("SELECT 1 FROM bans WHERE room_id = ?1 AND user_id = ?2")?;
    let invited = exists("SELECT 1 FROM invites WHERE room_id = ?1 AND user_id = ?2")?;
    Ok(match member {
        Some((role, muted_until)) => Standing {
            member: true,
            role: role
                .as_deref()
                .and_then(RoomRole::parse)
                .unwrap_or_default(),
            muted_until,
            banned,
            invited,
        },
        None => Standing {
            banned,
            invited,
            ..Standing::default()
        },
    })
}

fn insert_audit(conn: &Connection, a: &NewAudit) -> Result<(), StoreError> {
    run(
        conn,
        "INSERT INTO audit (created_at, actor_id, action, room_id, target_id, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            a.ts,
            a.actor.0,
            a.action,
            a.room.map(|r| r.0),
            a.target.map(|u| u.0),
            a.detail
        ],
    )
    .map(|_| ())
}

/// A moderator deleting another's message: its audit line (called in the delete's
/// transaction).
pub(super) fn audit_delete(
    conn: &Connection,
    c: &NewChange,
    target: Seq,
) -> Result<(), StoreError> {
    let author: Option<i64> = conn
        .prepare_cached("SELECT sender_id FROM messages WHERE room_id = ?1 AND seq = ?2")
        .map_err(backend)?
        .query_row(params![c.room.0, target.0], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    match author {
        Some(author) if author != c.sender.id.0 => insert_audit(
            conn,
            &NewAudit {
                ts: c.ts,
                actor: c.sender.id,
                action: "delete".into(),
                room: Some(c.room),
                target: Some(UserId(author)),
                detail: format!("{{\"seq\":{}}}", target.0),
            },
        ),
        _ => Ok(()),
    }
}

/// Applies a room event and stores it as entry `seq` (see `Store::change`'s rules).
pub(super) fn apply_room_event(
    conn: &Connection,
    c: NewChange,
    seq: i64,
) -> Result<ChangeOutcome, StoreError> {
    let room = c.room;
    let subject = c.change.subject().map(|u| u.id);
    let standing = match subject {
        Some(user) => standing_of(conn, room, user)?,
        None => Standing::default(),
    };
    let needs_member = matches!(
        c.change,
        Change::Kick { .. } | Change::Mute { .. } | Change::Unmute { .. } | Change::Role { .. }
    );
    if needs_member && !standing.member {
        return Err(StoreError::Refused(Refusal::NotMember));
    }
    let user = subject.map_or(0, |u| u.0);
    match &c.change {
        Change::Join { .. } => {
            if !add_member(conn, room, UserId(user))? {
                return Ok(ChangeOutcome::Unchanged);
            }
        }
        Change::Leave { .. } => {
            if !remove_member(conn, room, UserId(user))? {
                return Ok(ChangeOutcome::Unchanged);
            }
            forget_group(conn, room)?;
        }
        Change::Kick { .. } => {
            remove_member(conn, room, UserId(user))?;
        }
        Change::Ban { reason, .. } => {
            if standing.banned {
                return Ok(ChangeOutcome::Unchanged);
            }
            remove_member(conn, room, UserId(user))?;
            run(
                conn,
                "DELETE FROM invites WHERE room_id = ?1 AND user_id = ?2",
                params![room.0, user],
            )?;
            run(
                conn,
                "INSERT INTO bans (room_id, user_id, by_id, reason, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![room.0, user, c.sender.id.0, reason, c.ts],
            )?;
        }
        Change::Unban { .. } => {
            if !standing.banned {
                return Ok(ChangeOutcome::Unchanged);
            }
            run(
                conn,
                "DELETE FROM bans WHERE room_id = ?1 AND user_id = ?2",
                params![room.0, user],
            )?;
        }
        Change::Mute { until, .. } => {
            run(
                conn,
                "UPDATE members SET muted_until = ?3 WHERE room_id = ?1 AND user_id = ?2",
                params![room.0, user, until],
            )?;
        }
        Change::Unmute { .. } => {
            if standing.muted_until.is_none() {
                return Ok(ChangeOutcome::Unchanged);
            }
            run(
                conn,
                "UPDATE members SET muted_until = NULL WHERE room_id = ?1 AND user_id = ?2",
                params![room.0, user],
            )?;
        }
        Change::Role { role, .. } => {
            if standing.role == *role {
                return Ok(ChangeOutcome::Unchanged);
            }
            let stored = (*role != RoomRole::Member).then(|| role.as_str());
            run(
                conn,
                "UPDATE members SET role = ?3 WHERE room_id = ?1 AND user_id = ?2",
                params![room.0, user, stored],
            )?;
        }
        Change::Settings {
            name,
            topic,
            description,
            archived,
        } => {
            if let Some(name) = name {
                // A public room's name key follows its name; a private room has none.
                let renamed = conn
                    .prepare_cached(
                        "UPDATE rooms SET name = ?2,
                             name_key = CASE WHEN kind = 'public' THEN ?3 ELSE name_key END
                         WHERE id = ?1",
                    )
                    .map_err(backend)?
                    .execute(params![room.0, name, name_key(name)]);
                match renamed {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::Conflict("room name taken".into()))
                    }
                    Err(e) => return Err(backend(e)),
                }
            }
            if let Some(topic) = topic {
                run(
                    conn,
                    "UPDATE rooms SET topic = ?2 WHERE id = ?1",
                    params![room.0, topic],
                )?;
            }
            if let Some(description) = description {
                run(
                    conn,
                    "UPDATE rooms SET description = ?2 WHERE id = ?1",
                    params![room.0, description],
                )?;
            }
            if let Some(archived) = archived {
                run(
                    conn,
                    "UPDATE rooms SET archived = ?2 WHERE id = ?1",
                    params![room.0, archived],
                )?;
            }
        }
        _ => return Err(StoreError::Backend("not a room event".into())),
    }
    let body = room_event_body(&c.change)?;
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at, kind)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        )
        .map_err(backend)?
        .query_row(
            params![
                room.0,
                seq,
                c.sender.id.0,
                body,
                c.client_id,
                c.ts,
                KIND_ROOM_EVENT
            ],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if !c.change.is_membership() {
        insert_audit(
            conn,
            &NewAudit {
                ts: c.ts,
                actor: c.sender.id,
                action: c.change.op().to_string(),
                room: Some(room),
                target: subject,
                detail: body,
            },
        )?;
    }
    Ok(ChangeOutcome::Applied(Message {
        id: MessageId(id),
        room,
        seq: Seq(seq),
        sender: c.sender,
        ts: c.ts,
        client_id: c.client_id,
        change: Some(c.change),
        ..Message::default()
    }))
}

pub(super) async fn standing(
    store: &SqliteStore,
    room: RoomId,
    user: UserId,
) -> Result<Standing, StoreError> {
    store.read(move |conn| standing_of(conn, room, user)).await
}

pub(super) async fn invite(
    store: &SqliteStore,
    room: RoomId,
    user: UserId,
    by: UserId,
    now: Millis,
) -> Result<bool, StoreError> {
    store
        .write(move |conn| {
            run(
                conn,
                "INSERT OR IGNORE INTO invites (room_id, user_id, by_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![room.0, user.0, by.0, now],
            )
            .map(|n| n == 1)
        })
        .await
}

pub(super) async fn remove_invite(
    store: &SqliteStore,
    room: RoomId,
    user: UserId,
) -> Result<bool, StoreError> {
    store
        .write(move |conn| {
            run(
                conn,
                "DELETE FROM invites WHERE room_id = ?1 AND user_id = ?2",
                params![room.0, user.0],
            )
            .map(|n| n == 1)
        })
        .await
}

pub(super) async fn invites_of(
    store: &SqliteStore,
    user: UserId,
) -> Result<Vec<Invite>, StoreError> {
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT i.room_id, r.name, u.id, u.name, u.guest, u.bot, i.created_at
                     FROM invites i JOIN rooms r ON r.id = i.room_id
                     JOIN users u ON u.id = i.by_id
                     WHERE i.user_id = ?1 ORDER BY i.created_at, i.room_id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([user.0], |r| {
                    Ok(Invite {
                        room: RoomId(r.get(0)?),
                        name: r.get(1)?,
                        by: user_from(r, 2)?,
                        ts: r.get(2 + USER_WIDTH)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn bans(store: &SqliteStore, room: RoomId) -> Result<Vec<Ban>, StoreError> {
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT u.id, u.name, u.guest, u.bot, b.id, b.name, b.guest, b.bot, x.reason, x.created_at
                     FROM bans x JOIN users u ON u.id = x.user_id JOIN users b ON b.id = x.by_id
                     WHERE x.room_id = ?1 ORDER BY x.created_at, x.user_id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([room.0], |r| {
                    Ok(Ban {
                        user: user_from(r, 0)?,
                        by: user_from(r, USER_WIDTH)?,
                        reason: r.get(2 * USER_WIDTH)?,
                        ts: r.get(2 * USER_WIDTH + 1)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn user_flags(
    store: &SqliteStore,
    user: UserId,
) -> Result<Option<UserFlags>, StoreError> {
    store
        .read(move |conn| {
            conn.prepare_cached("SELECT admin, deactivated FROM users WHERE id = ?1")
                .map_err(backend)?
                .query_row([user.0], |r| {
                    Ok(UserFlags {
                        admin: r.get(0)?,
                        deactivated: r.get(1)?,
                    })
                })
                .optional()
                .map_err(backend)
        })
        .await
}

pub(super) async fn set_admin(
    store: &SqliteStore,
    user: UserId,
    admin: bool,
) -> Result<bool, StoreError> {
    store
        .write(move |conn| {
            run(
                conn,
                "UPDATE users SET admin = ?2 WHERE id = ?1",
                params![user.0, admin],
            )
            .map(|n| n == 1)
        })
        .await
}

pub(super) async fn deactivate(
    store: &SqliteStore,
    user: UserId,
) -> Result<Vec<Vec<u8>>, StoreError> {
    store
        .write(move |conn| {
            run(
                conn,
                "UPDATE users SET deactivated = 1 WHERE id = ?1",
                params![user.0],
            )?;
            let mut stmt = conn
                .prepare_cached("DELETE FROM sessions WHERE user_id = ?1 RETURNING token_hash")
                .map_err(backend)?;
            let rows = stmt
                .query_map([user.0], |r| r.get::<_, Vec<u8>>(0))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn record_audit(store: &SqliteStore, entry: NewAudit) -> Result<(), StoreError> {
    store.write(move |conn| insert_audit(conn, &entry)).await
}

pub(super) async fn audit_page(
    store: &SqliteStore,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT a.id, a.created_at, u.id, u.name, u.guest, u.bot, a.action, a.room_id,
                            t.id, t.name, t.guest, t.bot, a.detail
                     FROM audit a JOIN users u ON u.id = a.actor_id
                     LEFT JOIN users t ON t.id = a.target_id
                     WHERE a.id < ?1 ORDER BY a.id DESC LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![before.unwrap_or(i64::MAX), limit], |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        ts: r.get(1)?,
                        actor: user_from(r, 2)?,
                        action: r.get(6)?,
                        room: r.get::<_, Option<i64>>(7)?.map(RoomId),
                        target: match r.get::<_, Option<i64>>(8)? {
                            Some(_) => Some(user_from(r, 8)?),
                            None => None,
                        },
                        detail: r.get(8 + USER_WIDTH)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}
