//! PostgreSQL rooms and membership: public rooms and DMs, joining and leaving (with the
//! member count), members, and read markers.

use super::error::{backend, is_unique_violation};
use super::rows::{col, room_from, user_from, AFTER_ROOM, ROOM_COLUMNS};
use super::PostgresStore;
use deadpool_postgres::GenericClient;
use natter_core::model::*;
use natter_core::store::name_key;
use natter_core::StoreError;

async fn room_by_id(client: &impl GenericClient, id: RoomId) -> Result<Option<Room>, StoreError> {
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = $1");
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    client
        .query_opt(&stmt, &[&id.0])
        .await
        .map_err(backend)?
        .map(|r| room_from(&r))
        .transpose()
}

/// Adds a membership (ending an invitation); false if there was one already, `Banned` if the
/// user is banned from the room.
pub(super) async fn add_member(
    client: &impl GenericClient,
    room: RoomId,
    user: UserId,
) -> Result<bool, StoreError> {
    let banned = client
        .prepare_cached("SELECT 1 FROM bans WHERE room_id = $1 AND user_id = $2")
        .await
        .map_err(backend)?;
    if client
        .query_opt(&banned, &[&room.0, &user.0])
        .await
        .map_err(backend)?
        .is_some()
    {
        return Err(StoreError::Refused(natter_core::Refusal::Banned));
    }
    let uninvite = client
        .prepare_cached("DELETE FROM invites WHERE room_id = $1 AND user_id = $2")
        .await
        .map_err(backend)?;
    client
        .execute(&uninvite, &[&room.0, &user.0])
        .await
        .map_err(backend)?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO members (room_id, user_id, joined_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(backend)?;
    let added = client
        .execute(&stmt, &[&room.0, &user.0, &now_millis()])
        .await
        .map_err(backend)?
        == 1;
    if added {
        let stmt = client
            .prepare_cached("UPDATE rooms SET member_count = member_count + 1 WHERE id = $1")
            .await
            .map_err(backend)?;
        client.execute(&stmt, &[&room.0]).await.map_err(backend)?;
    }
    Ok(added)
}

/// Deletes a membership (with its marker, role and mute); false if there was none.
pub(super) async fn remove_member(
    client: &impl GenericClient,
    room: RoomId,
    user: UserId,
) -> Result<bool, StoreError> {
    let delete = client
        .prepare_cached("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
        .await
        .map_err(backend)?;
    let removed = client
        .execute(&delete, &[&room.0, &user.0])
        .await
        .map_err(backend)?
        == 1;
    if removed {
        let update = client
            .prepare_cached("UPDATE rooms SET member_count = member_count - 1 WHERE id = $1")
            .await
            .map_err(backend)?;
        client.execute(&update, &[&room.0]).await.map_err(backend)?;
    }
    Ok(removed)
}

pub(super) async fn ensure_public_room(
    store: &PostgresStore,
    name: &str,
) -> Result<Room, StoreError> {
    let client = store.client().await?;
    let key = name_key(name);
    let insert = client
        .prepare_cached(
            "INSERT INTO rooms (name, kind, name_key, created_at) VALUES ($1, 'public', $2, $3)
                 ON CONFLICT (name_key) DO NOTHING",
        )
        .await
        .map_err(backend)?;
    client
        .execute(&insert, &[&name, &key, &now_millis()])
        .await
        .map_err(backend)?;
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.name_key = $1");
    let select = client.prepare_cached(&sql).await.map_err(backend)?;
    let row = client.query_one(&select, &[&key]).await.map_err(backend)?;
    room_from(&row)
}

pub(super) async fn create_room(
    store: &PostgresStore,
    name: &str,
    creator: UserId,
    kind: RoomKind,
) -> Result<Room, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO rooms (name, kind, name_key, created_at, created_by)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .await
        .map_err(backend)?;
    // A private room has no name key: its name is not unique and reveals nothing.
    let key = (kind == RoomKind::Public).then(|| name_key(name));
    let id = match tx
        .query_one(
            &insert,
            &[&name, &kind.as_str(), &key, &now_millis(), &creator.0],
        )
        .await
    {
        Ok(row) => RoomId(col(&row, 0)?),
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict("room name taken".into()))
        }
        Err(e) => return Err(backend(e)),
    };
    add_member(&tx, id, creator).await?;
    let owner = tx
        .prepare_cached("UPDATE members SET role = 'owner' WHERE room_id = $1 AND user_id = $2")
        .await
        .map_err(backend)?;
    tx.execute(&owner, &[&id.0, &creator.0])
        .await
        .map_err(backend)?;
    let room = room_by_id(&tx, id).await?.ok_or(StoreError::NotFound)?;
    tx.commit().await.map_err(backend)?;
    Ok(room)
}

