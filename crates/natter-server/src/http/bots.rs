//! The HTTP API for scripts and bots (docs/api.md): bot accounts and their API tokens,
//! rooms, history and posting, and rooms' incoming webhooks (`/hooks/{secret}`). Every
//! decision is the core's (`natter_core::node` bots module); this module reads requests and
//! writes responses. Errors are the API's `{"error": {"code", "message"}}`, with the statuses
//! of [`rest`]. Each handler carries its OpenAPI description (`super::openapi`).

use super::api::{bearer, body, ApiError};
use super::openapi::{
    AddMember, BotCreate, BotList, BotSchema, HistoryPage, HistoryQuery, HookBody, HookCreate,
    HookCreated, HookList, RoomList, RoomResult, SendBody, SentSchema, TokenCreate, TokenCreated,
    TokenList,
};
use crate::AppState;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use natter_core::bots::{ApiToken, TokenId};
use natter_core::model::{RoomId, Seq, User, UserId};
use natter_core::protocol::{HistoryArgs, SendArgs};
use natter_core::{ChatError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A core error with the HTTP API's status: 404 for what does not exist (or is hidden),
/// 403 for what the caller may not do, 409 for a name taken or a limit reached, and the
/// statuses of [`ApiError`] otherwise.
pub fn rest(error: ChatError) -> ApiError {
    use ErrorCode as C;
    let status = match error.code {
        C::UnknownRoom | C::UnknownUser | C::UnknownMessage | C::NotFound => {
            Some(StatusCode::NOT_FOUND)
        }
        C::NotMember | C::Forbidden | C::Banned | C::Muted | C::RoomArchived => {
            Some(StatusCode::FORBIDDEN)
        }
        C::NameTaken | C::LimitReached => Some(StatusCode::CONFLICT),
        _ => None,
    };
    ApiError {
        error,
        status,
        close: false,
    }
}

/// The signed-in person a management request comes from (a session token: an API token
/// is refused here, `unauthenticated`).
async fn person(state: &AppState, headers: &HeaderMap) -> Result<User, ApiError> {
    Ok(state.node.user_for_token(bearer(headers)?).await?)
}

/// An API token as listed (never the token itself).
#[derive(Debug, Serialize)]
struct TokenInfo {
    id: TokenId,
    name: String,
    rooms: Vec<RoomId>,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<i64>,
}

impl From<ApiToken> for TokenInfo {
    fn from(t: ApiToken) -> Self {
        TokenInfo {
            id: t.id,
            name: t.name,
            rooms: t.rooms,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// A webhook as listed (never its secret).
#[derive(Debug, Serialize)]
struct HookInfo {
    id: TokenId,
    name: String,
    room: RoomId,
    /// The bot it posts as.
    bot: UserId,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<i64>,
}

impl From<ApiToken> for HookInfo {
    fn from(t: ApiToken) -> Self {
        HookInfo {
            id: t.id,
            name: t.name,
            room: t.hook_room.unwrap_or_default(),
            bot: t.bot,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

#[derive(Deserialize)]
struct NewBot {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct NewToken {
    name: String,
    #[serde(default)]
    rooms: Vec<RoomId>,
}

#[derive(Deserialize)]
struct NewMember {
    user: String,
}

#[derive(Deserialize)]
struct NewHook {
    name: String,
}

#[derive(Deserialize)]
struct NewMessage {
    body: String,
    client_id: String,
    #[serde(default)]
    thread: Option<Seq>,
    #[serde(default)]
    also_room: bool,
}

/// `GET /api/rooms/{id}/messages` query.
#[derive(Deserialize)]
pub struct PageQuery {
    before: Option<Seq>,
    after: Option<Seq>,
    around: Option<Seq>,
    thread: Option<Seq>,
    limit: Option<u32>,
    #[serde(default)]
    events: bool,
}

/// A path's numeric id, or 404 (`not_found`) for anything else: an id that is not a
/// number names nothing.
fn id_of(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| rest(ChatError::new(ErrorCode::NotFound, "no such id")))
}

#[utoipa::path(post, path = "/api/bots", tag = "bots",
    request_body = BotCreate,
    responses((status = 201, description = "The new bot.", body = BotSchema)),
    security(("bearer" = [])))]
pub async fn create_bot(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let me = person(&state, req.headers()).await?;
    let b: NewBot = body(&state, req).await?;
    let bot = state
        .node
        .create_bot(&me, &b.name, b.display_name.as_deref())
        .await
        .map_err(rest)?;
    Ok((StatusCode::CREATED, Json(json!({ "bot": bot }))).into_response())
}

#[utoipa::path(get, path = "/api/bots", tag = "bots",
    responses((status = 200, description = "The caller's bots (an admin's: every bot).", body = BotList)),
    security(("bearer" = [])))]
pub async fn list_bots(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let me = person(&state, &headers).await?;
    let bots = state.node.list_bots(&me).await.map_err(rest)?;
    Ok(Json(json!({ "bots": bots })).into_response())
}

#[utoipa::path(delete, path = "/api/bots/{id}", tag = "bots",
    params(("id" = i64, Path, description = "The bot's user id.")),
    responses((status = 204, description = "Deleted, with its tokens.")),
    security(("bearer" = [])))]
pub async fn delete_bot(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let me = person(&state, &headers).await?;
    let id = id_of(&id)?;
    state.node.delete_bot(&me, UserId(id)).await.map_err(rest)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/api/bots/{id}/tokens", tag = "bots",
    params(("id" = i64, Path, description = "The bot's user id.")),
    request_body = TokenCreate,
    responses((status = 201, description = "The new token, shown this once.", body = TokenCreated)),
    security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let me = person(&state, req.headers()).await?;
    let id = id_of(&id)?;
    let t: NewToken = body(&state, req).await?;
    let made = state
        .node
        .create_api_token(&me, UserId(id), &t.name, t.rooms)
        .await
        .map_err(rest)?;
    let mut info = serde_json::to_value(TokenInfo::from(made.token)).unwrap_or_default();
    info["token"] = json!(made.secret);
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

#[utoipa::path(get, path = "/api/bots/{id}/tokens", tag = "bots",
    params(("id" = i64, Path, description = "The bot's user id.")),
    responses((status = 200, description = "The bot's tokens (never the tokens themselves).", body = TokenList)),
    security(("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let me = person(&state, &headers).await?;
    let id = id_of(&id)?;
    let tokens: Vec<TokenInfo> = state
        .node
        .list_api_tokens(&me, UserId(id))
        .await
        .map_err(rest)?
        .into_iter()
        .map(TokenInfo::from)
        .collect();
    Ok(Json(json!({ "tokens": tokens })).into_response())
}

#[utoipa::path(delete, path = "/api/bots/{id}/tokens/{tid}", tag = "bots",
    params(("id" = i64, Path, description = "The bot's user id."),
           ("tid" = i64, Path, description = "The token's id.")),
    responses((status = 204, description = "Revoked: its next use is refused (401).")),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, tid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let me = person(&state, &headers).await?;
    let (id, tid) = (id_of(&id)?, id_of(&tid)?);
    state
        .node
        .revoke_api_token(&me, UserId(id), TokenId(tid))
        .await
        .map_err(rest)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/api/rooms", tag = "rooms",
    responses((status = 200, description = "The caller's rooms (a token's: those of its scope).", body = RoomList)),
    security(("bearer" = [])))]
pub async fn rooms(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = state
        .node
        .api_caller(bearer(&headers)?)
        .await
        .map_err(rest)?;
    let rooms = state.node.api_rooms(&caller).await.map_err(rest)?;
    Ok(Json(json!({ "rooms": rooms })).into_response())
}

#[utoipa::path(post, path = "/api/rooms/{id}/members", tag = "rooms",
    params(("id" = i64, Path, description = "The room's id.")),
    request_body = AddMember,
    responses((status = 200, description = "The bot is a member now: the room as the caller sees it.", body = RoomResult)),
    security(("bearer" = [])))]
