//! Sessions end to end over HTTP and `/ws` (docs/protocol.md section 1): the session list
//! with device labels and `current`, revoking one, signing out everywhere, password change,
//! sliding expiry and guest expiry. Revoked sessions' open sockets close with 4003. Expiry
//! is driven by a `Clock` the test moves forward, never by waiting out a TTL.

use natter_core::Clock;
use natter_testkit::*;
use serde_json::{json, Value};
use std::time::Duration;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const DAY: Duration = Duration::from_secs(86_400);

/// A small HTTP client for one server.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(server: &TestServer) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: server.http(""),
        }
    }

    /// Sends a request with an optional token, User-Agent and JSON body; (status, body).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        agent: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(agent) = agent {
            req = req.header("user-agent", agent);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("a JSON body")
        };
        (status, body)
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None, None)
            .await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(token), None, Some(body))
            .await
    }

    async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, Some(token), None, None)
            .await
    }

    /// Signs `name` in with the test password from `agent`; the token.
    async fn login(&self, name: &str, password: &str, agent: Option<&str>) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/login",
                None,
                agent,
                Some(json!({"username": name, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "login {name}: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// Registers a new user from `agent`; (token, name).
    async fn register(&self, prefix: &str, agent: Option<&str>) -> (String, String) {
        let name = unique(prefix);
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/register",
                None,
                agent,
                Some(json!({"username": name, "password": "correct horse"})),
            )
            .await;
        assert_eq!(status, 201, "register {name}: {body}");
        (body["token"].as_str().expect("token").to_string(), name)
    }

    /// Whether `token` still signs in (`GET /api/me`), asserting the only other answer is 401.
    async fn works(&self, token: &str) -> bool {
        let (status, body) = self.get("/api/me", token).await;
        match status {
            200 => true,
            401 => {
                assert_eq!(body["error"]["code"], "unauthenticated", "{body}");
                false
            }
            other => panic!("GET /api/me answered {other}: {body}"),
        }
    }

    async fn sessions(&self, token: &str) -> Vec<Value> {
        let (status, body) = self.get("/api/sessions", token).await;
        assert_eq!(status, 200, "{body}");
        body["sessions"].as_array().expect("sessions").clone()
    }
}

/// The listed session that is (or is not) the caller's.
fn find(sessions: &[Value], current: bool) -> Value {
    sessions
        .iter()
        .find(|s| s["current"] == current)
        .cloned()
        .expect("session")
}

/// Waits until `client`'s socket still answers a `ping` (it was not closed).
async fn still_open(client: &mut Client) {
    client.ok("ping", json!({})).await;
}

#[tokio::test]
async fn sessions_are_listed_with_labels_and_the_callers_marked_current() {
    let server = TestServer::start().await;
    let api = Api::new(&server);
    let (first, name) = api.register("ses", Some(FIREFOX)).await;
    let second = api.login(&name, "correct horse", Some("curl/8.5.0")).await;
    let (_, other) = api.register("other", None).await;
    api.login(&other, "correct horse", None).await;

    let (status, body) = api.get("/api/sessions", &first).await;
    assert_eq!(status, 200);
    let text = body.to_string();
    assert!(
        !text.contains(&first) && !text.contains(&second),
        "tokens are never listed: {text}"
    );
    let sessions = body["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2, "only the caller's own sessions: {text}");
    assert_eq!(sessions[0]["label"], "curl/8.5.0", "newest first: {text}");
    assert_eq!(sessions[0]["current"], false);
    assert_eq!(sessions[1]["label"], "Firefox on Linux");
    assert_eq!(sessions[1]["current"], true);
    for s in sessions {
        let id = s["id"].as_str().expect("id");
        assert_eq!(id.len(), 32, "{s}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{s}");
        let created = s["created_at"].as_i64().expect("created_at");
        assert!(created > 1_700_000_000_000, "{s}");
        assert!(s["last_used_at"].as_i64().expect("last_used_at") >= created);
    }
    // From the other session, the other one is current.
    let seen = api.sessions(&second).await;
    assert_eq!(find(&seen, true)["label"], "curl/8.5.0");

    let (status, body) = api
        .call(reqwest::Method::GET, "/api/sessions", None, None, None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
}

#[tokio::test]
async fn revoking_a_session_closes_its_socket_and_its_token_stops_working() {
    let server = TestServer::start().await;
    let api = Api::new(&server);
    let (mine, name) = api.register("rev", None).await;
    let phone = api.login(&name, "correct horse", Some("phone")).await;
    let mut mine_live = Client::connect(server.addr, &mine, None).await;
    let mut phone_live = Client::connect(server.addr, &phone, None).await;

    let phone_id = find(&api.sessions(&mine).await, false)["id"]
        .as_str()
        .expect("id")
        .to_string();
    // Someone else cannot revoke it: they have no session with that id.
    let (stranger, _) = api.register("stranger", None).await;
    let (status, body) = api
        .delete(&format!("/api/sessions/{phone_id}"), &stranger)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    assert!(api.works(&phone).await);

    let (status, _) = api
        .delete(&format!("/api/sessions/{phone_id}"), &mine)
        .await;
    assert_eq!(status, 204);
    assert_eq!(phone_live.closed().await, Some(4003));
    assert!(!api.works(&phone).await, "a revoked token no longer works");
    let err = Client::try_connect(server.addr, &phone, None, true)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.0, "unauthenticated");
    still_open(&mut mine_live).await;
    assert!(api.works(&mine).await);
    assert_eq!(api.sessions(&mine).await.len(), 1);
    let (status, _) = api
        .delete(&format!("/api/sessions/{phone_id}"), &mine)
        .await;
    assert_eq!(status, 404, "gone already");
}

#[tokio::test]
async fn signing_out_everywhere_revokes_every_session_and_closes_every_socket() {
    let server = TestServer::start().await;
    let api = Api::new(&server);
    let (a, name) = api.register("all", None).await;
    let b = api.login(&name, "correct horse", None).await;
    let (other, _) = api.register("bystander", None).await;
    let mut a_live = Client::connect(server.addr, &a, None).await;
    let mut b_live = Client::connect(server.addr, &b, None).await;
    let mut other_live = Client::connect(server.addr, &other, None).await;

    let (status, _) = api.post("/api/logout-all", &a, json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(a_live.closed().await, Some(4003));
    assert_eq!(b_live.closed().await, Some(4003));
    assert!(!api.works(&a).await);
    assert!(!api.works(&b).await);
    still_open(&mut other_live).await;
    assert!(api.works(&other).await, "other users are untouched");

    // `DELETE /api/sessions` does the same.
    let c = api.login(&name, "correct horse", None).await;
    let d = api.login(&name, "correct horse", None).await;
    let (status, _) = api.delete("/api/sessions", &d).await;
    assert_eq!(status, 204);
    assert!(!api.works(&c).await);
    assert!(!api.works(&d).await);
}

#[tokio::test]
async fn a_password_change_needs_the_old_one_and_revokes_the_other_sessions() {
    let server = TestServer::start_with(|s| s.allow_guests = Some(true)).await;
    let api = Api::new(&server);
    let (mine, name) = api.register("pw", None).await;
    let other = api.login(&name, "correct horse", None).await;
    let mut mine_live = Client::connect(server.addr, &mine, None).await;
    let mut other_live = Client::connect(server.addr, &other, None).await;

    let change = |old: &str, new: &str| json!({"old_password": old, "new_password": new});
    let (status, body) = api
        .post(
            "/api/password",
            &mine,
            change("wrong horse", "battery staple"),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
    let (status, body) = api
        .post("/api/password", &mine, change("correct horse", "short"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("weak_password"))
    );
    let (status, body) = api
        .post("/api/password", &mine, json!({"old_password": "x"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    still_open(&mut other_live).await;
    assert!(api.works(&other).await, "a refused change revokes nothing");

    let (status, _) = api
        .post(
            "/api/password",
            &mine,
            change("correct horse", "battery staple"),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(other_live.closed().await, Some(4003));
    assert!(!api.works(&other).await);
    still_open(&mut mine_live).await;
    assert!(api.works(&mine).await, "the caller's session stays");
    assert_eq!(api.sessions(&mine).await.len(), 1);
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            "/api/login",
            None,
            None,
            Some(json!({"username": name, "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, 401, "the old password no longer signs in");
    api.login(&name, "battery staple", None).await;

    // A guest has no password to change.
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/guest",
            None,
            None,
            Some(json!({"nickname": unique("pwg")})),
        )
        .await;
    assert_eq!(status, 201);
    let guest = body["token"].as_str().expect("token");
    let (status, body) = api
        .post("/api/password", guest, change("", "battery staple"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
}

#[tokio::test]
async fn sessions_expire_after_the_ttl_without_use_and_each_use_extends_them() {
    let clock = Clock::system();
    let server = TestServer::start_with_clock(clock.clone(), |s| {
        s.session_ttl_days = Some(30);
        s.session_sweep_ms = Some(100);
    })
    .await;
    let api = Api::new(&server);
    let (used, name) = api.register("slide", None).await;
    let unused = api.login(&name, "correct horse", None).await;
    let connected = api.login(&name, "correct horse", None).await;
    let mut live = Client::connect(server.addr, &connected, None).await;

    clock.advance(20 * DAY);
    assert!(api.works(&used).await);
    let listed = api.sessions(&used).await;
    let now = clock.now_millis();
    assert!(
        find(&listed, true)["last_used_at"].as_i64().expect("t") > now - 60_000,
        "a use after more than a minute is recorded: {listed:?}"
    );
    // An open connection counts as use: the sweep records it.
    eventually("the sweep records the open connection's use", async || {
        api.sessions(&used).await.iter().any(|s| {
            s["last_used_at"].as_i64().unwrap_or(0) > now - 60_000 && s["current"] == false
        })
    })
    .await;

    clock.advance(20 * DAY);
    assert!(api.works(&used).await, "used 20 days ago: still valid");
    assert!(!api.works(&unused).await, "unused for 40 days: expired");
    still_open(&mut live).await;
    assert!(api.works(&connected).await, "kept alive by its connection");
    drop(live);

    clock.advance(31 * DAY);
    assert!(!api.works(&used).await, "unused for 31 days: expired");
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/login",
            None,
            None,
            Some(json!({"username": name, "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, 200, "signing in again works: {body}");
}

#[tokio::test]
async fn an_inactive_guest_expires_and_their_name_is_free_again() {
    let clock = Clock::system();
    let server = TestServer::start_with_clock(clock.clone(), |s| {
        s.allow_guests = Some(true);
        s.guest_ttl_hours = Some(24);
        s.session_sweep_ms = Some(100);
    })
    .await;
    let api = Api::new(&server);
    let guest_as = |nickname: String| {
        let api = &api;
        async move {
            api.call(
                reqwest::Method::POST,
                "/api/guest",
                None,
                None,
                Some(json!({"nickname": nickname})),
            )
            .await
        }
    };
    let nickname = unique("gst");
    let (status, body) = guest_as(nickname.clone()).await;
    assert_eq!(status, 201);
    let token = body["token"].as_str().expect("token").to_string();
    let guest_id = body["user"]["id"].as_i64().expect("id");

    let mut ana = server.user("ana").await;
    let general = general(&ana);
    let mut guest = Client::connect(server.addr, &token, None).await;
    let said = guest.say(general, "hello from a guest").await;
    drop(guest);
    ana.event_where("presence", |p| {
        p["user"]["id"] == guest_id && p["online"] == false
    })
    .await;

    clock.advance(Duration::from_secs(23 * 3600));
    let (status, body) = guest_as(nickname.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("name_taken"))
    );

    clock.advance(Duration::from_secs(2 * 3600));
    let left = ana
        .event_where("member_left", |e| e["user"]["id"] == guest_id)
        .await;
    assert_eq!(left["room"], general);
    assert!(!api.works(&token).await, "the guest's session is gone");
    let (status, body) = guest_as(nickname.clone()).await;
    assert_eq!(status, 201, "the name is free again: {body}");
    assert_ne!(body["user"]["id"].as_i64(), Some(guest_id), "a new account");

    // The old guest's message keeps its sender.
    let history = ana
        .ok("history", json!({"room": general, "limit": 100}))
        .await;
    let kept = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["id"] == said["id"])
        .cloned()
        .expect("the guest's message stays");
    assert_eq!(kept["sender"], said["sender"]);
}

#[tokio::test]
async fn a_use_is_written_at_most_once_a_minute() {
    let clock = Clock::system();
    let server = TestServer::start_with_clock(clock.clone(), |_| {}).await;
    let api = Api::new(&server);
    let (token, _) = api.register("touch", None).await;
    let last_used = async || {
        find(&api.sessions(&token).await, true)["last_used_at"]
            .as_i64()
            .expect("last_used_at")
    };
    let created = last_used().await;
    clock.advance(Duration::from_secs(50));
    assert!(api.works(&token).await);
    assert_eq!(
        last_used().await,
        created,
        "a use within a minute of the recorded one is not written"
    );
    clock.advance(Duration::from_secs(20));
    assert!(api.works(&token).await);
    assert!(
        last_used().await >= created + 70_000,
        "a use more than a minute later is"
    );
}
