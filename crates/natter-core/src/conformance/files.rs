//! File rules: the `Store`'s file records (`files_on_messages`, `file_sweep`,
//! `server_secrets`; re-exported by `conformance::store`, whose macro runs them with the
//! rest), and the `FileStore` contract with its own macro,
//! [`file_store_conformance!`](crate::file_store_conformance), run against every blob backend.

use crate::files::{ContentHash, FileId, FileStore, StoredFile};
use crate::model::*;
use crate::store::Store;
use crate::{Refusal, StoreError};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;

fn hash_of(bytes: &[u8]) -> ContentHash {
    ContentHash::from_digest(&Sha256::digest(bytes))
}

fn record(owner: UserId, hash: &ContentHash, size: u64, created_at: Millis) -> StoredFile {
    StoredFile {
        id: FileId::random(),
        owner,
        name: "shot.png".into(),
        size,
        kind: "image/png".into(),
        width: Some(800),
        height: Some(600),
        hash: hash.clone(),
        thumb_hash: None,
        created_at,
    }
}

async fn user(store: &Arc<dyn Store>, name: &str, tag: &str) -> User {
    store
        .create_user(&format!("{name}{tag}"), None, false)
        .await
        .expect("user")
}

fn message(room: RoomId, who: &User, cid: &str, files: Vec<FileId>) -> NewMessage {
    NewMessage {
        room,
        sender: who.clone(),
        body: String::new(),
        client_id: cid.into(),
        ts: now_millis(),
        files,
        ..NewMessage::default()
    }
}

/// Records are kept as given; a message carries only its sender's uploads (anything else is
/// refused with nothing stored and no seq spent), in order, on every read, and a retry gives
/// them back; a file's rooms are those of the messages carrying it; a delete drops them.
pub async fn files_on_messages(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "fana", tag).await;
    let bob = user(store, "fbob", tag).await;
    let room = store
        .create_room(&format!("files{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    let now = now_millis();
    let mut shot = record(ana.id, &hash_of(b"shot"), 4, now);
    shot.thumb_hash = Some(hash_of(b"thumb"));
    let mut doc = record(ana.id, &hash_of(b"doc"), 3, now);
    (doc.kind, doc.width, doc.height) = ("application/pdf".into(), None, None);
    let theirs = record(bob.id, &hash_of(b"bob"), 3, now);
    for f in [&shot, &doc, &theirs] {
        store.create_file(f.clone()).await.expect("create file");
    }
    let again = store.create_file(shot.clone()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        store.file(&shot.id).await.expect("file"),
        Some(shot.clone())
    );
    assert_eq!(store.file(&FileId::random()).await.expect("file"), None);
    assert_eq!(store.file_bytes_of(ana.id).await.expect("bytes"), 7);

    let stolen = store
        .append(message(
            room.id,
            &ana,
            "c0",
            vec![shot.id.clone(), theirs.id.clone()],
        ))
        .await;
    assert!(
        matches!(stolen, Err(StoreError::Refused(Refusal::UnknownFile))),
        "another's upload is refused: {stolen:?}"
    );
    let last = store
        .room(room.id)
        .await
        .expect("room")
        .expect("exists")
        .last_seq;
    assert_eq!(last, Seq::ZERO, "a refusal spends no seq");

    let files = vec![doc.id.clone(), shot.id.clone()];
    let sent = store
        .append(message(room.id, &ana, "c1", files.clone()))
        .await
        .expect("append")
        .message;
    let infos = vec![doc.info(), shot.info()];
    assert_eq!(
        sent.files, infos,
        "the appended message carries its files in order"
    );
    assert_eq!(
        sent.files[1].thumb_url.as_deref(),
        Some(&*format!("/api/files/{}/thumb", shot.id))
    );
    let retry = store
        .append(message(room.id, &ana, "c1", files))
        .await
        .expect("retry");
    assert!(retry.duplicate);
    assert_eq!(
        retry.message.files, infos,
        "a retry gives the original's files"
    );
    let after = store
        .messages_after(room.id, Seq::ZERO, 10)
        .await
        .expect("after");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].files, infos, "messages_after");
    let page = store
        .message_page(room.id, Scope::Room, None, None, 10)
        .await
        .expect("page");
    assert_eq!(page[0].files, infos, "message_page");
    let one = store
        .message(room.id, sent.seq)
        .await
        .expect("message")
        .expect("exists");
    assert_eq!(one.files, infos, "message");
    assert_eq!(
        store.file_rooms(&shot.id).await.expect("rooms"),
        vec![room.id]
    );
    assert!(store
        .file_rooms(&theirs.id)
        .await
        .expect("rooms")
        .is_empty());

    store
        .change(NewChange {
            room: room.id,
            sender: ana.clone(),
            client_id: "c2".into(),
            ts: now_millis(),
            change: Change::Delete { target: sent.seq },
            body: String::new(),
            max_reactions: 0,
        })
        .await
        .expect("delete");
    let gone = store
        .message(room.id, sent.seq)
        .await
        .expect("message")
        .expect("tombstone");
    assert!(gone.files.is_empty(), "a deleted message carries no files");
    let after = store
        .messages_after(room.id, Seq::ZERO, 10)
        .await
        .expect("after");
    assert!(after[0].files.is_empty(), "nor does its stored entry");
    assert!(store.file_rooms(&shot.id).await.expect("rooms").is_empty());
}