pub async fn add_member(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let me = person(&state, req.headers()).await?;
    let id = id_of(&id)?;
    let m: NewMember = body(&state, req).await?;
    let room = state
        .node
        .add_bot_to_room(&me, RoomId(id), &m.user)
        .await
        .map_err(rest)?;
    Ok(Json(json!({ "room": room })).into_response())
}

#[utoipa::path(get, path = "/api/rooms/{id}/messages", tag = "rooms",
    params(("id" = i64, Path, description = "The room's id."), HistoryQuery),
    responses((status = 200, description = "A page of the room's history (as the `history` reply).", body = HistoryPage)),
    security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = state
        .node
        .api_caller(bearer(&headers)?)
        .await
        .map_err(rest)?;
    let id = id_of(&id)?;
    let Query(q) = query.map_err(|e| {
        ApiError::from(ChatError::invalid(format!(
            "bad query parameters: {}",
            e.body_text()
        )))
    })?;
    let page = state
        .node
        .api_history(
            &caller,
            HistoryArgs {
                room: RoomId(id),
                before: q.before,
                after: q.after,
                around: q.around,
                thread: q.thread,
                limit: q.limit,
                events: q.events,
            },
        )
        .await
        .map_err(rest)?;
    Ok(Json(page).into_response())
}

#[utoipa::path(post, path = "/api/rooms/{id}/messages", tag = "rooms",
    params(("id" = i64, Path, description = "The room's id.")),
    request_body = SendBody,
    responses(
        (status = 201, description = "Stored: the message.", body = SentSchema),
        (status = 200, description = "This `client_id` was stored before: the original message.", body = SentSchema)),
    security(("bearer" = [])))]