pub(super) async fn room(store: &PostgresStore, room: RoomId) -> Result<Option<Room>, StoreError> {
    room_by_id(&store.client().await?, room).await
}

pub(super) async fn public_rooms(store: &PostgresStore) -> Result<Vec<Room>, StoreError> {
    let client = store.client().await?;
    let sql =
        format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.kind = 'public' ORDER BY r.name_key");
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let rows = client.query(&stmt, &[]).await.map_err(backend)?;
    rows.iter().map(room_from).collect()
}

pub(super) async fn rooms_created_by(
    store: &PostgresStore,
    user: UserId,
) -> Result<u64, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached("SELECT COUNT(*) FROM rooms WHERE created_by = $1")
        .await
        .map_err(backend)?;
    let row = client.query_one(&stmt, &[&user.0]).await.map_err(backend)?;
    let count: i64 = row.try_get(0).map_err(backend)?;
    Ok(count.max(0) as u64)
}

/// Walks `rooms_by_name_key_c` from the cursor (DMs have no name key, so never match), in
/// byte order as SQLite and the memory store do, whatever the database's locale; `strpos`
/// rather than `LIKE`, so `_` and `%` in a query are plain characters.
pub(super) async fn public_rooms_page(
    store: &PostgresStore,
    contains: &str,
    after: &str,
    limit: u32,
    archived: bool,
) -> Result<Vec<Room>, StoreError> {
    let client = store.client().await?;
    let sql = format!(
        "SELECT {ROOM_COLUMNS} FROM rooms r
         WHERE r.kind = 'public' AND r.name_key COLLATE \"C\" > $1
           AND ($2 = '' OR strpos(r.name_key, $2) > 0) AND r.archived = $4
         ORDER BY r.name_key COLLATE \"C\" LIMIT $3"
    );
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let rows = client
        .query(&stmt, &[&after, &contains, &i64::from(limit), &archived])
        .await
        .map_err(backend)?;
    rows.iter().map(room_from).collect()
}

pub(super) async fn rooms_of(
    store: &PostgresStore,
    user: UserId,
) -> Result<Vec<(Room, Option<User>)>, StoreError> {
    let client = store.client().await?;
    let sql = format!(
        "SELECT {ROOM_COLUMNS}, p.id, p.name, p.guest, p.bot
             FROM members me JOIN rooms r ON r.id = me.room_id
             LEFT JOIN members pm ON r.kind = 'dm' AND pm.room_id = r.id AND pm.user_id != me.user_id
             LEFT JOIN users p ON p.id = pm.user_id
             WHERE me.user_id = $1 ORDER BY r.id"
    );
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let rows = client.query(&stmt, &[&user.0]).await.map_err(backend)?;
    rows.iter()
        .map(|row| {
            let peer = match col::<Option<i64>>(row, AFTER_ROOM)? {
                Some(_) => Some(user_from(row, AFTER_ROOM)?),
                None => None,
            };
            Ok((room_from(row)?, peer))
        })
        .collect()
}

/// A group someone left is no longer the group of its member set (`open_group` makes a new
/// one for that set).
pub(super) async fn forget_group(
    client: &impl GenericClient,
    room: RoomId,
) -> Result<(), StoreError> {
    let unkey = client
        .prepare_cached("UPDATE rooms SET dm_key = NULL WHERE id = $1 AND kind = 'group'")
        .await
        .map_err(backend)?;
    client.execute(&unkey, &[&room.0]).await.map_err(backend)?;
    Ok(())
}