/// The sweep removes files a message carried once (at once) and uploads never posted made
/// before the time given; it names the blobs no remaining record uses (bytes and thumbnails).
pub async fn file_sweep(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "sana", tag).await;
    let room = store
        .create_room(&format!("sweep{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    let now = now_millis();
    let shared = hash_of(format!("shared{tag}").as_bytes());
    let mut posted = record(ana.id, &hash_of(format!("posted{tag}").as_bytes()), 5, now);
    posted.thumb_hash = Some(hash_of(format!("thumb{tag}").as_bytes()));
    let fresh = record(ana.id, &shared, 5, now);
    let old = record(ana.id, &shared, 5, now - 10_000);
    let kept = record(ana.id, &hash_of(format!("kept{tag}").as_bytes()), 5, now);
    for f in [&posted, &fresh, &old, &kept] {
        store.create_file(f.clone()).await.expect("create");
    }
    let gone = store
        .append(message(room.id, &ana, "s1", vec![posted.id.clone()]))
        .await
        .expect("append")
        .message;
    store
        .append(message(room.id, &ana, "s2", vec![kept.id.clone()]))
        .await
        .expect("append");
    store
        .change(NewChange {
            room: room.id,
            sender: ana.clone(),
            client_id: "s3".into(),
            ts: now_millis(),
            change: Change::Delete { target: gone.seq },
            body: String::new(),
            max_reactions: 0,
        })
        .await
        .expect("delete");
    let mut freed = store.sweep_files(now - 5_000).await.expect("sweep");
    freed.sort();
    let mut want = vec![
        posted.hash.clone(),
        posted.thumb_hash.clone().expect("thumb"),
    ];
    want.sort();
    assert_eq!(
        freed, want,
        "the deleted message's file goes; the old upload's blob is shared"
    );
    assert_eq!(store.file(&posted.id).await.expect("file"), None);
    assert_eq!(
        store.file(&old.id).await.expect("file"),
        None,
        "an old unposted upload goes"
    );
    assert!(
        store.file(&fresh.id).await.expect("file").is_some(),
        "a fresh upload stays"
    );
    assert!(
        store.file(&kept.id).await.expect("file").is_some(),
        "a carried file stays"
    );
    assert!(store.hash_in_use(&shared).await.expect("in use"));
    assert!(!store.hash_in_use(&posted.hash).await.expect("in use"));
    assert_eq!(store.file_bytes_of(ana.id).await.expect("bytes"), 10);
    assert!(store
        .sweep_files(now - 5_000)
        .await
        .expect("sweep")
        .is_empty());
    let freed = store.sweep_files(now + 1).await.expect("sweep");
    assert_eq!(freed, vec![shared], "the last record of a hash frees it");
}

/// A secret is stored once: later candidates get the first one back.
pub async fn server_secrets(store: &Arc<dyn Store>, tag: &str) {
    let name = format!("download{tag}");
    let first = store.server_secret(&name, b"first").await.expect("secret");
    assert_eq!(first, b"first");
    let again = store.server_secret(&name, b"second").await.expect("secret");
    assert_eq!(again, b"first");
}

/// A fresh blob store for one rule, and what to do once the rule has passed (drop a scratch
/// database, remove a directory).
pub struct FileStoreUnderTest {
    pub store: Arc<dyn FileStore>,
    cleanup: Option<futures_util::future::BoxFuture<'static, ()>>,
}

impl FileStoreUnderTest {
    pub fn new(
        store: Arc<dyn FileStore>,
        cleanup: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> FileStoreUnderTest {
        FileStoreUnderTest {
            store,
            cleanup: Some(Box::pin(cleanup)),
        }
    }

    /// Drops the store, then runs the cleanup.
    pub async fn finish(self) {
        drop(self.store);
        if let Some(cleanup) = self.cleanup {
            cleanup.await;
        }
    }
}

/// Stamps one `#[tokio::test]` per `FileStore` rule into a module `$module`; `$make` takes
/// the test's name and returns `Option<FileStoreUnderTest>` (None: not configured here).
#[macro_export]
macro_rules! file_store_conformance {
    ($module:ident, $make:expr) => {
        $crate::file_store_conformance!(@rules $module, $make;
            blobs_round_trip, empty_and_missing_blobs);
    };
    (@rules $module:ident, $make:expr; $($rule:ident),+ $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $rule() {
                    let test = concat!(stringify!($module), "::", stringify!($rule));
                    let Some(under_test) = ($make)(test).await else {
                        return;
                    };
                    $crate::conformance::files::$rule(&under_test.store, stringify!($rule)).await;
                    under_test.finish().await;
                }
            )+
        }
    };
}

