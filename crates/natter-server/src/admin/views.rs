//! `natter admin list-users`, `list-rooms` and `stats`: the store's operators' views
//! (`Store::all_users`, `all_rooms`, `counts`) as text tables or JSON.

use super::output::{json_line, line, table, utc};
use super::OpsError;
use natter_core::Store;
use serde_json::json;
use std::io::Write;
use std::sync::Arc;

pub(super) async fn list_users(
    store: &Arc<dyn Store>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), OpsError> {
    let users = store.all_users().await?;
    if json {
        json_line(out, &users)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.user.name.clone(),
                u.user.id.to_string(),
                if u.user.guest { "yes" } else { "no" }.into(),
                utc(u.created_at),
                utc(u.last_active),
            ]
        })
        .collect();
    table(
        out,
        &["name", "id", "guest", "created", "last_active"],
        &rows,
    )?;
    Ok(())
}

pub(super) async fn list_rooms(
    store: &Arc<dyn Store>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), OpsError> {
    let rooms = store.all_rooms().await?;
    if json {
        let rooms: Vec<_> = rooms
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "name": r.name,
                    "kind": r.kind,
                    "members": r.member_count,
                    "last_seq": r.last_seq,
                })
            })
            .collect();
        json_line(out, &rooms)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = rooms
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.name.clone(),
                r.kind.as_str().into(),
                r.member_count.to_string(),
                r.last_seq.to_string(),
            ]
        })
        .collect();
    table(out, &["id", "name", "kind", "members", "last_seq"], &rows)?;
    Ok(())
}

pub(super) async fn stats(
    store: &Arc<dyn Store>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), OpsError> {
    let c = store.counts().await?;
    if json {
        json_line(out, &c)?;
        return Ok(());
    }
    for (name, n) in [
        ("users", c.users),
        ("guests", c.guests),
        ("rooms", c.rooms),
        ("messages", c.messages),
        ("sessions", c.sessions),
        ("files", c.files),
        ("file_bytes", c.file_bytes),
    ] {
        line(out, &format!("{name} {n}"))?;
    }
    Ok(())
}
