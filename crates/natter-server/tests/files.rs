//! Files over real HTTP and `/ws` (docs/protocol.md sections 1 and 4): uploads streamed with
//! their limits, the type sniffed from the bytes, images decoded within bounds, downloads for
//! the owner and room members only (everyone else, whatever the reason, gets the same 404),
//! files on messages through history and resume, and the sweep after a delete. CI runs this
//! suite again on PostgreSQL + Redis (`NATTER_TEST_DATABASE`, `NATTER_TEST_BROKER`).

use natter_testkit::{room_with, unique, Client, TestServer};
use serde_json::{json, Value};
use std::io::Cursor;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// A PNG of `w` x `h` (a gradient, so it does not compress to nothing).
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// Uploads `bytes` as `name`; returns (status, body).
async fn upload(server: &TestServer, token: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let r = http()
        .post(server.http(&format!("/api/files?name={name}")))
        .bearer_auth(token)
        .header("content-type", "text/html")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn uploaded(server: &TestServer, token: &str, name: &str, bytes: Vec<u8>) -> Value {
    let (status, body) = upload(server, token, name, bytes).await;
    assert_eq!(status, 201, "{body}");
    body["file"].clone()
}

/// GET a path with a bearer token (or none): (status, headers, body).
async fn get(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = http().get(server.http(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("get");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.bytes().await.expect("body").to_vec())
}

async fn status_of(server: &TestServer, path: &str, token: Option<&str>) -> u16 {
    get(server, path, token).await.0
}

async fn download_key(server: &TestServer, token: &str) -> String {
    let (s, _, body) = get(server, "/api/files/key", Some(token)).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&body).expect("json");
    v["key"].as_str().expect("key").to_string()
}

async fn send_files(c: &mut Client, room: i64, body: &str, files: &[&Value]) -> Value {
    let ids: Vec<&Value> = files.iter().map(|f| &f["id"]).collect();
    let data = json!({"room": room, "body": body, "client_id": unique("c"), "files": ids});
    c.ok("message.send", data).await["message"].clone()
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn owners_and_members_download_and_everyone_else_gets_404() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let bytes = png(800, 600);
    let file = uploaded(&server, &ana.token, "shot.png", bytes.clone()).await;
    let id = file["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("f_") && id.len() == 24, "{id}");
    assert_eq!(file["name"], "shot.png");
    assert_eq!(file["size"], bytes.len());
    assert_eq!(file["type"], "image/png");
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(800), Some(600))
    );
    let url = format!("/api/files/{id}");

    let (s, h, body) = get(&server, &url, Some(&ana.token)).await;
    assert_eq!(s, 200);
    assert!(body == bytes, "the bytes come back as uploaded");
    assert_eq!(header(&h, "content-type"), "image/png");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert_eq!(
        header(&h, "content-security-policy"),
        "sandbox; default-src 'none'"
    );
    assert!(header(&h, "content-disposition").starts_with("inline;"));
    assert!(header(&h, "cache-control").starts_with("private"));
    assert_eq!(
        status_of(&server, &url, Some(&bob.token)).await,
        404,
        "not posted yet"
    );

    let message = send_files(&mut ana, room, "", &[&file]).await;
    assert_eq!(message["files"][0]["id"], id.as_str());
    assert_eq!(message["files"][0]["url"], url.as_str());
    assert_eq!(message["files"][0]["thumb_url"], format!("{url}/thumb"));
    let event = bob.event("message").await;
    assert_eq!(
        event["files"], message["files"],
        "the event carries the files"
    );

    let (s, _, body) = get(&server, &url, Some(&bob.token)).await;
    assert_eq!((s, body == bytes), (200, true), "a member downloads");
    let key = download_key(&server, &bob.token).await;
    assert_eq!(
        status_of(&server, &format!("{url}?k={key}"), None).await,
        200
    );
    let (s, h, thumb) = get(&server, &format!("{url}/thumb?k={key}"), None).await;
    assert_eq!((s, header(&h, "content-type")), (200, "image/png"));
    let thumb = image::load_from_memory(&thumb).expect("thumbnail decodes");
    assert!(thumb.width() <= 360 && thumb.height() <= 360);
    assert_eq!(thumb.width(), 360, "the longer side is 360");

    // Everyone else, whatever the reason, gets the same 404.
    let carol_key = download_key(&server, &carol.token).await;
    let guessed = format!("/api/files/f_{}", "A".repeat(22));
    for (what, path, token) in [
        ("a non-member", url.clone(), Some(carol.token.as_str())),
        ("a non-member's key", format!("{url}?k={carol_key}"), None),
        (
            "a forged key",
            format!("{url}?k={}", key.replacen('.', "9.", 1)),
            None,
        ),
        ("a bad key", format!("{url}?k=nonsense"), None),
        ("no credentials", url.clone(), None),
        ("a bad token", url.clone(), Some("not-a-token")),
        ("a guessed id", guessed, Some(ana.token.as_str())),
        (
            "a malformed id",
            "/api/files/..%2f..%2fetc".into(),
            Some(ana.token.as_str()),
        ),
    ] {
        let (s, _, body) = get(&server, &path, token).await;
        assert_eq!(s, 404, "{what}");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"]["code"], "not_found", "{what}");
    }
    // A revoked session: its bearer token and its key stop working.
    let r = http()
        .post(server.http("/api/logout"))
        .bearer_auth(&bob.token)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(status_of(&server, &url, Some(&bob.token)).await, 404);
    assert_eq!(
        status_of(&server, &format!("{url}?k={key}"), None).await,
        404
    );
}

