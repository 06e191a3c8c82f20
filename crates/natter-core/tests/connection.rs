//! The connection state machine every transport drives (`Connection`): what the auth phase
//! makes of each kind of first frame, and the keepalive close policy. The transports' own
//! tests (natter-server's wire, bad_input and socketio suites) check the same over sockets.

use natter_core::protocol::{AuthArgs, Request, RoomCreateArgs};
use natter_core::*;
use std::sync::Arc;
use std::time::Duration;

async fn node_and_token() -> (Arc<Node>, String) {
    let config = CoreConfig {
        keepalive: Duration::from_secs(30),
        ..CoreConfig::default()
    };
    let node = Node::start(
        Arc::new(MemoryStore::new()),
        Arc::new(LocalBroker::new()),
        config,
    )
    .await
    .expect("node");
    let signed = node
        .register(
            std::net::Ipv4Addr::LOCALHOST.into(),
            "ana",
            "correct horse",
            "test",
        )
        .await
        .expect("register");
    (node, signed.token)
}

fn auth(token: &str) -> Request {
    Request::Auth(AuthArgs {
        token: token.into(),
        resume: Default::default(),
        presence: true,
    })
}

#[tokio::test]
async fn a_good_auth_authenticates() {
    let (node, token) = node_and_token().await;
    let mut conn = Connection::new(node);
    match conn.before_auth(Ok(auth(&token))).await {
        AuthStep::Done(reply, _outbox) => assert_eq!(reply.user.name, "ana"),
        AuthStep::Refused { error, .. } => panic!("refused: {error:?}"),
    }
    assert!(conn.is_authenticated());
}

#[tokio::test]
async fn a_bad_token_is_refused_and_closes_with_4001() {
    let (node, _) = node_and_token().await;
    let mut conn = Connection::new(node);
    match conn.before_auth(Ok(auth("not-a-token"))).await {
        AuthStep::Refused { error, close } => {
            assert_eq!(error.code, ErrorCode::Unauthenticated);
            assert_eq!(close, close::UNAUTHENTICATED);
        }
        AuthStep::Done(..) => panic!("a bad token authenticated"),
    }
    assert!(!conn.is_authenticated());
}

#[tokio::test]
async fn a_request_before_auth_is_refused_and_closes_with_4001() {
    let (node, _) = node_and_token().await;
    let mut conn = Connection::new(node);
    match conn.before_auth(Ok(Request::Ping)).await {
        AuthStep::Refused { error, close } => {
            assert_eq!(error.code, ErrorCode::Unauthenticated);
            assert_eq!(close, close::UNAUTHENTICATED);
        }
        AuthStep::Done(..) => panic!("ping authenticated"),
    }
}

/// Before authentication nothing but a valid `auth` is answered and kept: a frame that is
/// no request (not JSON, bad JSON, too deep, binary) is refused and closes with 4001 too.
#[tokio::test]
async fn a_frame_that_is_no_request_is_refused_and_closes_with_4001() {
    let (node, _) = node_and_token().await;
    for code in [
        ErrorCode::BadJson,
        ErrorCode::InvalidRequest,
        ErrorCode::UnknownType,
        ErrorCode::BinaryUnsupported,
    ] {
        let mut conn = Connection::new(node.clone());
        match conn
            .before_auth(Err(ChatError::new(code, "not a request")))
            .await
        {
            AuthStep::Refused { error, close } => {
                assert_eq!(error.code, code);
                assert_eq!(close, close::UNAUTHENTICATED, "{code:?}");
            }
            AuthStep::Done(..) => panic!("{code:?} authenticated"),
        }
        assert!(!conn.is_authenticated());
    }
}

/// A server that begins to stop while a connection authenticates still closes it (1001).
#[tokio::test]
async fn an_auth_during_shutdown_is_closed_with_1001() {
    let (node, token) = node_and_token().await;
    let mut waiting = Connection::new(node.clone());
    let shutdown = waiting.shutdown();
    node.close_all(close::GOING_AWAY);
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("the shutdown signal reaches connections in their auth phase");
    let mut outbox = match waiting.before_auth(Ok(auth(&token))).await {
        AuthStep::Done(_, outbox) => outbox,
        AuthStep::Refused { error, .. } => panic!("refused: {error:?}"),
    };
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let OutboxItem::Close(code) = outbox.next().await {
                return code;
            }
        }
    })
    .await
    .expect("the late session is closed");
    assert_eq!(closed, close::GOING_AWAY);
}

#[tokio::test]
async fn a_second_auth_is_already_authenticated() {
    let (node, token) = node_and_token().await;
    let mut conn = Connection::new(node);
    assert!(matches!(
        conn.before_auth(Ok(auth(&token))).await,
        AuthStep::Done(..)
    ));
    let e = conn.request(auth(&token)).await.expect_err("second auth");
    assert_eq!(e.code, ErrorCode::AlreadyAuthenticated);
}

#[tokio::test]
async fn requests_need_auth_first() {
    let (node, _) = node_and_token().await;
    let mut conn = Connection::new(node);
    let e = conn
        .request(Request::Ping)
        .await
        .expect_err("not authenticated");
    assert_eq!(e.code, ErrorCode::Unauthenticated);
}

#[tokio::test]
async fn the_auth_timeout_is_the_configured_one() {
    let (node, _) = node_and_token().await;
    assert_eq!(
        Connection::new(node).auth_timeout(),
        CoreConfig::default().auth_timeout
    );
}

#[tokio::test]
async fn a_client_silent_for_two_and_a_half_keepalives_is_closed() {
    let (node, _) = node_and_token().await;
    let conn = Connection::new(node);
    assert_eq!(conn.keepalive(Duration::from_secs(75)), KeepaliveStep::Ping);
    assert_eq!(
        conn.keepalive(Duration::from_millis(75_001)),
        KeepaliveStep::Close(close::GOING_AWAY)
    );
}

/// `room_create_per_minute` is a bucket of that many creations refilled over a minute: with
/// 3, a fourth creation waits 20 s (`retry_after_ms`), and is accepted once they have passed.
#[tokio::test(start_paused = true)]
async fn room_creations_refill_at_the_configured_rate() {
    let config = CoreConfig {
        room_create_per_minute: 3,
        ..CoreConfig::default()
    };
    let node = Node::start(
        Arc::new(MemoryStore::new()),
        Arc::new(LocalBroker::new()),
        config,
    )
    .await
    .expect("node");
    let signed = node
        .register(
            std::net::Ipv4Addr::LOCALHOST.into(),
            "ana",
            "correct horse",
            "test",
        )
        .await
        .expect("register");
    let mut conn = Connection::new(node);
    assert!(matches!(
        conn.before_auth(Ok(auth(&signed.token))).await,
        AuthStep::Done(..)
    ));
    let create = |name: &str| {
        Request::RoomCreate(RoomCreateArgs {
            name: name.into(),
            private: false,
        })
    };
    for i in 0..3 {
        conn.request(create(&format!("r{i}")))
            .await
            .expect("within the bucket");
    }
    let e = conn.request(create("r3")).await.expect_err("bucket empty");
    assert_eq!(e.code, ErrorCode::RateLimited);
    let wait = e.retry_after_ms.expect("retry_after_ms");
    assert!((19_999..=20_001).contains(&wait), "{wait}");
    tokio::time::advance(Duration::from_millis(19_800)).await;
    let e = conn.request(create("r3")).await.expect_err("not yet");
    assert_eq!(e.code, ErrorCode::RateLimited);
    tokio::time::advance(Duration::from_millis(400)).await;
    conn.request(create("r3")).await.expect("refilled");
}
