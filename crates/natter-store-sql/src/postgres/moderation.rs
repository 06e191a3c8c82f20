//! PostgreSQL roles, bans, mutes, invitations, room settings, admin flags and the audit log
//! (migration 0008): room events applied with their stream entry in the change's transaction
//! (`apply_room_event`, called by `changes::apply_change`, which holds the room row's lock),
//! and the reads authorization needs. The SQLite module of the same name is its twin.

use super::error::{backend, is_unique_violation};
use super::rooms::{add_member, forget_group, remove_member};
use super::rows::{col, user_from, USER_WIDTH};
use super::PostgresStore;
use crate::entries::{room_event_body, KIND_ROOM_EVENT};
use deadpool_postgres::{GenericClient, Transaction};
use natter_core::model::*;
use natter_core::store::name_key;
use natter_core::{Refusal, StoreError};
use tokio_postgres::types::ToSql;

async fn run(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let stmt = client.prepare_cached(sql).await.map_err(backend)?;
    client.execute(&stmt, params).await.map_err(backend)
}

async fn exists(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<bool, StoreError> {
    let stmt = client.prepare_cached(sql).await.map_err(backend)?;
    Ok(client
        .query_opt(&stmt, params)
        .await
        .map_err(backend)?
        .is_some())
}

async fn standing_of(
    client: &impl GenericClient,
    room: RoomId,
    user: UserId,
) -> Result<Standing, StoreError> {
    let stmt = client
        .prepare_cached("SELECT role, muted_until FROM members WHERE room_id = $1 AND user_id = $2")
        .await
        .map_err(backend)?;
    let member = client
        .query_opt(&stmt, &[&room.0, &user.0])
        .await
        .map_err(backend)?;
    let banned = exists(
        client,
        "SELECT 1 FROM bans WHERE room_id = $1 AND user_id = $2",
        &[&room.0, &user.0],
    )
    .await?;
    let invited = exists(
        client,
        "SELECT 1 FROM invites WHERE room_id = $1 AND user_id = $2",
        &[&room.0, &user.0],
    )
    .await?;
    Ok(match member {
        Some(row) => Standing {
            member: true,
            role: col::<Option<&str>>(&row, 0)?
                .and_then(RoomRole::parse)
                .unwrap_or_default(),
            muted_until: col(&row, 1)?,
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

async fn insert_audit(client: &impl GenericClient, a: &NewAudit) -> Result<(), StoreError> {
    run(
        client,
        "INSERT INTO audit (created_at, actor_id, action, room_id, target_id, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &a.ts,
            &a.actor.0,
            &a.action,
            &a.room.map(|r| r.0),
            &a.target.map(|u| u.0),
            &a.detail,
        ],
    )
    .await
    .map(|_| ())
}

/// A moderator deleting another's message: its audit line (in the delete's transaction).
pub(super) async fn audit_delete(
    tx: &Transaction<'_>,
    c: &NewChange,
    target: Seq,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached("SELECT sender_id FROM messages WHERE room_id = $1 AND seq = $2")
        .await
        .map_err(backend)?;
    let author: Option<i64> = match tx
        .query_opt(&stmt, &[&c.room.0, &target.0])
        .await
        .map_err(backend)?
    {
        Some(row) => Some(col(&row, 0)?),
        None => None,
    };
    match author {
        Some(author) if author != c.sender.id.0 => {
            insert_audit(
                tx,
                &NewAudit {
                    ts: c.ts,
                    actor: c.sender.id,
                    action: "delete".into(),
                    room: Some(c.room),
                    target: Some(UserId(author)),
                    detail: format!("{{\"seq\":{}}}", target.0),
                },
            )
            .await
        }
        _ => Ok(()),
    }
}

/// Applies a room event and stores it as entry `seq`; the flag says whether it stored.
pub(super) async fn apply_room_event(
    tx: &Transaction<'_>,
    c: NewChange,
    seq: i64,
) -> Result<(ChangeOutcome, bool), StoreError> {
    let room = c.room;
    let subject = c.change.subject().map(|u| u.id);
    let standing = match subject {
        Some(user) => standing_of(tx, room, user).await?,
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
    let unchanged = Ok((ChangeOutcome::Unchanged, false));
    match &c.change {
        Change::Join { .. } => {
            if !add_member(tx, room, UserId(user)).await? {
                return unchanged;
            }
        }
        Change::Leave { .. } => {
            if !remove_member(tx, room, UserId(user)).await? {
                return unchanged;
            }
            forget_group(tx, room).await?;
        }
        Change::Kick { .. } => {
            remove_member(tx, room, UserId(user)).await?;
        }
        Change::Ban { reason, .. } => {
            if standing.banned {
                return unchanged;
            }
            remove_member(tx, room, UserId(user)).await?;
            run(
                tx,
                "DELETE FROM invites WHERE room_id = $1 AND user_id = $2",
                &[&room.0, &user],
            )
            .await?;
            run(
                tx,
                "INSERT INTO bans (room_id, user_id, by_id, reason, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&room.0, &user, &c.sender.id.0, reason, &c.ts],
            )
            .await?;
        }
        Change::Unban { .. } => {
            if !standing.banned {
                return unchanged;
            }
            run(
                tx,
                "DELETE FROM bans WHERE room_id = $1 AND user_id = $2",
                &[&room.0, &user],
            )
            .await?;
        }
        Change::Mute { until, .. } => {
            run(
                tx,
                "UPDATE members SET muted_until = $3 WHERE room_id = $1 AND user_id = $2",
                &[&room.0, &user, until],
            )
            .await?;
        }
        Change::Unmute { .. } => {
            if standing.muted_until.is_none() {
                return unchanged;
            }
            run(
                tx,
                "UPDATE members SET muted_until = NULL WHERE room_id = $1 AND user_id = $2",
                &[&room.0, &user],
            )
            .await?;
        }
        Change::Role { role, .. } => {
            if standing.role == *role {
                return unchanged;
            }
            let stored = (*role != RoomRole::Member).then(|| role.as_str());
            run(
                tx,
                "UPDATE members SET role = $3 WHERE room_id = $1 AND user_id = $2",
                &[&room.0, &user, &stored],
            )
            .await?;
        }
        Change::Settings {
            name,
            topic,
            description,
            archived,
        } => {
            if let Some(name) = name {
                // A public room's name key follows its name; a private room has none.
                let stmt = tx
                    .prepare_cached(
                        "UPDATE rooms SET name = $2,
                             name_key = CASE WHEN kind = 'public' THEN $3 ELSE name_key END
                         WHERE id = $1",
                    )
                    .await
                    .map_err(backend)?;
                match tx.execute(&stmt, &[&room.0, name, &name_key(name)]).await {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::Conflict("room name taken".into()))
                    }
                    Err(e) => return Err(backend(e)),
                }
            }
            if let Some(topic) = topic {
                run(
                    tx,
                    "UPDATE rooms SET topic = $2 WHERE id = $1",
                    &[&room.0, topic],
                )
                .await?;
            }
            if let Some(description) = description {
                run(
                    tx,
                    "UPDATE rooms SET description = $2 WHERE id = $1",
                    &[&room.0, description],
                )
                .await?;
            }
            if let Some(archived) = archived {
                run(
                    tx,
                    "UPDATE rooms SET archived = $2 WHERE id = $1",
                    &[&room.0, archived],
                )
                .await?;
            }
        }
        _ => return Err(StoreError::Backend("not a room event".into())),
    }
    let body = room_event_body(&c.change)?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at, kind)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .await
        .map_err(backend)?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &room.0,
                &seq,
                &c.sender.id.0,
                &body,
                &c.client_id,
                &c.ts,
                &KIND_ROOM_EVENT,
            ],
        )
        .await
        .map_err(backend)?;
    if !c.change.is_membership() {
        insert_audit(
            tx,
            &NewAudit {
                ts: c.ts,
                actor: c.sender.id,
                action: c.change.op().to_string(),
                room: Some(room),
                target: subject,
                detail: body,
            },
        )
        .await?;
    }
    let entry = Message {
        id: MessageId(col(&row, 0)?),
        room,
        seq: Seq(seq),
        sender: c.sender,
        ts: c.ts,
        client_id: c.client_id,
        change: Some(c.change),
        ..Message::default()
    };
    Ok((ChangeOutcome::Applied(entry), true))
}