#[tokio::test]
async fn a_message_carries_only_its_senders_uploads() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let file = uploaded(&server, &ana.token, "notes.txt", b"hello".to_vec()).await;
    assert_eq!(file["type"], "text/plain; charset=utf-8");
    let id = file["id"].clone();
    let theft = json!({"room": room, "body": "", "client_id": unique("c"), "files": [id]});
    assert_eq!(bob.fails("message.send", theft).await, "unknown_file");
    let made_up = json!({"room": room, "body": "x", "client_id": unique("c"),
                        "files": [format!("f_{}", "B".repeat(22))]});
    assert_eq!(ana.fails("message.send", made_up).await, "unknown_file");
    let eleven = vec![id.clone(); 11];
    let many = json!({"room": room, "body": "", "client_id": unique("c"), "files": eleven});
    assert_eq!(ana.fails("message.send", many).await, "invalid_request");
    let empty = json!({"room": room, "body": " ", "client_id": unique("c")});
    assert_eq!(ana.fails("message.send", empty).await, "empty_message");
    let sent = send_files(&mut ana, room, "", &[&file]).await;
    assert_eq!(sent["body"], "");
    let history = ana.ok("history", json!({"room": room})).await;
    let last = history["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned();
    assert_eq!(last.expect("a message")["files"][0]["id"], id);
}

/// Writes a chunked body of up to 100 MB in 64 KiB chunks until the server answers; returns
/// the status line and the bytes written.
async fn chunked_flood(server: &TestServer, token: &str) -> (String, usize) {
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/files?name=big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    let (mut read, mut write) = tcp.into_split();
    let answer = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let n = read.read(&mut buf).await.unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).to_string()
    });
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0usize;
    while written < 100_000_000 && !answer.is_finished() {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        match tokio::time::timeout(Duration::from_secs(5), write.write_all(&framed)).await {
            Ok(Ok(())) => written += chunk.len(),
            _ => break,
        }
    }
    let answer = tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .expect("an answer")
        .expect("reader");
    (answer, written)
}

fn tmp_is_empty(server: &TestServer) -> bool {
    std::fs::read_dir(server.data_dir.join("tmp"))
        .map(|d| d.count() == 0)
        .unwrap_or(true)
}