pub async fn send(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let caller = state
        .node
        .api_caller(bearer(req.headers())?)
        .await
        .map_err(rest)?;
    let id = id_of(&id)?;
    let m: NewMessage = body(&state, req).await?;
    let sent = state
        .node
        .api_send(
            &caller,
            SendArgs {
                room: RoomId(id),
                body: m.body,
                client_id: m.client_id,
                thread: m.thread,
                also_room: m.also_room,
                files: Vec::new(),
            },
        )
        .await
        .map_err(rest)?;
    let status = if sent.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(sent)).into_response())
}

#[utoipa::path(post, path = "/api/rooms/{id}/webhooks", tag = "webhooks",
    params(("id" = i64, Path, description = "The room's id.")),
    request_body = HookCreate,
    responses((status = 201, description = "The new webhook; its URL is shown this once.", body = HookCreated)),
    security(("bearer" = [])))]
pub async fn create_hook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let me = person(&state, req.headers()).await?;
    let id = id_of(&id)?;
    let h: NewHook = body(&state, req).await?;
    let made = state
        .node
        .create_webhook(&me, RoomId(id), &h.name)
        .await
        .map_err(rest)?;
    let mut info = serde_json::to_value(HookInfo::from(made.token)).unwrap_or_default();
    info["url"] = json!(format!("/hooks/{}", made.secret));
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

#[utoipa::path(get, path = "/api/rooms/{id}/webhooks", tag = "webhooks",
    params(("id" = i64, Path, description = "The room's id.")),
    responses((status = 200, description = "The room's webhooks (never their URLs).", body = HookList)),
    security(("bearer" = [])))]
pub async fn list_hooks(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let me = person(&state, &headers).await?;
    let id = id_of(&id)?;
    let hooks: Vec<HookInfo> = state
        .node
        .list_webhooks(&me, RoomId(id))
        .await
        .map_err(rest)?
        .into_iter()
        .map(HookInfo::from)
        .collect();
    Ok(Json(json!({ "webhooks": hooks })).into_response())
}

#[utoipa::path(delete, path = "/api/rooms/{id}/webhooks/{hid}", tag = "webhooks",
    params(("id" = i64, Path, description = "The room's id."),
           ("hid" = i64, Path, description = "The webhook's id.")),
    responses((status = 204, description = "Deleted, with its bot (its messages stay).")),
    security(("bearer" = [])))]
pub async fn delete_hook(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, hid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let me = person(&state, &headers).await?;
    let (id, hid) = (id_of(&id)?, id_of(&hid)?);
    state
        .node
        .delete_webhook(&me, RoomId(id), TokenId(hid))
        .await
        .map_err(rest)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A webhook post: Slack's `{"text": ...}` (`username` and other fields are ignored).
#[derive(Deserialize)]
struct HookPost {
    text: String,
    #[serde(default)]
    client_id: Option<String>,
}

/// Slack's form-encoded variant: `payload=<the JSON>`.
#[derive(Deserialize)]
struct HookForm {
    payload: String,
}

/// Reads a webhook body: JSON, or a form whose `payload` is the JSON.
async fn hook_body(state: &AppState, req: Request) -> Result<HookPost, ApiError> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::from(ChatError::new(
                ErrorCode::UnsupportedMediaType,
                "send JSON (`Content-Type: application/json`) or a form with `payload`",
            )));
        }
        return body(state, req).await;
    }
    // Within `http_body_timeout`, as the JSON bodies are (`api::body`).
    let read = axum::Form::<HookForm>::from_request(req, &());
    let axum::Form(f) = tokio::time::timeout(state.config.http_body_timeout, read)
        .await
        .map_err(|_| {
            ApiError::from(ChatError::new(
                ErrorCode::RequestTimeout,
                "the request body did not arrive in time",
            ))
        })?
        .map_err(|e| ApiError::from(ChatError::invalid(format!("bad form: {}", e.body_text()))))?;
    serde_json::from_str(&f.payload)
        .map_err(|e| ApiError::from(ChatError::invalid(format!("bad `payload` JSON: {e}"))))
}

#[utoipa::path(post, path = "/hooks/{secret}", tag = "webhooks",
    params(("secret" = String, Path, description = "The webhook's secret, from its URL.")),
    request_body(content = HookBody, description = "Slack-compatible: `{\"text\": ...}` as JSON, or form-encoded `payload=<that JSON>`.",
        content_type = "application/json"),
    responses(
        (status = 201, description = "Posted: the message.", body = SentSchema),
        (status = 200, description = "This `client_id` (or `Idempotency-Key`) was posted before: the original message.", body = SentSchema)))]
pub async fn hook(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let post = hook_body(&state, req).await?;
    let sent = state
        .node
        .hook_post(&secret, post.text, post.client_id.or(key))
        .await
        .map_err(rest)?;
    let status = if sent.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(sent)).into_response())
}
