//! The pairing link: what the QR code's URL fragment carries, kept short
//! enough that the code scans from an 80-column terminal. It holds the
//! relay's device id and a 16-byte seed, base64url, nothing else; the rest is
//! derived from the seed with HKDF-SHA-256:
//! - the Noise `XXpsk3` pre-shared key (the pairing secret, 32 bytes);
//! - the relay's pairing token (the bearer of the pairing socket), which the
//!   daemon registers at the relay as a digest;
//! - the token's id, which names the pairing window and enters the prologue.
//!
//! The daemon's static key is not in the link: the pre-shared key already
//! authenticates the daemon, and the phone keeps the key the handshake shows it
//! only once a message sealed under that key has opened. The relay's URL is not
//! in it either when the relay serves the app: the page's own origin is the
//! relay. A 16-byte seed gives 128 bits against guessing within a window that
//! lives at most an hour and allows five sockets.

use aws_lc_rs::{digest, hkdf, rand};

use super::channel::E2eError;
use super::keys::PairingSecret;
use crate::secrets::hex;

/// Bytes of a seed.
pub const SEED_BYTES: usize = 16;
/// The link's first byte: a device id that is a UUID (stored as its 16 bytes).
const WITH_UUID: u8 = 2;
/// The link's first byte: any other device id (stored as its UTF-8 bytes).
const WITH_TEXT_ID: u8 = 3;

const PSK_INFO: &[u8] = b"loopsy pairing psk v2";
const TOKEN_INFO: &[u8] = b"loopsy pairing token v2";
const TOKEN_ID_INFO: &[u8] = b"loopsy pairing token id v2";

/// The random seed of one pairing window.
pub struct PairingSeed(pub [u8; SEED_BYTES]);

impl Drop for PairingSeed {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

impl std::fmt::Debug for PairingSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairingSeed(..)")
    }
}

struct Length(usize);

impl hkdf::KeyType for Length {
    fn len(&self) -> usize {
        self.0
    }
}

impl PairingSeed {
    pub fn generate() -> Result<Self, E2eError> {
        let mut seed = [0u8; SEED_BYTES];
        rand::fill(&mut seed).map_err(|_| E2eError::Random)?;
        Ok(Self(seed))
    }

    fn derive<const N: usize>(&self, info: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(&self.0);
        // Expanding at most 32 bytes from SHA-256 cannot fail.
        if let Ok(okm) = prk.expand(&[info], Length(N)) {
            let _ = okm.fill(&mut out);
        }
        out
    }

    /// The `XXpsk3` pre-shared key.
    pub fn psk(&self) -> PairingSecret {
        PairingSecret(self.derive::<32>(PSK_INFO))
    }

    /// The relay's pairing token: the bearer of the pairing socket, as hex.
    pub fn token(&self) -> String {
        hex(&self.derive::<32>(TOKEN_INFO))
    }

    /// The token's id, as hex: names the window and enters the prologue.
    pub fn token_id(&self) -> String {
        hex(&self.derive::<16>(TOKEN_ID_INFO))
    }

    /// The SHA-256 of [`PairingSeed::token`], as hex: what the relay keeps.
    pub fn token_digest(&self) -> String {
        hex(digest::digest(&digest::SHA256, self.token().as_bytes()).as_ref())
    }

    /// The URL fragment (without `#`) naming `device_id` and this seed.
    pub fn fragment(&self, device_id: &str) -> String {
        let mut bytes = Vec::with_capacity(1 + SEED_BYTES + 16);
        match uuid_bytes(device_id) {
            Some(uuid) => {
                bytes.push(WITH_UUID);
                bytes.extend_from_slice(&self.0);
                bytes.extend_from_slice(&uuid);
            }
            None => {
                bytes.push(WITH_TEXT_ID);
                bytes.extend_from_slice(&self.0);
                bytes.extend_from_slice(device_id.as_bytes());
            }
        }
        base64url(&bytes)
    }
}