#[tokio::test]
async fn an_oversized_upload_is_refused_while_it_streams() {
    let server = TestServer::start_with(|s| s.max_upload_bytes = Some(1024 * 1024)).await;
    let (token, _) = server.register("ana").await;
    let (answer, written) = chunked_flood(&server, &token).await;
    eprintln!("an oversized upload was refused after {written} bytes were sent");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("file_too_large"), "{answer}");
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        written < 40_000_000,
        "the server stopped reading early: {written} bytes sent"
    );
    assert!(tmp_is_empty(&server), "nothing is kept");
    // With a Content-Length that says so, it is refused before any byte of the body.
    let (status, body) = upload(&server, &token, "big.bin", vec![0; 1024 * 1024 + 1]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("file_too_large"))
    );
    let (status, _) = upload(&server, &token, "fits.bin", vec![1; 1024 * 1024]).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn uploads_past_the_quota_are_refused() {
    let server = TestServer::start_with(|s| s.upload_quota_bytes = Some(10_000)).await;
    let (token, _) = server.register("ana").await;
    uploaded(&server, &token, "a.bin", vec![1; 6_000]).await;
    let (status, body) = upload(&server, &token, "b.bin", vec![2; 6_000]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("quota_exceeded"))
    );
    // Without a Content-Length it is found while streaming.
    let (answer, _) = chunked_flood(&server, &token).await;
    assert!(answer.contains("quota_exceeded"), "{answer}");
    assert!(tmp_is_empty(&server));
    uploaded(&server, &token, "c.bin", vec![3; 4_000]).await;
    let (status, _) = upload(&server, &token, "d.bin", vec![4; 1]).await;
    assert_eq!(status, 413, "the quota is used up");
}

/// A hand-made PNG of `w` x `h` (8-bit grey): the header says so; the data is a few zeros.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    fn crc(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for b in bytes {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let body = [kind, data].concat();
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let ihdr = [&w.to_be_bytes()[..], &h.to_be_bytes(), &[8, 0, 0, 0, 0]].concat();
    chunk(&mut out, b"IHDR", &ihdr);
    // A zlib stream with one stored block of 1000 zeros.
    let zeros = [0u8; 1000];
    let mut z = vec![0x78, 0x01, 0x01, 0xe8, 0x03, 0x17, 0xfc];
    z.extend_from_slice(&zeros);
    z.extend_from_slice(&0x03e8_0001u32.to_be_bytes());
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", b"");
    out
}

#[tokio::test]
async fn image_bombs_and_corrupt_images_are_refused_and_polyglots_never_render() {
    let server = TestServer::start().await;
    let (token, _) = server.register("ana").await;
    let bomb = png_header_only(20_000, 20_000);
    assert!(bomb.len() < 2_000, "a small file");
    let (status, body) = upload(&server, &token, "bomb.png", bomb).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_image")),
        "{body}"
    );
    let (status, body) = upload(&server, &token, "wide.png", png_header_only(20_001, 1)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_image"))
    );
    let corrupt = [
        b"\x89PNG\r\n\x1a\n".as_slice(),
        b"<html><script>alert(1)</script>",
    ]
    .concat();
    let (status, body) = upload(&server, &token, "x.png", corrupt).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_image"))
    );
    assert!(tmp_is_empty(&server));

    // A real PNG with HTML after its end: an image, served as one.
    let polyglot = [
        png(20, 20),
        b"<html><script>alert(1)</script></html>".to_vec(),
    ]
    .concat();
    let file = uploaded(&server, &token, "poly.html", polyglot).await;
    assert_eq!(file["type"], "image/png");
    let (_, h, _) = get(
        &server,
        &format!("/api/files/{}", file["id"].as_str().expect("id")),
        Some(&token),
    )
    .await;
    assert_eq!(header(&h, "content-type"), "image/png");
    // HTML and SVG are text, served as attachments.
    for (name, text) in [
        ("page.html", "<!doctype html><script>alert(1)</script>"),
        (
            "pic.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>",
        ),
    ] {
        let file = uploaded(&server, &token, name, text.as_bytes().to_vec()).await;
        let (s, h, _) = get(
            &server,
            &format!("/api/files/{}", file["id"].as_str().expect("id")),
            Some(&token),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(
            header(&h, "content-type"),
            "text/plain; charset=utf-8",
            "{name}"
        );
        assert!(
            header(&h, "content-disposition").starts_with("attachment;"),
            "{name}"
        );
        assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    }
    let thumbless = uploaded(&server, &token, "a.bin", vec![0, 1, 2]).await;
    assert_eq!(thumbless["type"], "application/octet-stream");
    assert!(thumbless.get("thumb_url").is_none());
    let path = format!("/api/files/{}/thumb", thumbless["id"].as_str().expect("id"));
    assert_eq!(status_of(&server, &path, Some(&token)).await, 404);
}