pub(super) async fn open_group(
    store: &PostgresStore,
    members: &[UserId],
) -> Result<(Room, bool), StoreError> {
    let key = crate::entries::group_key(members);
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO rooms (name, kind, dm_key, created_at) VALUES ('group', 'group', $1, $2)
             ON CONFLICT (dm_key) DO NOTHING RETURNING id",
        )
        .await
        .map_err(backend)?;
    let (id, created) = match tx
        .query_opt(&insert, &[&key, &now_millis()])
        .await
        .map_err(backend)?
    {
        Some(row) => (RoomId(col(&row, 0)?), true),
        None => {
            let select = tx
                .prepare_cached("SELECT id FROM rooms WHERE dm_key = $1")
                .await
                .map_err(backend)?;
            let row = tx.query_one(&select, &[&key]).await.map_err(backend)?;
            (RoomId(col(&row, 0)?), false)
        }
    };
    if created {
        for m in members {
            add_member(&tx, id, *m).await?;
        }
    }
    let room = room_by_id(&tx, id).await?.ok_or(StoreError::NotFound)?;
    tx.commit().await.map_err(backend)?;
    Ok((room, created))
}

pub(super) async fn mark_read(
    store: &PostgresStore,
    room: RoomId,
    user: UserId,
    seq: Seq,
) -> Result<Option<Seq>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "UPDATE members m SET read_seq = GREATEST(m.read_seq, LEAST($3, r.last_seq))
                 FROM rooms r WHERE r.id = m.room_id AND m.room_id = $1 AND m.user_id = $2
                 RETURNING m.read_seq",
        )
        .await
        .map_err(backend)?;
    client
        .query_opt(&stmt, &[&room.0, &user.0, &seq.0])
        .await
        .map_err(backend)?
        .map(|row| col(&row, 0).map(Seq))
        .transpose()
}

pub(super) async fn read_markers(
    store: &PostgresStore,
    user: UserId,
) -> Result<Vec<(RoomId, Seq)>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT room_id, read_seq FROM members
                 WHERE user_id = $1 AND read_seq > 0 ORDER BY room_id",
        )
        .await
        .map_err(backend)?;
    client
        .query(&stmt, &[&user.0])
        .await
        .map_err(backend)?
        .iter()
        .map(|row| Ok((RoomId(col(row, 0)?), Seq(col(row, 1)?))))
        .collect()
}

pub(super) async fn is_member(
    store: &PostgresStore,
    room: RoomId,
    user: UserId,
) -> Result<bool, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached("SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2")
        .await
        .map_err(backend)?;
    Ok(client
        .query_opt(&stmt, &[&room.0, &user.0])
        .await
        .map_err(backend)?
        .is_some())
}

pub(super) async fn members(store: &PostgresStore, room: RoomId) -> Result<Vec<User>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT u.id, u.name, u.guest, u.bot FROM members m JOIN users u ON u.id = m.user_id
                 WHERE m.room_id = $1 ORDER BY u.name_key",
        )
        .await
        .map_err(backend)?;
    let rows = client.query(&stmt, &[&room.0]).await.map_err(backend)?;
    rows.iter().map(|row| user_from(row, 0)).collect()
}

pub(super) async fn open_dm(
    store: &PostgresStore,
    a: UserId,
    b: UserId,
) -> Result<(Room, bool), StoreError> {
    let key = format!("{}:{}", a.min(b).0, a.max(b).0);
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO rooms (name, kind, dm_key, created_at) VALUES ('dm', 'dm', $1, $2)
                 ON CONFLICT (dm_key) DO NOTHING RETURNING id",
        )
        .await
        .map_err(backend)?;
    let created = tx
        .query_opt(&insert, &[&key, &now_millis()])
        .await
        .map_err(backend)?;
    let (id, created) = match created {
        Some(row) => (RoomId(col(&row, 0)?), true),
        None => {
            let select = tx
                .prepare_cached("SELECT id FROM rooms WHERE dm_key = $1")
                .await
                .map_err(backend)?;
            let row = tx.query_one(&select, &[&key]).await.map_err(backend)?;
            (RoomId(col(&row, 0)?), false)
        }
    };
    if created {
        add_member(&tx, id, a).await?;
        add_member(&tx, id, b).await?;
    }
    let room = room_by_id(&tx, id).await?.ok_or(StoreError::NotFound)?;
    tx.commit().await.map_err(backend)?;
    Ok((room, created))
}