/// What a phone reads from a link: the device id and the seed.
pub fn parse_fragment(fragment: &str) -> Option<(String, PairingSeed)> {
    let bytes = from_base64url(fragment.trim_start_matches('#'))?;
    let (&kind, rest) = bytes.split_first()?;
    if rest.len() < SEED_BYTES {
        return None;
    }
    let (seed, id) = rest.split_at(SEED_BYTES);
    let device_id = match kind {
        WITH_UUID if id.len() == 16 => uuid_text(id),
        WITH_TEXT_ID if !id.is_empty() => String::from_utf8(id.to_vec()).ok()?,
        _ => return None,
    };
    let mut out = [0u8; SEED_BYTES];
    out.copy_from_slice(seed);
    Some((device_id, PairingSeed(out)))
}

/// A lower-case hyphenated UUID as its 16 bytes; `None` for anything else, so
/// that it always comes back as the same text.
fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let lower_hex = |g: &&str| {
        g.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if lengths != [8, 4, 4, 4, 12] || !groups.iter().all(lower_hex) {
        return None;
    }
    let digits: String = groups.concat();
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(digits.as_bytes().chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

fn uuid_text(bytes: &[u8]) -> String {
    let h = hex(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn from_base64url(text: &str) -> Option<Vec<u8>> {
    let values: Vec<u32> = text
        .bytes()
        .map(|c| ALPHABET.iter().position(|a| *a == c).map(|v| v as u32))
        .collect::<Option<_>>()?;
    if values.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(values.len() * 3 / 4);
    for chunk in values.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, v)| n | v << (18 - 6 * i));
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_round_trips_and_stays_short() {
        let seed = PairingSeed([7; SEED_BYTES]);
        for device in [
            "3f2c9a1e-0b7d-4c55-9e21-6a8f0d1b2c3e",
            "a-device-of-another-relay",
        ] {
            let fragment = seed.fragment(device);
            let (back, parsed) = parse_fragment(&fragment).expect("parses");
            assert_eq!(back, device);
            assert_eq!(parsed.0, seed.0);
        }
        let uuid = seed.fragment("3f2c9a1e-0b7d-4c55-9e21-6a8f0d1b2c3e");
        assert_eq!(uuid.len(), 44, "{uuid}");
        let url = format!("https://relay.example.com/app#{uuid}");
        assert!(url.len() <= 120, "{} characters", url.len());
    }

    #[test]
    fn a_uuid_is_stored_only_in_its_one_spelling() {
        let seed = PairingSeed([1; SEED_BYTES]);
        for odd in [
            "3F2C9A1E-0B7D-4C55-9E21-6A8F0D1B2C3E",
            "3f2c9a1e0b7d4c559e216a8f0d1b2c3e",
        ] {
            let (back, _) = parse_fragment(&seed.fragment(odd)).expect("parses");
            assert_eq!(back, odd, "kept as text");
        }
    }

    #[test]
    fn garbage_is_no_link() {
        for bad in ["", "#", "!!!!", "AgAAAA", "Aw", &base64url(&[9; 40])] {
            assert!(parse_fragment(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn base64url_round_trips_every_length() {
        for n in 0..40 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 53 + 7) as u8).collect();
            assert_eq!(from_base64url(&base64url(&bytes)), Some(bytes));
        }
    }

    #[test]
    fn the_derived_values_differ_and_are_stable() {
        let seed = PairingSeed([3; SEED_BYTES]);
        assert_eq!(seed.token().len(), 64);
        assert_eq!(seed.token_id().len(), 32);
        assert_ne!(&seed.token()[..32], seed.token_id());
        assert_eq!(seed.psk().0, PairingSeed([3; SEED_BYTES]).psk().0);
        assert_ne!(seed.psk().0, PairingSeed([4; SEED_BYTES]).psk().0);
    }
}