#[tokio::test]
async fn resume_gives_a_file_message_once_with_its_files() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let before = ana.say(room, "before").await;
    bob.event_where("message", |m| m["seq"] == before["seq"])
        .await;
    let bob_token = bob.token.clone();
    drop(bob);
    let file = uploaded(&server, &ana.token, "doc.pdf", b"%PDF-1.4 tiny".to_vec()).await;
    let sent = send_files(&mut ana, room, "the doc", &[&file]).await;
    let resume = json!({ room.to_string(): before["seq"] });
    let mut bob = Client::connect(server.addr, &bob_token, Some(resume)).await;
    let got = bob.event("message").await;
    assert_eq!(got["seq"], sent["seq"]);
    assert_eq!(got["files"][0]["id"], file["id"]);
    assert_eq!(got["files"][0]["type"], "application/pdf");
    bob.no_event_where("message", Duration::from_millis(300), |m| {
        m["seq"] == sent["seq"]
    })
    .await;
}

#[tokio::test]
async fn deleted_messages_and_unposted_uploads_lose_their_files_in_the_sweep() {
    let clock = natter_core::Clock::system();
    let server =
        TestServer::start_with_clock(clock.clone(), |s| s.session_sweep_ms = Some(100)).await;
    let mut ana = server.user("ana").await;
    let room = room_with(&mut ana, &mut []).await;
    let file = uploaded(&server, &ana.token, "gone.png", png(30, 30)).await;
    let kept = uploaded(&server, &ana.token, "kept.txt", b"kept".to_vec()).await;
    let url = format!("/api/files/{}", file["id"].as_str().expect("id"));
    let kept_url = format!("/api/files/{}", kept["id"].as_str().expect("id"));
    let sent = send_files(&mut ana, room, "", &[&file]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        status_of(&server, &url, Some(&ana.token)).await,
        200,
        "a posted file stays"
    );
    let delete = json!({"room": room, "seq": sent["seq"], "client_id": unique("d")});
    ana.ok("message.delete", delete).await;
    natter_testkit::eventually("the deleted message's file is swept", async || {
        status_of(&server, &url, Some(&ana.token)).await == 404
    })
    .await;
    if std::env::var("NATTER_TEST_DATABASE").is_err() {
        // The record goes first (then downloads are 404), its blob right after.
        let blobs = server.data_dir.join("files");
        natter_testkit::eventually("only the unposted upload's blob is left", async || {
            walk(&blobs) == 1
        })
        .await;
    }
    assert_eq!(
        status_of(&server, &kept_url, Some(&ana.token)).await,
        200,
        "an upload has a day"
    );
    clock.advance(Duration::from_secs(25 * 3600));
    natter_testkit::eventually("an unposted upload is swept after a day", async || {
        status_of(&server, &kept_url, Some(&ana.token)).await == 404
    })
    .await;
}

