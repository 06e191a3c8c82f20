//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/openapi.json` and built with
//! utoipa from the code: the bots' handlers (`super::bots`) carry their own `#[utoipa::path]`;
//! the accounts, search and file endpoints are described here, next to the schemas, so their
//! handlers' files stay as they were. [`ApiDoc`] lists every operation; the route table in
//! `super` lists every route, and a test (`tests/openapi.rs`) checks the two agree, path by
//! path and method by method.
//!
//! Every operation also documents the API's error responses (`{"error": {"code",
//! "message"}}`, [`ERRORS`]), added by [`Conventions`], so a client (or schemathesis) may
//! expect exactly those statuses. The schemas here are the documented shape of each body:
//! they name the fields a client may rely on; bodies may carry more (docs/protocol.md).

// Schema and parameter types exist only to be described; they are never built.
#![allow(dead_code)]

use super::bots;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// The error statuses every operation documents, with what they mean.
pub const ERRORS: &[(&str, &str)] = &[
    ("400", "The request is invalid (`invalid_request` and the other codes of docs/protocol.md section 8)."),
    ("401", "No valid token (`unauthenticated`), or wrong credentials (`invalid_credentials`)."),
    ("403", "Not allowed (`forbidden`, `not_member`, `banned`, `muted`, `room_archived`, `account_deactivated`, `guests_disabled`)."),
    ("404", "No such thing, or hidden from the caller (`not_found`, `unknown_room`, `unknown_user`, `unknown_message`)."),
    ("405", "The path does not take that method (`method_not_allowed`)."),
    ("408", "The body did not arrive in time (`request_timeout`)."),
    ("409", "A name is taken or a limit reached (`name_taken`, `limit_reached`)."),
    ("413", "The body or file is too large (`invalid_request`, `file_too_large`, `quota_exceeded`)."),
    ("415", "The body is not JSON (`unsupported_media_type`)."),
    ("429", "Too many requests (`rate_limited`; `retry_after_ms` and `Retry-After` say when to retry)."),
];

/// Adds the bearer security scheme and the error responses ([`ERRORS`]) to every operation.
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token (`/api/login`) or a bot's API token (`nbt_...`).",
                    ))
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                for (status, description) in ERRORS {
                    op.responses
                        .responses
                        .entry((*status).to_string())
                        .or_insert_with(|| error_response(description));
                }
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .into()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Natter HTTP API",
        description = "Accounts, search, files, and the API for scripts and bots (docs/api.md). \
                       The chat itself speaks WebSocket at /ws (docs/protocol.md).",
        license(name = "MIT")
    ),
    paths(
        health, register, login, guest, logout, me, config, search, sessions, logout_all_sessions,
        revoke_session, logout_all, change_password, delete_account, export, upload, download_key,
        download, thumbnail, openapi_json,
        bots::create_bot, bots::list_bots, bots::delete_bot, bots::create_token,
        bots::list_tokens, bots::revoke_token, bots::rooms, bots::add_member, bots::history,
        bots::send, bots::create_hook, bots::list_hooks, bots::delete_hook, bots::hook,
    ),
    components(schemas(ErrorSchema, ErrorDetail, UserSchema, MessageSchema, RoomSchema)),
    modifiers(&Conventions),
    tags(
        (name = "accounts", description = "Sign-up, sign-in, sessions, the account itself."),
        (name = "files", description = "Uploads and downloads."),
        (name = "bots", description = "Bot accounts and their API tokens (session token only)."),
        (name = "rooms", description = "Rooms, history and posting, as a person or a bot."),
        (name = "webhooks", description = "Rooms' incoming webhooks (Slack-compatible)."),
        (name = "server", description = "Health and this document."),
    )
)]
pub struct ApiDoc;

/// The document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

// ----- schemas --------------------------------------------------------------------------

/// `{"error": {"code", "message"}}`.
#[derive(ToSchema)]
#[schema(as = Error)]
pub struct ErrorSchema {
    error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// One of docs/protocol.md section 8.
    code: String,
    message: String,
    /// With `rate_limited`: when to retry.
    retry_after_ms: Option<u64>,
}