pub(super) async fn standing(
    store: &PostgresStore,
    room: RoomId,
    user: UserId,
) -> Result<Standing, StoreError> {
    standing_of(&store.client().await?, room, user).await
}

pub(super) async fn invite(
    store: &PostgresStore,
    room: RoomId,
    user: UserId,
    by: UserId,
    now: Millis,
) -> Result<bool, StoreError> {
    run(
        &store.client().await?,
        "INSERT INTO invites (room_id, user_id, by_id, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
        &[&room.0, &user.0, &by.0, &now],
    )
    .await
    .map(|n| n == 1)
}

pub(super) async fn remove_invite(
    store: &PostgresStore,
    room: RoomId,
    user: UserId,
) -> Result<bool, StoreError> {
    run(
        &store.client().await?,
        "DELETE FROM invites WHERE room_id = $1 AND user_id = $2",
        &[&room.0, &user.0],
    )
    .await
    .map(|n| n == 1)
}

pub(super) async fn invites_of(
    store: &PostgresStore,
    user: UserId,
) -> Result<Vec<Invite>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT i.room_id, r.name, u.id, u.name, u.guest, u.bot, i.created_at
             FROM invites i JOIN rooms r ON r.id = i.room_id JOIN users u ON u.id = i.by_id
             WHERE i.user_id = $1 ORDER BY i.created_at, i.room_id",
        )
        .await
        .map_err(backend)?;
    let rows = client.query(&stmt, &[&user.0]).await.map_err(backend)?;
    rows.iter()
        .map(|r| {
            Ok(Invite {
                room: RoomId(col(r, 0)?),
                name: col(r, 1)?,
                by: user_from(r, 2)?,
                ts: col(r, 2 + USER_WIDTH)?,
            })
        })
        .collect()
}

