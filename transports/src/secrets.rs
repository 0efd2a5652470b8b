//! Secrets shared by the daemon and the relay: generation from the system
//! CSPRNG, hex, SHA-256 digests compared in constant time. All through aws-lc-rs.

use aws_lc_rs::{constant_time, digest, rand};

/// Bytes of entropy in a generated key (spec §12: 32 random bytes, 64 hex chars).
pub const API_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed; cannot create a key safely")]
pub struct RandomUnavailable;

/// A fresh 256-bit key as 64 lowercase hex characters.
pub fn generate_api_key() -> Result<String, RandomUnavailable> {
    let mut bytes = [0u8; API_KEY_BYTES];
    rand::fill(&mut bytes).map_err(|_| RandomUnavailable)?;
    Ok(hex(&bytes))
}

/// Random bytes for identifiers (not secrets, but unpredictable).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomUnavailable> {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes).map_err(|_| RandomUnavailable)?;
    Ok(bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// SHA-256 of `bytes`, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// Bytes from hex (either case, even length); `None` for anything else.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    // `from_str_radix` alone would take a sign ("+f").
    if !digits.len().is_multiple_of(2) || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

/// 32 bytes from 64 hex characters (either case); `None` for anything else.
pub fn from_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    from_hex(text)?.try_into().ok()
}

/// SHA-256 of a secret: what we keep in memory, so that comparisons run on
/// equal-length digests and never reveal a key's length.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub fn of(secret: &str) -> Self {
        let hash = digest::digest(&digest::SHA256, secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(hash.as_ref());
        Self(out)
    }

    /// A digest read back from storage; `None` unless it is 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &KeyDigest) -> bool {
        constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}

impl std::fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyDigest(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_signs_and_lengths() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(from_hex32(&hex(&bytes)), Some(bytes));
        assert_eq!(from_hex32(&hex(&bytes).to_uppercase()), Some(bytes));
        assert_eq!(from_hex32(&format!("+f{}", &hex(&bytes)[2..])), None);
        assert_eq!(from_hex32(&hex(&bytes)[2..]), None);
        assert_eq!(from_hex32(&"zz".repeat(32)), None);
    }

    #[test]
    fn generated_keys_are_hex_and_distinct() -> Result<(), RandomUnavailable> {
        let a = generate_api_key()?;
        let b = generate_api_key()?;
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn digests_compare() {
        assert!(KeyDigest::of("abc").matches(&KeyDigest::of("abc")));
        assert!(!KeyDigest::of("abc").matches(&KeyDigest::of("abd")));
    }
}
