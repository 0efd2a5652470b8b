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
//! only once a message sealed under that key has opened. The relay's URL is in
//! it only when the app is served from elsewhere (an app origin of its own, or
//! the laptop on the LAN); when the relay serves the app, the page's own
//! origin is the relay. A 16-byte seed gives 128 bits against guessing within
//! a window that lives at most an hour and allows five sockets.
//!
//! Layout (first byte, then):
//! - `2`: seed, UUID device id (16 bytes);
//! - `3`: seed, device id as UTF-8 (the rest);
//! - `4`: seed, UUID device id (16 bytes), relay URL as UTF-8 (the rest);
//! - `5`: seed, id length (1 byte), device id as UTF-8, relay URL as UTF-8.

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
/// As [`WITH_UUID`], followed by the relay's URL.
const WITH_UUID_AND_RELAY: u8 = 4;
/// A length-prefixed text device id, followed by the relay's URL.
const WITH_TEXT_ID_AND_RELAY: u8 = 5;
/// Longest relay URL a link carries (a QR code must still scan).
pub const MAX_RELAY_URL: usize = 200;

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

    /// The URL fragment (without `#`) naming `device_id` and this seed, for a
    /// page the relay serves itself.
    pub fn fragment(&self, device_id: &str) -> String {
        base64url(&self.link_bytes(device_id, None, device_id.as_bytes()))
    }

    /// The fragment for an app served away from the relay: it names the relay
    /// too (an `http(s)` URL of at most [`MAX_RELAY_URL`] bytes).
    pub fn fragment_with_relay(
        &self,
        device_id: &str,
        relay_url: &str,
    ) -> Result<String, E2eError> {
        let relay = relay_url.trim_end_matches('/');
        if !relay_url_acceptable(relay) {
            return Err(E2eError::Link(format!(
                "the relay URL {relay_url:?} cannot go in a pairing link (an http(s) URL of at most {MAX_RELAY_URL} bytes)"
            )));
        }
        let length = u8::try_from(device_id.len())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                E2eError::Link("the device id is empty or longer than 255 bytes".into())
            })?;
        let text_id = [&[length][..], device_id.as_bytes()].concat();
        Ok(base64url(&self.link_bytes(
            device_id,
            Some(relay),
            &text_id,
        )))
    }

    /// Kind, seed, device id (its 16 bytes when a UUID, else `text_id`), relay.
    fn link_bytes(&self, device_id: &str, relay: Option<&str>, text_id: &[u8]) -> Vec<u8> {
        let relay = relay.unwrap_or_default();
        let mut bytes = Vec::with_capacity(1 + SEED_BYTES + text_id.len().max(16) + relay.len());
        let uuid = uuid_bytes(device_id);
        bytes.push(match (&uuid, relay.is_empty()) {
            (Some(_), true) => WITH_UUID,
            (None, true) => WITH_TEXT_ID,
            (Some(_), false) => WITH_UUID_AND_RELAY,
            (None, false) => WITH_TEXT_ID_AND_RELAY,
        });
        bytes.extend_from_slice(&self.0);
        match &uuid {
            Some(uuid) => bytes.extend_from_slice(uuid),
            None => bytes.extend_from_slice(text_id),
        }
        bytes.extend_from_slice(relay.as_bytes());
        bytes
    }
}

/// Whether `url` may stand in a link as the relay: `http(s)://` and a host,
/// printable ASCII without spaces, at most [`MAX_RELAY_URL`] bytes.
fn relay_url_acceptable(url: &str) -> bool {
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    // No credentials (`@`), and nothing that would end or bend the URL the
    // app builds from it (`\`, `?`, `#`).
    url.len() <= MAX_RELAY_URL
        && host.is_some_and(|h| !h.is_empty() && !h.starts_with('/'))
        && url
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"@\\?#".contains(&b))
}

/// What a phone reads from a link.
pub struct ParsedLink {
    pub device_id: String,
    pub seed: PairingSeed,
    /// The relay, when the link names it (else the page's origin is the relay).
    pub relay_url: Option<String>,
}

