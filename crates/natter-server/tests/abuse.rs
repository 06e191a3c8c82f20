//! Abuse from the open internet (issue 17): the account endpoints' limits (per address, per
//! username, sign-ups, guests; 429 with `Retry-After`), `X-Forwarded-For` only from trusted
//! proxies, a sign-in flood from many addresses that must not delay a real user, and the
//! HTTP timers (slowloris, idle keep-alive, slow bodies).
//!
//! Clients bind to distinct loopback source addresses (127.0.0.x) to be distinct clients.

use natter_testkit::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// An HTTP client whose connections come from 127.0.0.`x`.
fn client_from(x: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, x)))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

async fn post(client: &reqwest::Client, addr: SocketAddr, path: &str, body: Value) -> Answer {
    post_with(client, addr, path, body, None).await
}

/// A response's status, `Retry-After` and JSON body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

async fn post_with(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    body: Value,
    forwarded_for: Option<&str>,
) -> Answer {
    let mut req = client.post(format!("http://{addr}{path}")).json(&body);
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").to_string());
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

fn wrong_login(name: &str) -> Value {
    json!({"username": name, "password": "not the password"})
}

/// A refusal as docs/protocol.md section 1 says: 429, `Retry-After` in whole seconds, and
/// `rate_limited` with `retry_after_ms`.
fn assert_limited(a: &Answer) {
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{a:?}");
    let secs: u64 = a
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(secs >= 1, "{a:?}");
    assert_eq!(a.body["error"]["code"], "rate_limited", "{a:?}");
    let ms = a.body["error"]["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms");
    assert!(ms > 0 && ms.div_ceil(1000) == secs, "{a:?}");
    assert!(a.body["error"]["message"].is_string(), "{a:?}");
}

#[tokio::test]
async fn sign_in_is_limited_per_address() {
    let server = TestServer::start_with(|s| s.login_per_minute_per_address = Some(3)).await;
    let (one, two) = (client_from(2), client_from(3));
    for n in 0..3 {
        let a = post(
            &one,
            server.addr,
            "/api/login",
            wrong_login(&format!("u{n}")),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
    }
    let a = post(&one, server.addr, "/api/login", wrong_login("u9")).await;
    assert_limited(&a);
    // 3 a minute: the next one in about 20 s.
    assert!(
        a.body["error"]["retry_after_ms"].as_u64() > Some(15_000),
        "{a:?}"
    );
    // Another address is not affected.
    let a = post(&two, server.addr, "/api/login", wrong_login("u9")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
}

#[tokio::test]
async fn sign_in_is_limited_per_username_from_any_address() {
    let server = TestServer::start_with(|s| s.login_per_minute_per_user = Some(2)).await;
    let (_, user) = server.register("target").await;
    let name = user["name"].as_str().expect("name").to_string();
    for x in [2, 3] {
        let a = post(
            &client_from(x),
            server.addr,
            "/api/login",
            wrong_login(&name),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
    }
    // A third address, and another spelling of the same name: refused, even with the right
    // password (the guesser cannot tell).
    let right = json!({"username": name.to_uppercase(), "password": "correct horse"});
    assert_limited(&post(&client_from(4), server.addr, "/api/login", right).await);
    // Another account from that address is fine.
    let (_, other) = server.register("other").await;
    let right = json!({"username": other["name"], "password": "correct horse"});
    let a = post(&client_from(4), server.addr, "/api/login", right).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
}

#[tokio::test]
async fn sign_up_is_limited_per_address() {
    let server = TestServer::start_with(|s| s.register_per_hour_per_address = Some(2)).await;
    let new = || json!({"username": unique("reg"), "password": "correct horse"});
    let one = client_from(2);
    for _ in 0..2 {
        let a = post(&one, server.addr, "/api/register", new()).await;
        assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    }
    let a = post(&one, server.addr, "/api/register", new()).await;
    assert_limited(&a);
    // 2 an hour: the next one in about half an hour.
    assert!(a.retry_after.as_deref().and_then(|s| s.parse::<u64>().ok()) > Some(1500));
    let a = post(&client_from(3), server.addr, "/api/register", new()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
}

#[tokio::test]
async fn guests_are_limited_per_address() {
    let server = TestServer::start_with(|s| {
        s.allow_guests = Some(true);
        s.guest_per_hour_per_address = Some(2);
    })
    .await;
    let guest = || json!({"nickname": unique("g")});
    let one = client_from(2);
    for _ in 0..2 {
        let a = post(&one, server.addr, "/api/guest", guest()).await;
        assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    }
    assert_limited(&post(&one, server.addr, "/api/guest", guest()).await);
    let a = post(&client_from(3), server.addr, "/api/guest", guest()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_peer() {
    let server = TestServer::start_with(|s| {
        s.login_per_minute_per_address = Some(1);
        s.trusted_proxies = Some("127.0.0.2, 10.0.0.0/8".into());
    })
    .await;
    let (proxy, stranger) = (client_from(2), client_from(3));
    let login = |c, xff| post_with(c, server.addr, "/api/login", wrong_login("nobody"), xff);
    // Through the trusted proxy, each forwarded client has its own bucket...
    let a = login(&proxy, Some("203.0.113.1")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
    let a = login(&proxy, Some("198.51.100.7, 203.0.113.2, 10.1.2.3")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
    // ...the right-most untrusted hop is the client, whatever it claims further left.
    assert_limited(&login(&proxy, Some("192.0.2.99, 203.0.113.1")).await);
    // From a peer that is not trusted, the header is ignored: its own address is the key.
    let a = login(&stranger, Some("203.0.113.3")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
    assert_limited(&login(&stranger, Some("203.0.113.4")).await);
}

/// The server's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Starts the real `natter` binary on port 0 with `args`; returns it and its address.
async fn spawn_binary(dir: &std::path::Path, args: &[&str]) -> (tokio::process::Child, SocketAddr) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["--listen", "127.0.0.1:0", "--log", "warn", "--data-dir"])
        .arg(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn natter");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::time::timeout(WAIT, BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("prints its address in time")
        .expect("read");
    let addr = line
        .trim()
        .strip_prefix("natter listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");
    (child, addr)
}

/// Flooding connections, and the most sign-ins each sends (the flood stops earlier, once the
/// real user is in).
const FLOODERS: u8 = 100;
const FLOOD_REQUESTS_EACH: usize = 300;
/// How soon every flooding address must have had its first answer.
const FLOOD_SATURATES_WITHIN: Duration = Duration::from_secs(30);

/// 100 connections from 100 addresses hammer sign-in with wrong passwords. Once every one of
/// them has had its first answer and the flood has overflowed the hash queue (a 429), a real
/// user signs in from another address in under 2 s while the flood goes on; no flood
/// request hangs or fails with a 5xx. The server's memory stays bounded.
///
/// With the default limits (30 sign-ins a minute per address, 64 waiting for a hash, 2 per
/// address, none longer than 5 s) the flood asks for far more hashes than two slots do. The
/// queue is fair per address: by then every flooder has asked recently and the real user has
/// not, so it goes next (taking a flooder's place if the queue is full) and waits about one
/// hash. (Sequential flooders that are answered keep the queue just full without more 429s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_flood_does_not_delay_a_real_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = spawn_binary(
        dir.path(),
        &[
            // Default limits. The sign-in's session write need not wait for an fsync on a busy disk: this is
            // about hashing, not durability.
            "--sqlite-synchronous",
            "normal",
        ],
    )
    .await;
    let pid = child.id().expect("pid");
    let name = unique("real");
    let real = json!({"username": name, "password": "correct horse"});
    let a = post(&client_from(200), addr, "/api/register", real.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let rss_before = rss_kib(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(HashMap::<u16, usize>::new()));
    let mut flood = Vec::new();
    let flood_started = Instant::now();
    for x in 2..2 + FLOODERS {
        let (stop, refused, statuses) = (stop.clone(), refused.clone(), statuses.clone());
        let answered = answered.clone();
        flood.push(tokio::spawn(async move {
            let client = client_from(x);
            let mut seen_429 = false;
            for n in 0..FLOOD_REQUESTS_EACH {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let started = Instant::now();
                let resp = client
                    .post(format!("http://{addr}/api/login"))
                    .json(&wrong_login(&format!("flood{x}-{}", n % 5)))
                    .send()
                    .await;
                let status = match resp {
                    Ok(r) => r.status().as_u16(),
                    Err(e) => panic!("flood request from 127.0.0.{x} failed: {e}"),
                };
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "a flood request took {:?}",
                    started.elapsed()
                );
                *statuses.lock().expect("lock").entry(status).or_default() += 1;
                if n == 0 {
                    answered.fetch_add(1, Ordering::AcqRel);
                }
                if status == 429 && !seen_429 {
                    seen_429 = true;
                    refused.fetch_add(1, Ordering::AcqRel);
                }
            }
        }));
    }
    // Longer than `eventually`'s wait: with the default queue (64 waiting, up to 5 s each)
    // the last first answers may take that long on a loaded machine.
    let deadline = Instant::now() + FLOOD_SATURATES_WITHIN;
    while answered.load(Ordering::Acquire) < usize::from(FLOODERS)
        || refused.load(Ordering::Acquire) == 0
    {
        assert!(
            Instant::now() < deadline,
            "{} of {FLOODERS} flooding addresses answered, {} refused",
            answered.load(Ordering::Acquire),
            refused.load(Ordering::Acquire)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "every flooder answered after {:?}, {} of them refused",
        flood_started.elapsed(),
        refused.load(Ordering::Acquire)
    );
    let started = Instant::now();
    let a = post(&client_from(201), addr, "/api/login", real).await;
    let took = started.elapsed();
    stop.store(true, Ordering::Release);
    for f in flood {
        f.await.expect("flooder");
    }
    let rss_after = rss_kib(pid);
    let statuses = statuses.lock().expect("lock").clone();
    let total: usize = statuses.values().sum();
    eprintln!(
        "flood: {total} requests {statuses:?}; real sign-in {took:?}; \
         server RSS {rss_before} KiB before, {rss_after} KiB after"
    );
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert!(
        took < Duration::from_secs(2),
        "the real sign-in took {took:?}"
    );
    for status in statuses.keys() {
        assert!(
            [401, 429].contains(status),
            "flood got {status}: {statuses:?}"
        );
    }
    assert!(statuses.get(&401) > Some(&0) && statuses.get(&429) > Some(&0));
    // Argon2 holds 19 MiB per running hash; the limit tables hold a few hundred entries.
    assert!(
        rss_after < rss_before + 128 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    child.kill().await.expect("kill");
}

/// Reads until the server closes the connection (EOF or reset); returns what it sent.
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// 20 slowloris sockets (a request line, then one header byte every 500 ms) are closed by
/// the server about a header timeout (1 s) after they began, while a normal request is
/// answered.
#[tokio::test]
async fn slowloris_connections_are_closed_after_the_header_timeout() {
    let server = TestServer::start_with(|s| s.http_header_timeout_ms = Some(1000)).await;
    let addr = server.addr;
    let started = Instant::now();
    let mut lorises = Vec::new();
    for _ in 0..20 {
        lorises.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(b"POST /api/login HTTP/1.1\r\nHost: natter\r\n")
                .await
                .expect("write");
            let trickle = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            let mut buf = [0u8; 256];
            for byte in trickle {
                tokio::select! {
                    read = tcp.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return started.elapsed(),
                        Ok(_) => {}
                    },
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {
                        if tcp.write_all(&[*byte]).await.is_err() {
                            return started.elapsed();
                        }
                    }
                }
            }
            panic!("still open after {:?}", started.elapsed());
        }));
    }
    // A normal request meanwhile.
    let resp = reqwest::get(server.http("/healthz"))
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200);
    for loris in lorises {
        let closed_after = loris.await.expect("loris");
        assert!(
            closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(4),
            "closed after {closed_after:?}"
        );
    }
    let resp = reqwest::get(server.http("/healthz"))
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200);
}

/// A keep-alive connection is closed after the idle timeout, not the header timeout, and not
/// while its request is being answered.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let server = TestServer::start_with(|s| {
        s.http_header_timeout_ms = Some(5000);
        s.http_idle_timeout_ms = Some(1000);
    })
    .await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: natter\r\n\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let answer = tokio::time::timeout(WAIT, read_until_closed(&mut tcp))
        .await
        .expect("closed in time");
    let closed_after = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_millis(4000),
        "closed after {closed_after:?}"
    );
}

/// A JSON body that does not arrive in time gets 408 `request_timeout`.
#[tokio::test]
async fn a_slow_body_gets_408() {
    let server = TestServer::start_with(|s| s.http_body_timeout_ms = Some(500)).await;
    let socket = TcpSocket::new_v4().expect("socket");
    let mut tcp = socket.connect(server.addr).await.expect("connect");
    tcp.write_all(
        b"POST /api/login HTTP/1.1\r\nHost: natter\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"username\":",
    )
    .await
    .expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("request_timeout") {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
}