/// Writes `bytes` to a scratch file and returns its path.
fn scratch(tag: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "natter-blob-{tag}-{}-{}",
        std::process::id(),
        FileId::random()
    ));
    std::fs::write(&path, bytes).expect("scratch file");
    path
}

async fn read_all(store: &Arc<dyn FileStore>, hash: &ContentHash) -> Option<(u64, Vec<u8>)> {
    let mut blob = store.open(hash).await.expect("open")?;
    let mut bytes = Vec::new();
    while let Some(chunk) = blob.chunks.next().await {
        bytes.extend_from_slice(&chunk.expect("chunk"));
    }
    Some((blob.size, bytes))
}

/// A blob put is there with its bytes (several chunks' worth) and size; putting it again
/// keeps it; deleting it removes it, and deleting again succeeds.
pub async fn blobs_round_trip(store: &Arc<dyn FileStore>, tag: &str) {
    let bytes: Vec<u8> = (0..700 * 1024u32).map(|i| (i % 251) as u8).collect();
    let hash = hash_of(&[bytes.as_slice(), tag.as_bytes()].concat());
    let path = scratch(tag, &bytes);
    store.put(&hash, &path).await.expect("put");
    let _ = std::fs::remove_file(&path);
    assert!(store.exists(&hash).await.expect("exists"));
    let (size, back) = read_all(store, &hash).await.expect("there");
    assert_eq!(size, bytes.len() as u64);
    assert!(back == bytes, "the bytes come back as put");
    let path = scratch(tag, &bytes);
    store.put(&hash, &path).await.expect("put again");
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        read_all(store, &hash).await.expect("there").1.len(),
        bytes.len()
    );
    store.delete(&hash).await.expect("delete");
    assert!(!store.exists(&hash).await.expect("exists"));
    assert!(read_all(store, &hash).await.is_none());
    store.delete(&hash).await.expect("delete again");
}

/// A zero-byte blob is a blob; a hash never put is not there.
pub async fn empty_and_missing_blobs(store: &Arc<dyn FileStore>, tag: &str) {
    let hash = hash_of(format!("empty{tag}{}", FileId::random()).as_bytes());
    let path = scratch(tag, b"");
    store.put(&hash, &path).await.expect("put");
    let _ = std::fs::remove_file(&path);
    assert_eq!(read_all(store, &hash).await, Some((0, Vec::new())));
    store.delete(&hash).await.expect("delete");
    let missing = hash_of(b"never put");
    assert!(!store.exists(&missing).await.expect("exists"));
    assert!(store.open(&missing).await.expect("open").is_none());
}
