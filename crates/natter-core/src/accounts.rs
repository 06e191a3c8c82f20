//! Account rules: name and password validation, argon2id hashing (off the async runtime),
//! and opaque session tokens stored only as SHA-256 hashes. Over 500 lines with its tests
//! (the fair hash queue's scheduling cases are most of them).

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

/// Client keys whose recent requests are remembered. Past this the counting window is cut
/// short (the oldest counts are forgotten), so memory stays bounded under a flood from many
/// addresses.
pub const HASH_KEYS_REMEMBERED: usize = 65_536;

/// The window recent requests are counted over: this window and the one before it.
const HASH_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// The node's argon2id work, shared fairly between clients. At most
/// [`MAX_CONCURRENT_HASHES`] run at once and at most `max_waiting` more wait for a turn, each
/// for at most `max_wait`; each request carries its client's key (the HTTP layer's client
/// address, IPv6 by /64).
///
/// Waiters are served fewest recent requests first (the key's hashes started and requests
/// refused in the last one to two minutes, as counted when the request joined the queue: a
/// flooder refused again and again weighs more than a real user, though it never got to
/// hash), ties in arrival order, and one key may have at most `waiting_per_key` waiting. When
/// the queue is full, a newcomer whose key has fewer recent requests than the heaviest waiter
/// takes that waiter's place (the newest of the heaviest key's requests is refused);
/// otherwise the newcomer is refused. A waiter not served within `max_wait` is refused too.
/// Refusals are `rate_limited` with [`HASH_QUEUE_RETRY_MS`]. So a flood from many addresses
/// keeps its own requests waiting, while a client that has not been asking goes next.
#[derive(Debug)]
pub struct Hashing {
    shared: std::sync::Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: std::sync::Mutex<Queue>,
    max_waiting: usize,
    waiting_per_key: usize,
    max_wait: std::time::Duration,
}

/// A waiter's place in line: its key's recent requests when it joined, then its arrival.
type Rank = (u32, u64);

#[derive(Debug)]
struct Queue {
    /// Hashes running now (slots taken), at most [`MAX_CONCURRENT_HASHES`].
    running: usize,
    /// Waiters in the order they are served; the sender grants a slot (`Ok`) or refuses.
    waiters: std::collections::BTreeMap<Rank, Waiter>,
    /// How many requests each key has waiting.
    waiting_per_key: std::collections::HashMap<std::net::IpAddr, usize>,
    /// The next arrival number.
    next_arrival: u64,
    /// Requests per key in the current window: hashes started and requests refused.
    this_window: std::collections::HashMap<std::net::IpAddr, u32>,
    /// The same for the window before.
    last_window: std::collections::HashMap<std::net::IpAddr, u32>,
    /// When the current window started.
    window_start: tokio::time::Instant,
}

#[derive(Debug)]
struct Waiter {
    key: std::net::IpAddr,
    turn: tokio::sync::oneshot::Sender<Result<(), ChatError>>,
}

fn refusal(message: &str) -> ChatError {
    ChatError::rate_limited(message, HASH_QUEUE_RETRY_MS)
}

fn queue_full() -> ChatError {
    refusal("too many sign-ins are waiting, try again shortly")
}

impl Queue {
    /// Moves to a new window when the current one is over, or early when it holds more
    /// keys than half of [`HASH_KEYS_REMEMBERED`] (the two windows together stay under it).
    fn roll(&mut self, now: tokio::time::Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= 2 * HASH_WINDOW {
            self.this_window.clear();
            self.last_window.clear();
            self.window_start = now;
        } else if elapsed >= HASH_WINDOW || self.this_window.len() >= HASH_KEYS_REMEMBERED / 2 {
            self.last_window = std::mem::take(&mut self.this_window);
            self.window_start = now;
        }
    }

    /// `key`'s recent requests (this window and the one before): hashes started and requests
    /// refused.
    fn recent(&self, key: &std::net::IpAddr) -> u32 {
        let count = |m: &std::collections::HashMap<_, u32>| m.get(key).copied().unwrap_or(0);
        count(&self.this_window).saturating_add(count(&self.last_window))
    }