/// A user as others see them.
#[derive(ToSchema)]
#[schema(as = User)]
pub struct UserSchema {
    id: i64,
    name: String,
    guest: bool,
    /// Present, and true, for a bot account only.
    bot: Option<bool>,
}

/// A message (docs/protocol.md section 3); more fields may be present.
#[derive(ToSchema)]
#[schema(as = Message)]
pub struct MessageSchema {
    id: i64,
    room: i64,
    seq: i64,
    sender: UserSchema,
    body: String,
    ts: i64,
    client_id: String,
}

/// A room as its member sees it (docs/protocol.md section 2); more fields may be present.
#[derive(ToSchema)]
#[schema(as = Room)]
pub struct RoomSchema {
    id: i64,
    name: String,
    /// `public`, `private`, `dm` or `group`.
    kind: String,
    member_count: u32,
    last_seq: i64,
    joined: bool,
}

#[derive(ToSchema)]
pub struct SignedIn {
    token: String,
    user: UserSchema,
}

#[derive(ToSchema)]
pub struct Credentials {
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,32}$")]
    username: String,
    #[schema(min_length = 8, max_length = 256)]
    password: String,
}

#[derive(ToSchema)]
pub struct GuestBody {
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,32}$")]
    nickname: String,
}

#[derive(ToSchema)]
pub struct PasswordChange {
    old_password: String,
    new_password: String,
}

#[derive(ToSchema)]
pub struct AccountDeletion {
    /// Required for a registered account.
    password: Option<String>,
}

#[derive(ToSchema)]
pub struct Me {
    user: UserSchema,
}

#[derive(ToSchema)]
pub struct Health {
    /// `ok`, or `shutting_down` (503).
    status: String,
}

#[derive(ToSchema)]
pub struct PublicConfig {
    allow_guests: bool,
    max_message_chars: u64,
    max_frame_bytes: u64,
    rate_per_sec: f64,
    rate_burst: f64,
    max_upload_bytes: u64,
    upload_quota_bytes: u64,
}

#[derive(ToSchema)]
pub struct SessionSchema {
    id: String,
    label: String,
    created_at: i64,
    last_used_at: i64,
    current: bool,
}

#[derive(ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionSchema>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words and phrases to find (docs/protocol.md section 4).
    query: String,
    /// Search public rooms one is not in too.
    public: Option<bool>,
    /// `newest` or `relevance`.
    order: Option<String>,
    limit: Option<u32>,
    /// The `next` of the page before.
    cursor: Option<String>,
}

/// One search hit: the message, and its room.
#[derive(ToSchema)]
pub struct SearchHit {
    message: MessageSchema,
}

#[derive(ToSchema)]
pub struct SearchPage {
    results: Vec<SearchHit>,
    /// The cursor of the next page; null on the last.
    next: Option<String>,
}

/// The account's profile, rooms and messages.
#[derive(ToSchema)]
pub struct ExportSchema {
    exported_at: i64,
    user: UserSchema,
    rooms: Vec<RoomSchema>,
    messages: Vec<MessageSchema>,
}

#[derive(ToSchema)]
pub struct FileInfoSchema {
    id: String,
    name: String,
    size: u64,
    #[schema(rename = "type")]
    kind: String,
    url: String,
}

#[derive(ToSchema)]
pub struct Uploaded {
    file: FileInfoSchema,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name.
    name: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyQuery {
    /// A download key (`GET /api/files/key`), for `<img src>` where no header can be sent.
    k: Option<String>,
}

#[derive(ToSchema)]
pub struct DownloadKey {
    key: String,
    expires: i64,
}

// ----- bots, rooms, webhooks ------------------------------------------------------------

#[derive(ToSchema)]
pub struct BotCreate {
    /// The bot's user name (the username rules).
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,32}$")]
    name: String,
    display_name: Option<String>,
}

#[derive(ToSchema)]
#[schema(as = Bot)]
pub struct BotInfo {
    /// Its user id.
    id: i64,
    name: String,
    display_name: String,
    owner: i64,
    created_at: i64,
}

