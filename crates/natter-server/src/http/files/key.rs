//! Download keys: what a browser appends to a file URL (`?k=`) where it cannot send an
//! `Authorization` header (`<img src>`). A key names a user and one of their sessions and
//! expires; it is `<user>.<expires>.<session hash hex>.<mac>`, the mac being
//! base64url(HMAC-SHA256(secret, the rest)). The secret is the store's (`server_secret`), so
//! every node of one database accepts every node's keys. A key dies with its session (revoked
//! or expired), and after `KEY_TTL`.
//!
//! Keys are per user, not per file: messages are encoded once for all their readers, so a
//! file's URL is the same for everyone and each reader adds their own key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use natter_core::model::{Millis, UserId};
use sha2::Sha256;

/// How long a key works.
pub const KEY_TTL_MS: Millis = 24 * 3600 * 1000;

/// The store's name of the secret that signs keys.
pub const SECRET_NAME: &str = "download_keys";

/// Signs and checks download keys.
pub struct DownloadKeys {
    secret: Vec<u8>,
}

/// What a valid key names.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyHolder {
    pub user: UserId,
    pub session_hash: Vec<u8>,
}

impl DownloadKeys {
    pub fn new(secret: Vec<u8>) -> DownloadKeys {
        DownloadKeys { secret }
    }

    fn mac(&self, signed: &str) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret).ok()?;
        mac.update(b"natter download key\n");
        mac.update(signed.as_bytes());
        Some(mac)
    }

    /// A key for `user`'s session (by token hash) that works until `expires`.
    pub fn issue(&self, user: UserId, session_hash: &[u8], expires: Millis) -> Option<String> {
        let signed = format!(
            "{user}.{expires}.{}",
            natter_core::accounts::to_hex(session_hash)
        );
        let tag = self.mac(&signed)?.finalize().into_bytes();
        Some(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// Whom `key` names, if it is one of ours and has not expired at `now`.
    pub fn check(&self, key: &str, now: Millis) -> Option<KeyHolder> {
        let (signed, tag) = key.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(signed)?.verify_slice(&tag).ok()?;
        let mut parts = signed.split('.');
        let user = UserId(parts.next()?.parse().ok()?);
        let expires: Millis = parts.next()?.parse().ok()?;
        let session_hash = from_hex(parts.next()?)?;
        if parts.next().is_some() || expires < now {
            return None;
        }
        Some(KeyHolder { user, session_hash })
    }
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_its_holder_until_it_expires_and_cannot_be_forged() {
        let keys = DownloadKeys::new(b"secret".to_vec());
        let key = keys.issue(UserId(7), &[1, 2, 255], 1000).expect("key");
        let holder = keys.check(&key, 999).expect("valid");
        assert_eq!(holder.user, UserId(7));
        assert_eq!(holder.session_hash, vec![1, 2, 255]);
        assert!(keys.check(&key, 1001).is_none(), "expired");
        let forged = key.replacen("7.", "8.", 1);
        assert!(keys.check(&forged, 0).is_none(), "another user");
        let other = DownloadKeys::new(b"other".to_vec());
        assert!(other.check(&key, 0).is_none(), "another secret");
        assert!(keys.check("garbage", 0).is_none());
    }
}