pub(super) async fn bans(store: &PostgresStore, room: RoomId) -> Result<Vec<Ban>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT u.id, u.name, u.guest, u.bot, b.id, b.name, b.guest, b.bot, x.reason, x.created_at
             FROM bans x JOIN users u ON u.id = x.user_id JOIN users b ON b.id = x.by_id
             WHERE x.room_id = $1 ORDER BY x.created_at, x.user_id",
        )
        .await
        .map_err(backend)?;
    let rows = client.query(&stmt, &[&room.0]).await.map_err(backend)?;
    rows.iter()
        .map(|r| {
            Ok(Ban {
                user: user_from(r, 0)?,
                by: user_from(r, USER_WIDTH)?,
                reason: col(r, 2 * USER_WIDTH)?,
                ts: col(r, 2 * USER_WIDTH + 1)?,
            })
        })
        .collect()
}

pub(super) async fn user_flags(
    store: &PostgresStore,
    user: UserId,
) -> Result<Option<UserFlags>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached("SELECT admin, deactivated FROM users WHERE id = $1")
        .await
        .map_err(backend)?;
    match client.query_opt(&stmt, &[&user.0]).await.map_err(backend)? {
        Some(row) => Ok(Some(UserFlags {
            admin: col(&row, 0)?,
            deactivated: col(&row, 1)?,
        })),
        None => Ok(None),
    }
}

pub(super) async fn set_admin(
    store: &PostgresStore,
    user: UserId,
    admin: bool,
) -> Result<bool, StoreError> {
    run(
        &store.client().await?,
        "UPDATE users SET admin = $2 WHERE id = $1",
        &[&user.0, &admin],
    )
    .await
    .map(|n| n == 1)
}

pub(super) async fn deactivate(
    store: &PostgresStore,
    user: UserId,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    run(
        &tx,
        "UPDATE users SET deactivated = TRUE WHERE id = $1",
        &[&user.0],
    )
    .await?;
    let stmt = tx
        .prepare_cached("DELETE FROM sessions WHERE user_id = $1 RETURNING token_hash")
        .await
        .map_err(backend)?;
    let rows = tx.query(&stmt, &[&user.0]).await.map_err(backend)?;
    let hashes = rows
        .iter()
        .map(|r| col::<Vec<u8>>(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit().await.map_err(backend)?;
    Ok(hashes)
}

pub(super) async fn record_audit(store: &PostgresStore, entry: NewAudit) -> Result<(), StoreError> {
    insert_audit(&store.client().await?, &entry).await
}

pub(super) async fn audit_page(
    store: &PostgresStore,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT a.id, a.created_at, u.id, u.name, u.guest, u.bot, a.action, a.room_id,
                    t.id, t.name, t.guest, t.bot, a.detail
             FROM audit a JOIN users u ON u.id = a.actor_id
             LEFT JOIN users t ON t.id = a.target_id
             WHERE a.id < $1 ORDER BY a.id DESC LIMIT $2",
        )
        .await
        .map_err(backend)?;
    let rows = client
        .query(&stmt, &[&before.unwrap_or(i64::MAX), &i64::from(limit)])
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                id: col(r, 0)?,
                ts: col(r, 1)?,
                actor: user_from(r, 2)?,
                action: col(r, 6)?,
                room: col::<Option<i64>>(r, 7)?.map(RoomId),
                target: match col::<Option<i64>>(r, 8)? {
                    Some(_) => Some(user_from(r, 8)?),
                    None => None,
                },
                detail: col(r, 8 + USER_WIDTH)?,
            })
        })
        .collect()
}