#[derive(ToSchema)]
pub struct BotSchema {
    bot: BotInfo,
}

#[derive(ToSchema)]
pub struct BotList {
    bots: Vec<BotInfo>,
}

#[derive(ToSchema)]
pub struct TokenCreate {
    name: String,
    /// The rooms it may act in; absent or empty: every room the bot is in.
    rooms: Option<Vec<i64>>,
}

#[derive(ToSchema)]
#[schema(as = Token)]
pub struct TokenInfo {
    id: i64,
    name: String,
    rooms: Vec<i64>,
    created_at: i64,
    last_used_at: Option<i64>,
}

#[derive(ToSchema)]
pub struct TokenCreated {
    id: i64,
    name: String,
    rooms: Vec<i64>,
    created_at: i64,
    /// `nbt_...`: shown this once.
    token: String,
}

#[derive(ToSchema)]
pub struct TokenList {
    tokens: Vec<TokenInfo>,
}

#[derive(ToSchema)]
pub struct RoomList {
    rooms: Vec<RoomSchema>,
}

#[derive(ToSchema)]
pub struct AddMember {
    /// The bot's name.
    user: String,
}

#[derive(ToSchema)]
pub struct RoomResult {
    room: RoomSchema,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages before this seq.
    before: Option<i64>,
    /// Messages after this seq.
    after: Option<i64>,
    /// The page around this seq.
    around: Option<i64>,
    /// A thread's replies (its first message's seq).
    thread: Option<i64>,
    /// 1 to 100 (default 50).
    limit: Option<u32>,
    /// `true`: the room's room events (joins, leaves, moderation, settings) in the page too.
    events: Option<bool>,
}

#[derive(ToSchema)]
pub struct HistoryPage {
    /// In ascending `seq`.
    messages: Vec<MessageSchema>,
    has_more: bool,
    has_newer: Option<bool>,
    parent: Option<MessageSchema>,
}

#[derive(ToSchema)]
pub struct SendBody {
    body: String,
    /// 1 to 64 characters; a repeat returns the stored message.
    client_id: String,
    /// A thread reply to the message with this seq.
    thread: Option<i64>,
    also_room: Option<bool>,
}

#[derive(ToSchema)]
#[schema(as = Sent)]
pub struct SentSchema {
    message: MessageSchema,
    /// Whether this `client_id` was stored before.
    duplicate: bool,
}

#[derive(ToSchema)]
pub struct HookCreate {
    /// Shown as the webhook's bot's display name.
    name: String,
}

#[derive(ToSchema)]
#[schema(as = Webhook)]
pub struct HookInfo {
    id: i64,
    name: String,
    room: i64,
    /// The bot it posts as.
    bot: i64,
    created_at: i64,
    last_used_at: Option<i64>,
}

#[derive(ToSchema)]
pub struct HookCreated {
    id: i64,
    name: String,
    room: i64,
    bot: i64,
    created_at: i64,
    /// `/hooks/nwh_...`: shown this once.
    url: String,
}

#[derive(ToSchema)]
pub struct HookList {
    webhooks: Vec<HookInfo>,
}

#[derive(ToSchema)]
pub struct HookBody {
    text: String,
    /// Makes a retry return the stored message (as the `Idempotency-Key` header does).
    client_id: Option<String>,
    /// Ignored (Slack sends it).
    username: Option<String>,
}

// ----- the accounts, search and file endpoints (handlers in `super::api`, `super::files`) --

#[utoipa::path(get, path = "/healthz", tag = "server",
    responses((status = 200, description = "Serving.", body = Health),
              (status = 503, description = "Shutting down.", body = Health)))]
fn health() {}

#[utoipa::path(get, path = "/api/openapi.json", tag = "server",
    responses((status = 200, description = "This document (OpenAPI 3.1).", content_type = "application/json", body = Object)))]
fn openapi_json() {}

