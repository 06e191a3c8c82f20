//! `natter admin create-user` and `reset-password`: through a `Node` of this process over the
//! server's store, so the name and password rules, their errors and the argon2id hashing are
//! those of `POST /api/register`, and a new account joins `general` as a sign-up does.
//! `grant-admin`, `revoke-admin` and `deactivate` set the account's flags in the store and
//! add an audit line (its actor is the account itself: the command line has no account;
//! `detail` says `natter admin`).
//!
//! A reset deletes the user's sessions in the store. What a running server does then: every
//! HTTP request and every new `/ws` or Socket.IO sign-in with an old token is refused
//! (`unauthenticated`) at once; a WebSocket that is already open stays open (this process
//! cannot reach the server's in-process broker) until it closes or reconnects, when its
//! `auth` is refused. Restart the server to cut such connections off at once.

use super::output::{json_line, line};
use super::OpsError;
use crate::config::Config;
use natter_core::accounts::generate_password;
use natter_core::model::{now_millis, NewAudit};
use natter_core::{ChatError, ErrorCode, LocalBroker, Node, Store, User};
use serde_json::json;
use std::io::Write;
use std::sync::Arc;

/// What the output says about connections open on a running server (see the module doc).
pub(super) const OPEN_CONNECTIONS: &str = "sessions deleted: tokens are refused at their next \
     HTTP request or sign-in; a WebSocket already open on a running server stays open until it \
     reconnects (restart the server to close them at once)";

/// A node of this process over `store`, for one account operation; no one connects to it.
async fn node(store: &Arc<dyn Store>, config: &Config) -> Result<Arc<Node>, OpsError> {
    Ok(Node::start(store.clone(), Arc::new(LocalBroker::new()), config.core()).await?)
}

/// Stops the node's background tasks (it has no connections).
fn stop(node: &Node) {
    node.close_all(natter_core::close::GOING_AWAY);
}

fn user_json(user: &User) -> serde_json::Value {
    json!({"id": user.id, "name": user.name, "guest": user.guest})
}

pub(super) async fn create_user(
    store: &Arc<dyn Store>,
    config: &Config,
    name: &str,
    password: Option<&str>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), OpsError> {
    let generated = password.is_none().then(generate_password);
    let password = password.or(generated.as_deref()).unwrap_or_default();
    let node = node(store, config).await?;
    let created = node.create_user_as_operator(name, password).await;
    stop(&node);
    let user = created?;
    if json {
        let mut answer = json!({"user": user_json(&user)});
        if let Some(p) = &generated {
            answer["password"] = json!(p);
        }
        json_line(out, &answer)?;
    } else {
        line(out, &format!("created user {} (id {})", user.name, user.id))?;
        if let Some(p) = &generated {
            line(out, &format!("password: {p}"))?;
        }
    }
    Ok(())
}

pub(super) async fn reset_password(
    store: &Arc<dyn Store>,
    config: &Config,
    name: &str,
    password: Option<&str>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), OpsError> {
    let generated = password.is_none().then(generate_password);
    let password = password.or(generated.as_deref()).unwrap_or_default();
    let node = node(store, config).await?;
    let reset = node.set_password_as_operator(name, password).await;
    stop(&node);
    let (user, sessions) = reset?;
    if json {
        let mut answer = json!({
            "user": user_json(&user),
            "sessions_deleted": sessions,
            "open_connections": OPEN_CONNECTIONS,
        });
        if let Some(p) = &generated {
            answer["password"] = json!(p);
        }
        json_line(out, &answer)?;
    } else {
        line(
            out,
            &format!("password of {} (id {}) reset", user.name, user.id),
        )?;
        if let Some(p) = &generated {
            line(out, &format!("password: {p}"))?;
        }
        line(out, &format!("{sessions} {OPEN_CONNECTIONS}"))?;
    }
    Ok(())
}

async fn named(store: &Arc<dyn Store>, name: &str) -> Result<User, OpsError> {
    store.user_by_name(name).await?.ok_or_else(|| {
        OpsError::Refused(ChatError::new(
            ErrorCode::UnknownUser,
            "no user of that name",
        ))
    })
}

async fn audit(store: &Arc<dyn Store>, user: &User, action: &str) -> Result<(), OpsError> {
    store
        .record_audit(NewAudit {
            ts: now_millis(),
            actor: user.id,
            action: action.into(),
            room: None,
            target: Some(user.id),
            detail: r#"{"by":"natter admin"}"#.into(),
        })
        .await?;
    Ok(())
}

pub(super) async fn set_admin(
    store: &Arc<dyn Store>,
    name: &str,
    admin: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), OpsError> {
    let user = named(store, name).await?;
    if user.guest && admin {
        return Err(OpsError::Refused(ChatError::invalid(
            "guests cannot be admins",
        )));
    }
    store.set_admin(user.id, admin).await?;
    audit(store, &user, if admin { "admin" } else { "unadmin" }).await?;
    if json {
        json_line(out, &json!({"user": user_json(&user), "admin": admin}))?;
    } else {
        let now = if admin {
            "an admin"
        } else {
            "no longer an admin"
        };
        line(out, &format!("{} (id {}) is {now}", user.name, user.id))?;
    }
    Ok(())
}

pub(super) async fn deactivate(
    store: &Arc<dyn Store>,
    name: &str,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), OpsError> {
    let user = named(store, name).await?;
    let sessions = store.deactivate(user.id).await?.len();
    audit(store, &user, "deactivate").await?;
    if json {
        json_line(
            out,
            &json!({
                "user": user_json(&user),
                "sessions_deleted": sessions,
                "open_connections": OPEN_CONNECTIONS,
            }),
        )?;
    } else {
        line(
            out,
            &format!(
                "{} (id {}) deactivated; {sessions} {OPEN_CONNECTIONS}",
                user.name, user.id
            ),
        )?;
    }
    Ok(())
}