/// Files under `dir`, at any depth.
fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Profiles (`profile.get`, `profile.update`, `room.members`): a display name, a status line
/// and an avatar that must be one's own image upload; anyone signed in may fetch an avatar,
/// nobody else; offline members show when they were last seen.
#[tokio::test]
async fn profiles_carry_a_display_name_status_and_avatar_anyone_signed_in_may_see() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let (carol_token, carol) = server.register("carol").await;
    let carol_name = carol["name"].as_str().expect("name").to_string();
    let picture = uploaded(&server, &ana.token, "me.png", png(64, 64)).await;
    let text = uploaded(&server, &ana.token, "notes.txt", b"not an image".to_vec()).await;
    let bobs = uploaded(&server, &bob.token, "bob.png", png(32, 32)).await;
    for (avatar, why) in [(&text, "not an image"), (&bobs, "not hers")] {
        let code = ana
            .fails("profile.update", json!({"avatar": avatar["id"]}))
            .await;
        assert_eq!(code, "unknown_file", "{why}");
    }
    let mine = ana
        .ok(
            "profile.update",
            json!({"display_name": "  Ana Lima ", "status": "in Lisbon", "avatar": picture["id"]}),
        )
        .await["profile"]
        .clone();
    assert_eq!(mine["display_name"], "Ana Lima", "trimmed");
    assert_eq!(mine["avatar"]["id"], picture["id"]);
    assert_eq!(
        ana.fails("profile.update", json!({"status": "two\nlines"}))
            .await,
        "invalid_request"
    );
    let long = "x".repeat(65);
    assert_eq!(
        ana.fails("profile.update", json!({"display_name": long}))
            .await,
        "invalid_request"
    );

    let seen = bob.ok("profile.get", json!({"user": ana.name()})).await["profile"].clone();
    assert_eq!(seen["display_name"], "Ana Lima");
    assert_eq!(seen["status"], "in Lisbon");
    assert_eq!(seen["online"], true);
    assert!(seen.get("last_seen").is_none(), "online: no last seen");
    let url = seen["avatar"]["url"].as_str().expect("url").to_string();
    // bob shares no room message with the file, yet may see it as her avatar; a stranger
    // without a session gets the 404 everyone else gets.
    assert_eq!(status_of(&server, &url, Some(&bob.token)).await, 200);
    assert_eq!(status_of(&server, &url, None).await, 404);
    // Carol has never connected: offline, with her last activity.
    let hers = bob.ok("profile.get", json!({"user": carol_name})).await["profile"].clone();
    assert_eq!(hers["online"], false);
    assert!(hers["last_seen"].as_i64().expect("last seen") > 0);
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let mut carol_ws = Client::connect(server.addr, &carol_token, None).await;
    carol_ws.ok("room.join", json!({"room": room})).await;
    drop(carol_ws);
    // Two members with avatars and one without: each row carries its own.
    bob.ok("profile.update", json!({"avatar": bobs["id"]}))
        .await;
    let members = bob.ok("room.members", json!({"room": room})).await["members"].clone();
    let row_of = |id: i64| {
        members
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["user"]["id"] == id)
            .cloned()
            .expect("member")
    };
    let ana_row = row_of(ana.id());
    assert_eq!(ana_row["display_name"], "Ana Lima");
    assert_eq!(ana_row["avatar"]["id"], picture["id"]);
    assert_eq!(row_of(bob.id())["avatar"]["id"], bobs["id"]);
    assert!(row_of(carol["id"].as_i64().expect("carol's id"))["avatar"].is_null());
    // Removing the avatar takes the file's public view with it.
    ana.ok("profile.update", json!({"avatar": null})).await;
    assert_eq!(status_of(&server, &url, Some(&bob.token)).await, 404);
    assert_eq!(
        bob.fails("profile.get", json!({"user": unique("nobody")}))
            .await,
        "unknown_user"
    );
}