/// Reads a link; `None` for anything that is not one of ours.
pub fn parse_fragment(fragment: &str) -> Option<ParsedLink> {
    let bytes = from_base64url(fragment.trim_start_matches('#'))?;
    let (&kind, rest) = bytes.split_first()?;
    if rest.len() < SEED_BYTES {
        return None;
    }
    let (seed, rest) = rest.split_at(SEED_BYTES);
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).ok();
    let relay = |bytes: &[u8]| text(bytes).filter(|url| relay_url_acceptable(url));
    let (device_id, relay_url) = match kind {
        WITH_UUID if rest.len() == 16 => (uuid_text(rest), None),
        WITH_TEXT_ID if !rest.is_empty() => (text(rest)?, None),
        WITH_UUID_AND_RELAY if rest.len() > 16 => {
            let (id, url) = rest.split_at(16);
            (uuid_text(id), Some(relay(url)?))
        }
        WITH_TEXT_ID_AND_RELAY => {
            let (&length, rest) = rest.split_first()?;
            let length = usize::from(length);
            if length == 0 || rest.len() <= length {
                return None;
            }
            let (id, url) = rest.split_at(length);
            (text(id)?, Some(relay(url)?))
        }
        _ => return None,
    };
    let mut out = [0u8; SEED_BYTES];
    out.copy_from_slice(seed);
    Some(ParsedLink {
        device_id,
        seed: PairingSeed(out),
        relay_url,
    })
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
            let parsed = parse_fragment(&fragment).expect("parses");
            assert_eq!(parsed.device_id, device);
            assert_eq!(parsed.seed.0, seed.0);
            assert_eq!(parsed.relay_url, None);
            let relay = "https://relay.example.com";
            let fragment = seed.fragment_with_relay(device, relay).expect("fits");
            let parsed = parse_fragment(&fragment).expect("parses");
            assert_eq!(parsed.device_id, device);
            assert_eq!(parsed.seed.0, seed.0);
            assert_eq!(parsed.relay_url.as_deref(), Some(relay));
        }
        let uuid = seed.fragment("3f2c9a1e-0b7d-4c55-9e21-6a8f0d1b2c3e");
        assert_eq!(uuid.len(), 44, "{uuid}");
        let url = format!("https://relay.example.com/app/#{uuid}");
        assert!(url.len() <= 120, "{} characters", url.len());
        let elsewhere = seed
            .fragment_with_relay(
                "3f2c9a1e-0b7d-4c55-9e21-6a8f0d1b2c3e",
                "https://relay.example.com/",
            )
            .expect("fits");
        let url = format!("https://app.example.com/#{elsewhere}");
        assert!(url.len() <= 120, "{} characters: {url}", url.len());
    }

    #[test]
    fn a_relay_that_is_no_http_url_is_not_put_in_a_link_or_read_from_one() {
        let seed = PairingSeed([5; SEED_BYTES]);
        for bad in [
            "https://user:password@relay.example.com",
            "https://relay.example.com/x?y=1",
            "https://relay.example.com\\evil.example",
            "https://relay.example.com#f",
            "javascript:alert(1)",
            "relay.example.com",
            "https://",
            "https://a b",
            &format!("https://{}", "a".repeat(MAX_RELAY_URL)),
        ] {
            assert!(seed.fragment_with_relay("d", bad).is_err(), "{bad}");
        }
        // Hand-made links with such relays, or cut short, are no links.
        for (kind, tail) in [
            (
                WITH_UUID_AND_RELAY,
                [&[1u8; 16][..], b"javascript:x"].concat(),
            ),
            (WITH_UUID_AND_RELAY, vec![1u8; 16]),
            (WITH_TEXT_ID_AND_RELAY, [&[9u8][..], b"device"].concat()),
            (WITH_TEXT_ID_AND_RELAY, [&[0u8][..], b"https://r"].concat()),
            (WITH_TEXT_ID_AND_RELAY, [&[1u8][..], b"dftp://r"].concat()),
        ] {
            let bytes = [&[kind][..], &[5u8; SEED_BYTES], &tail].concat();
            assert!(parse_fragment(&base64url(&bytes)).is_none(), "{tail:?}");
        }
    }

    #[test]
    fn a_uuid_is_stored_only_in_its_one_spelling() {
        let seed = PairingSeed([1; SEED_BYTES]);
        for odd in [
            "3F2C9A1E-0B7D-4C55-9E21-6A8F0D1B2C3E",
            "3f2c9a1e0b7d4c559e216a8f0d1b2c3e",
        ] {
            let parsed = parse_fragment(&seed.fragment(odd)).expect("parses");
            assert_eq!(parsed.device_id, odd, "kept as text");
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
