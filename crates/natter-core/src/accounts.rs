//! Account rules: name and password validation, argon2id hashing (off the async runtime),
//! and opaque session tokens stored only as SHA-256 hashes.

use crate::error::{ChatError, ErrorCode};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const MAX_NAME_CHARS: usize = 32;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// 1-32 ASCII letters, digits, `_`, `-`, `.` (users, guests and public rooms alike).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub fn check_username(name: &str) -> Result<(), ChatError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ChatError::new(
            ErrorCode::InvalidUsername,
            "usernames are 1-32 characters of letters, digits, _ - .",
        ))
    }
}

pub fn check_password(password: &str) -> Result<(), ChatError> {
    let n = password.chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        Ok(())
    } else {
        Err(ChatError::new(
            ErrorCode::WeakPassword,
            "passwords are 8 to 256 characters",
        ))
    }
}

/// Password hashes computed at once. Each argon2id run holds 19 MiB and a core's worth of
/// work: a sign-up storm must queue here, not take all memory and every blocking thread.
const MAX_CONCURRENT_HASHES: usize = 2;

/// How long a client refused because the hashing queue is full is asked to wait.
pub const HASH_QUEUE_RETRY_MS: u64 = 1000;

/// The node's argon2id work: at most [`MAX_CONCURRENT_HASHES`] run at once, at most
/// `max_waiting` more wait for a turn, and anything past that is refused at once with
/// `rate_limited` (a flood of sign-ins must not delay every real user without bound).
#[derive(Debug)]
pub struct Hashing {
    permits: tokio::sync::Semaphore,
    /// Hashes waiting for a permit now.
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
}

/// One place in the hashing queue, given back when dropped (also when the request is
/// cancelled while it waits).
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Hashing {
    /// A queue that lets `max_waiting` hashes wait for one of the running slots.
    pub fn new(max_waiting: usize) -> Self {
        Hashing {
            permits: tokio::sync::Semaphore::new(MAX_CONCURRENT_HASHES),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// Hashes waiting now (not counting the ones running).
    pub fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A turn to hash: at once if a slot is free, after waiting if the queue has room, else
    /// `rate_limited`.
    async fn turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ChatError> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = self.permits.try_acquire() {
            return Ok(permit);
        }
        let admitted = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_waiting).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            let mut e = ChatError::new(
                ErrorCode::RateLimited,
                "too many sign-ins are waiting, try again shortly",
            );
            e.retry_after_ms = Some(HASH_QUEUE_RETRY_MS);
            return Err(e);
        }
        let _place = Waiting(&self.waiting);
        self.permits
            .acquire()
            .await
            .map_err(|_| ChatError::internal())
    }

    /// Hashes a password with argon2id on a blocking thread.
    pub async fn hash_password(&self, password: String) -> Result<String, ChatError> {
        let _permit = self.turn().await?;
        tokio::task::spawn_blocking(move || {
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            let salt = SaltString::encode_b64(&salt).map_err(|_| ChatError::internal())?;
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|_| ChatError::internal())
        })
        .await
        .map_err(|_| ChatError::internal())?
    }

    /// Verifies a password against a stored hash on a blocking thread. With no hash (unknown
    /// user, guest) it still spends the time of one verification, so timing does not tell
    /// whether a name exists. `Err` only when the queue is full.
    pub async fn verify_password(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, ChatError> {
        let _permit = self.turn().await?;
        Ok(tokio::task::spawn_blocking(move || {
            let fallback;
            let stored = match &hash {
                Some(h) => h.as_str(),
                None => {
                    fallback = dummy_hash();
                    fallback.as_str()
                }
            };
            let Ok(parsed) = PasswordHash::new(stored) else {
                return false;
            };
            let ok = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            ok && hash.is_some()
        })
        .await
        .unwrap_or(false))
    }
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            SaltString::encode_b64(b"natter-dummy-salt")
                .ok()
                .and_then(|salt| {
                    Argon2::default()
                        .hash_password(b"not a password", &salt)
                        .ok()
                        .map(|h| h.to_string())
                })
                .unwrap_or_default()
        })
        .clone()
}

/// A new session token: URL-safe base64 of 32 random bytes (43 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a token: what is stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A session's public id: the hex of the first 16 bytes of its token hash. It names the
/// session to its owner (to revoke it) and cannot be used to sign in.
pub fn session_id(token_hash: &[u8]) -> String {
    to_hex(&token_hash[..token_hash.len().min(16)])
}

/// The longest device label kept, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

/// A label as stored: control characters dropped, trimmed, at most [`MAX_LABEL_CHARS`].
pub fn clean_label(label: &str) -> String {
    label
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_LABEL_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

/// A short device label from a User-Agent: "Firefox on Linux" for the browsers and systems
/// it knows, else the User-Agent itself (cleaned and cut to [`MAX_LABEL_CHARS`]).
pub fn device_label(user_agent: &str) -> String {
    const BROWSERS: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    const SYSTEMS: &[(&str, &str)] = &[
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Macintosh", "macOS"),
        ("Linux", "Linux"),
    ];
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| user_agent.contains(needle))
            .map(|(_, name)| *name)
    };
    match (find(BROWSERS), find(SYSTEMS)) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        _ => clean_label(user_agent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("ana"));
        assert!(valid_name("A.b-c_9"));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
        assert!(!valid_name("émile"));
        assert!(!valid_name(&"x".repeat(33)));
        assert!(valid_name(&"x".repeat(32)));
    }

    #[tokio::test]
    async fn hashes_verify() {
        let hashing = Hashing::new(4);
        let h = hashing
            .hash_password("correct horse".into())
            .await
            .expect("hash");
        assert!(h.starts_with("$argon2id$"));
        let verify = |pw: &str, hash: Option<String>| hashing.verify_password(pw.into(), hash);
        assert!(verify("correct horse", Some(h.clone()))
            .await
            .expect("turn"));
        assert!(!verify("wrong horse", Some(h)).await.expect("turn"));
        assert!(!verify("anything", None).await.expect("turn"));
    }

    /// Two hashes run, `max_waiting` wait, the rest are refused at once with
    /// `rate_limited`; once the queue drains, hashing works again.
    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let hashing = Hashing::new(3);
        let attempts = (0..10).map(|_| hashing.verify_password("password".into(), None));
        let started = std::time::Instant::now();
        let results = futures_util::future::join_all(attempts).await;
        let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(refused.len(), 10 - MAX_CONCURRENT_HASHES - 3, "{results:?}");
        for e in refused {
            assert_eq!(e.code, ErrorCode::RateLimited);
            assert_eq!(e.retry_after_ms, Some(HASH_QUEUE_RETRY_MS));
        }
        assert_eq!(hashing.waiting(), 0);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert!(hashing
            .verify_password("password".into(), None)
            .await
            .is_ok());
    }

    #[test]
    fn device_labels() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(device_label(firefox), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/126.0 Mobile Safari/537.36";
        assert_eq!(device_label(chrome), "Chrome on Android");
        assert_eq!(device_label("curl/8.5.0"), "curl/8.5.0");
        assert_eq!(device_label(""), "");
        let long = format!("bot\n{}", "x".repeat(200));
        let label = device_label(&long);
        assert_eq!(label.chars().count(), MAX_LABEL_CHARS);
        assert!(label.starts_with("botx"));
        assert_eq!(session_id(&token_hash("t")).len(), 32);
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token());
        assert_eq!(token_hash(&a).len(), 32);
    }
}