#[utoipa::path(post, path = "/api/register", tag = "accounts", request_body = Credentials,
    responses((status = 201, description = "Registered and signed in.", body = SignedIn)))]
fn register() {}

#[utoipa::path(post, path = "/api/login", tag = "accounts", request_body = Credentials,
    responses((status = 200, description = "Signed in.", body = SignedIn)))]
fn login() {}

#[utoipa::path(post, path = "/api/guest", tag = "accounts", request_body = GuestBody,
    responses((status = 201, description = "A guest, signed in.", body = SignedIn)))]
fn guest() {}

#[utoipa::path(post, path = "/api/logout", tag = "accounts",
    responses((status = 204, description = "The token is revoked.")),
    security(("bearer" = [])))]
fn logout() {}

#[utoipa::path(get, path = "/api/me", tag = "accounts",
    responses((status = 200, description = "Who the token belongs to.", body = Me)),
    security(("bearer" = [])))]
fn me() {}

#[utoipa::path(get, path = "/api/config", tag = "server",
    responses((status = 200, description = "What a client may want to know before signing in.", body = PublicConfig)))]
fn config() {}

#[utoipa::path(get, path = "/api/search", tag = "rooms", params(SearchQuery),
    responses((status = 200, description = "A page of results.", body = SearchPage)),
    security(("bearer" = [])))]
fn search() {}

#[utoipa::path(get, path = "/api/sessions", tag = "accounts",
    responses((status = 200, description = "The caller's sessions, newest first.", body = SessionList)),
    security(("bearer" = [])))]
fn sessions() {}

#[utoipa::path(delete, path = "/api/sessions", tag = "accounts",
    responses((status = 204, description = "Signed out everywhere.")),
    security(("bearer" = [])))]
fn logout_all_sessions() {}

#[utoipa::path(delete, path = "/api/sessions/{id}", tag = "accounts",
    params(("id" = String, Path, description = "A session's public id.")),
    responses((status = 204, description = "That session is revoked.")),
    security(("bearer" = [])))]
fn revoke_session() {}

#[utoipa::path(post, path = "/api/logout-all", tag = "accounts",
    responses((status = 204, description = "Signed out everywhere.")),
    security(("bearer" = [])))]
fn logout_all() {}

#[utoipa::path(post, path = "/api/password", tag = "accounts", request_body = PasswordChange,
    responses((status = 204, description = "Changed; the caller's other sessions are revoked.")),
    security(("bearer" = [])))]
fn change_password() {}

#[utoipa::path(delete, path = "/api/account", tag = "accounts", request_body = AccountDeletion,
    responses((status = 204, description = "The account is deleted.")),
    security(("bearer" = [])))]
fn delete_account() {}

#[utoipa::path(get, path = "/api/account/export", tag = "accounts",
    responses((status = 200, description = "The caller's data, as a download.", body = ExportSchema)),
    security(("bearer" = [])))]
fn export() {}

#[utoipa::path(post, path = "/api/files", tag = "files", params(UploadQuery),
    request_body(content = Vec<u8>, description = "The file's bytes, in any type.", content_type = "application/octet-stream"),
    responses((status = 201, description = "Stored.", body = Uploaded)),
    security(("bearer" = [])))]
fn upload() {}

#[utoipa::path(get, path = "/api/files/key", tag = "files",
    responses((status = 200, description = "A download key for this session.", body = DownloadKey)),
    security(("bearer" = [])))]
fn download_key() {}

#[utoipa::path(get, path = "/api/files/{id}", tag = "files",
    params(("id" = String, Path, description = "The file's id."), KeyQuery),
    responses((status = 200, description = "The file's bytes, in the type sniffed at upload.", content_type = "*/*", body = Vec<u8>)),
    security(("bearer" = [])))]
fn download() {}

#[utoipa::path(get, path = "/api/files/{id}/thumb", tag = "files",
    params(("id" = String, Path, description = "The file's id."), KeyQuery),
    responses((status = 200, description = "An image's thumbnail.", content_type = "image/*", body = Vec<u8>)),
    security(("bearer" = [])))]
fn thumbnail() {}