    /// Counts a request of `key`'s: a hash started, or a request refused.
    fn count(&mut self, key: std::net::IpAddr, now: tokio::time::Instant) {
        self.roll(now);
        let n = self.this_window.entry(key).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// Takes a waiter out of line (served, refused or gone).
    fn remove(&mut self, rank: &Rank) -> Option<Waiter> {
        let waiter = self.waiters.remove(rank)?;
        if let std::collections::hash_map::Entry::Occupied(mut e) =
            self.waiting_per_key.entry(waiter.key)
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        Some(waiter)
    }
}

/// A running hash's slot, handed to the next waiter (or freed) when dropped.
struct Slot(std::sync::Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A request waiting for a slot. Dropped before its turn (the HTTP request went away) it
/// leaves the line; dropped after being granted a slot it never used, it passes the slot on.
struct Place<'a> {
    shared: &'a std::sync::Arc<Shared>,
    rank: Rank,
    turn: tokio::sync::oneshot::Receiver<Result<(), ChatError>>,
    /// Set once the granted slot belongs to a [`Slot`].
    taken: bool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        let unused_slot = {
            let mut queue = self.shared.lock();
            if queue.remove(&self.rank).is_some() {
                false
            } else {
                // Out of line already: granted or refused, and the answer is in the channel
                // (it was sent under the lock).
                matches!(self.turn.try_recv(), Ok(Ok(())))
            }
        };
        if unused_slot {
            self.shared.release();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot is free: it goes to the first waiter in line, or back to the pool.
    fn release(&self) {
        let now = tokio::time::Instant::now();
        let mut queue = self.lock();
        while let Some(rank) = queue.waiters.keys().next().copied() {
            let Some(waiter) = queue.remove(&rank) else {
                break;
            };
            let key = waiter.key;
            if waiter.turn.send(Ok(())).is_ok() {
                queue.count(key, now);
                return;
            }
        }
        queue.running = queue.running.saturating_sub(1);
    }
}

impl Hashing {
    /// A queue that lets `max_waiting` hashes wait for one of the running slots, at most
    /// `waiting_per_key` of them from one key, each for at most `max_wait`.
    pub fn new(max_waiting: usize, waiting_per_key: usize, max_wait: std::time::Duration) -> Self {
        Hashing {
            shared: std::sync::Arc::new(Shared {
                queue: std::sync::Mutex::new(Queue {
                    running: 0,
                    waiters: Default::default(),
                    waiting_per_key: Default::default(),
                    next_arrival: 0,
                    this_window: Default::default(),
                    last_window: Default::default(),
                    window_start: tokio::time::Instant::now(),
                }),
                max_waiting,
                waiting_per_key,
                max_wait,
            }),
        }
    }

    /// Hashes waiting now (not counting the ones running).
    pub fn waiting(&self) -> usize {
        self.shared.lock().waiters.len()
    }

    /// A turn to hash for `key`: at once if a slot is free, else a place in line (see
    /// [`Hashing`]), else `rate_limited`.
    async fn turn(&self, key: std::net::IpAddr) -> Result<Slot, ChatError> {
        let now = tokio::time::Instant::now();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (rank, evicted) = {
            let mut queue = self.shared.lock();
            if queue.running < MAX_CONCURRENT_HASHES {
                queue.running += 1;
                queue.count(key, now);
                return Ok(Slot(self.shared.clone()));
            }
            if queue.waiting_per_key.get(&key).copied().unwrap_or(0) >= self.shared.waiting_per_key
            {
                queue.count(key, now);
                return Err(refusal(
                    "too many sign-ins from this address are waiting, try again shortly",
                ));
            }
            queue.roll(now);
            let rank = (queue.recent(&key), queue.next_arrival);
            let mut evicted = None;
            if queue.waiters.len() >= self.shared.max_waiting {
                match queue.waiters.keys().next_back().copied() {
                    Some(worst) if worst.0 > rank.0 => evicted = queue.remove(&worst),
                    _ => {
                        queue.count(key, now);
                        return Err(queue_full());
                    }
                }
            }
            queue.next_arrival += 1;
            queue.waiters.insert(rank, Waiter { key, turn: tx });
            *queue.waiting_per_key.entry(key).or_insert(0) += 1;
            (rank, evicted)
        };
        if let Some(waiter) = evicted {
            // Its receiver may be gone already; then there is no one to tell.
            let _ = waiter.turn.send(Err(queue_full()));
        }
        let mut place = Place {
            shared: &self.shared,
            rank,
            turn: rx,
            taken: false,
        };
        let Ok(answer) = tokio::time::timeout(self.shared.max_wait, &mut place.turn).await else {
            // Waited too long: the place leaves the line (or passes on a slot granted just
            // now) as it is dropped.
            drop(place);
            self.shared.lock().count(key, tokio::time::Instant::now());
            return Err(refusal("sign-ins waited too long, try again shortly"));
        };
        // Whatever the answer, the place is out of line now; a granted slot is the Slot's.
        place.taken = true;
        match answer {
            Ok(Ok(())) => Ok(Slot(self.shared.clone())),
            Ok(Err(refused)) => Err(refused),
            Err(_) => Err(ChatError::internal()),
        }
    }

    /// Hashes a password with argon2id on a blocking thread, in `key`'s turn.
    pub async fn hash_password(
        &self,
        key: std::net::IpAddr,
        password: String,
    ) -> Result<String, ChatError> {
        let slot = self.turn(key).await?;
        tokio::task::spawn_blocking(move || {
            // The slot is held until the hash is done, even if the request goes away.
            let _slot = slot;
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

    /// Verifies a password against a stored hash on a blocking thread, in `key`'s turn. With
    /// no hash (unknown user, guest) it still spends the time of one verification, so timing
    /// does not tell whether a name exists. `Err` only when refused a turn.
    pub async fn verify_password(
        &self,
        key: std::net::IpAddr,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, ChatError> {
        let slot = self.turn(key).await?;
        Ok(tokio::task::spawn_blocking(move || {
            let _slot = slot;
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

/// A password for an operator to hand on (`natter admin`): URL-safe base64 of 15 random
/// bytes, 20 characters (120 bits), within the password rules.
pub fn generate_password() -> String {
    let mut bytes = [0u8; 15];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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
    use futures_util::FutureExt;

    const PER_KEY: usize = crate::config::defaults::HASH_WAITING_PER_ADDRESS;
    const MAX_WAIT: std::time::Duration =
        std::time::Duration::from_millis(crate::config::defaults::HASH_WAIT_MS);

    /// A queue of `max_waiting` with the default per-key cap and longest wait.
    fn hashing(max_waiting: usize) -> Hashing {
        Hashing::new(max_waiting, PER_KEY, MAX_WAIT)
    }

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

    fn key(n: u8) -> std::net::IpAddr {
        std::net::IpAddr::from([192, 0, 2, n])
    }

    #[tokio::test]
    async fn hashes_verify() {
        let hashing = hashing(4);
        let h = hashing
            .hash_password(key(1), "correct horse".into())
            .await
            .expect("hash");
        assert!(h.starts_with("$argon2id$"));
        let verify =
            |pw: &str, hash: Option<String>| hashing.verify_password(key(1), pw.into(), hash);
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
        let hashing = hashing(3);
        let attempts = (0..10).map(|n| hashing.verify_password(key(n), "password".into(), None));
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
            .verify_password(key(0), "password".into(), None)
            .await
            .is_ok());
    }

    /// Takes `n` turns for `key` and gives them back: `key` has hashed `n` times recently.
    fn hashed(hashing: &Hashing, k: std::net::IpAddr, n: usize) {
        for _ in 0..n {
            let slot = hashing.turn(k).now_or_never().expect("free").expect("slot");
            drop(slot);
        }
    }

    fn assert_refused(answer: Option<Result<Slot, ChatError>>) {
        let e = answer.expect("answered at once").err().expect("refused");
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(e.retry_after_ms, Some(HASH_QUEUE_RETRY_MS));
    }

    /// Yields until `n` requests wait (a bounded number of times: a bug fails, not hangs).
    async fn waiting_reaches(hashing: &Hashing, n: usize) {
        for _ in 0..10_000 {
            if hashing.waiting() == n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{} waiting, not {n}", hashing.waiting());
    }

    /// Waiters are served fewest recent hashes first, ties in arrival order; once the
    /// counting window has passed, old hashes no longer count.
    #[tokio::test(start_paused = true)]
    async fn the_fewest_recent_hashes_go_first() {
        let hashing = std::sync::Arc::new(hashing(8));
        hashed(&hashing, key(1), 3);
        hashed(&hashing, key(2), 1);
        let busy = hashing.turn(key(9)).now_or_never().expect("free");
        let held = hashing.turn(key(9)).now_or_never().expect("free");
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let wait = |k: std::net::IpAddr| {
            let (hashing, order) = (hashing.clone(), order.clone());
            tokio::spawn(async move {
                let slot = hashing.turn(k).await.expect("slot");
                order.lock().expect("lock").push(k);
                drop(slot);
            })
        };
        let mut tasks = Vec::new();
        for (n, k) in [key(1), key(2), key(3), key(4)].into_iter().enumerate() {
            tasks.push(wait(k));
            waiting_reaches(&hashing, n + 1).await;
        }
        drop(busy);
        for t in tasks {
            t.await.expect("waiter");
        }
        assert_eq!(
            *order.lock().expect("lock"),
            [key(3), key(4), key(2), key(1)]
        );

        // Two windows later key 1's hashes are forgotten: it ties with key 5, and arrived
        // first.
        tokio::time::advance(2 * HASH_WINDOW).await;
        order.lock().expect("lock").clear();
        // The chain above freed `busy`'s slot at its end: take it again.
        let busy = hashing.turn(key(9)).now_or_never().expect("free");
        let mut tasks = Vec::new();
        for (n, k) in [key(1), key(5)].into_iter().enumerate() {
            tasks.push(wait(k));
            waiting_reaches(&hashing, n + 1).await;
        }
        drop((busy, held));
        for t in tasks {
            t.await.expect("waiter");
        }
        assert_eq!(*order.lock().expect("lock"), [key(1), key(5)]);
    }

    /// One key may have `PER_KEY` requests waiting; its next is refused at
    /// once, while other keys still get in line.
    #[tokio::test(start_paused = true)]
    async fn one_key_may_wait_only_twice() {
        let hashing = hashing(8);
        let _running = [
            hashing.turn(key(9)).now_or_never(),
            hashing.turn(key(9)).now_or_never(),
        ];
        let mut waiting = Vec::new();
        for _ in 0..PER_KEY {
            let mut w = Box::pin(hashing.turn(key(1)));
            assert!((&mut w).now_or_never().is_none());
            waiting.push(w);
        }
        assert_refused(hashing.turn(key(1)).now_or_never());
        let mut other = Box::pin(hashing.turn(key(2)));
        assert!((&mut other).now_or_never().is_none());
        assert_eq!(hashing.waiting(), PER_KEY + 1);
        // A place given back makes room for the key again.
        waiting.pop();
        let mut again = Box::pin(hashing.turn(key(1)));
        assert!((&mut again).now_or_never().is_none());
    }

    /// With the queue full, a newcomer with fewer recent hashes takes the place of the
    /// heaviest key's newest waiter, which is refused; a newcomer no lighter is refused.
    #[tokio::test(start_paused = true)]
    async fn a_full_queue_evicts_the_heaviest_for_a_light_newcomer() {
        let hashing = hashing(3);
        hashed(&hashing, key(1), 5);
        hashed(&hashing, key(2), 2);
        let _running = [
            hashing.turn(key(9)).now_or_never(),
            hashing.turn(key(9)).now_or_never(),
        ];
        let mut heavy_old = Box::pin(hashing.turn(key(1)));
        assert!((&mut heavy_old).now_or_never().is_none());
        let mut heavy_new = Box::pin(hashing.turn(key(1)));
        assert!((&mut heavy_new).now_or_never().is_none());
        let mut medium = Box::pin(hashing.turn(key(2)));
        assert!((&mut medium).now_or_never().is_none());
        assert_eq!(hashing.waiting(), 3);

        let mut light = Box::pin(hashing.turn(key(3)));
        assert!((&mut light).now_or_never().is_none());
        assert_refused((&mut heavy_new).now_or_never());
        assert!((&mut heavy_old).now_or_never().is_none());
        assert_eq!(hashing.waiting(), 3);

        // Key 1 is not lighter than its own waiter: refused. A fresh key is: key 1's last
        // waiter goes. Then key 2 (2 recent) is the heaviest, and a key as heavy is refused.
        assert_refused(hashing.turn(key(1)).now_or_never());
        let mut fresh = Box::pin(hashing.turn(key(4)));
        assert!((&mut fresh).now_or_never().is_none());
        assert_refused((&mut heavy_old).now_or_never());
        assert_refused(hashing.turn(key(2)).now_or_never());
        assert_eq!(hashing.waiting(), 3);
        assert!((&mut medium).now_or_never().is_none());
    }

    /// A waiter not served within the longest wait is refused and leaves the line; one
    /// served in time is not.
    #[tokio::test(start_paused = true)]
    async fn a_waiter_waits_at_most_max_wait() {
        let hashing = hashing(8);
        let mut first = hashing.turn(key(9)).now_or_never();
        let _second = hashing.turn(key(9)).now_or_never();
        let started = tokio::time::Instant::now();
        let mut late = Box::pin(hashing.turn(key(1)));
        assert!((&mut late).now_or_never().is_none());
        tokio::time::advance(MAX_WAIT / 2).await;
        let mut served = Box::pin(hashing.turn(key(2)));
        assert!((&mut served).now_or_never().is_none());
        let (late, served) = tokio::join!(late, async {
            // A slot frees just after key 1's wait ran out: it goes to key 2, who arrived
            // later and still has time.
            tokio::time::sleep(MAX_WAIT / 2 + std::time::Duration::from_millis(1)).await;
            drop(first.take());
            served.await
        });
        let e = late.err().expect("refused");
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(e.retry_after_ms, Some(HASH_QUEUE_RETRY_MS));
        assert!(started.elapsed() >= MAX_WAIT);
        assert!(served.is_ok());
        assert_eq!(hashing.waiting(), 0);
    }

    /// A waiting request that is dropped leaves the line; one dropped after it was granted
    /// a slot it never used passes the slot on.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_waiter_frees_its_place() {
        let hashing = hashing(1);
        let mut first = hashing.turn(key(9)).now_or_never();
        let _second = hashing.turn(key(9)).now_or_never();
        let mut waiter = Box::pin(hashing.turn(key(1)));
        assert!((&mut waiter).now_or_never().is_none());
        assert_eq!(hashing.waiting(), 1);
        assert_refused(hashing.turn(key(2)).now_or_never());
        drop(waiter);
        assert_eq!(hashing.waiting(), 0);

        let mut granted = Box::pin(hashing.turn(key(2)));
        assert!((&mut granted).now_or_never().is_none());
        drop(first.take());
        // The slot is in `granted`'s hands, but it is dropped before it looks.
        assert_eq!(hashing.waiting(), 0);
        assert!(hashing.turn(key(3)).now_or_never().is_none());
        drop(granted);
        let slot = hashing.turn(key(3)).now_or_never().expect("answered");
        assert!(slot.is_ok(), "the unused slot was passed on");
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
