//! The pairing protocol between two daemons (`docs/security.md`, "LAN peers").
//!
//! 1. The joining daemon opens `Noise_XXpsk3_25519_ChaChaPoly_SHA256` with the
//!    window's host, keyed by HKDF of the 6-digit invite code. Message 2
//!    carries the host's introduction (node id, name, TLS fingerprint), message
//!    3 the joiner's; the host can read message 3 only with the right code, and
//!    three wrong ones close the window.
//! 2. The code has 20 bits: whoever receives message 3 (here the host, or an
//!    impostor posing as it) can try all codes offline. So the code only keeps
//!    out blind guessers, and the SAS is what defeats a man in the middle. To
//!    keep a middleman from grinding its handshakes until both sides' SAS
//!    agree, the SAS mixes a nonce from each side, and the host commits to its
//!    nonce before it sees the joiner's: neither party can choose its nonce
//!    after seeing the other's.
//! 3. Both owners compare the SAS and confirm. Only then are the per-peer
//!    credentials exchanged, inside the channel, and stored.

use aws_lc_rs::{digest, hkdf, hmac};
use loopsy_transports::e2e::PairingSecret;
use loopsy_transports::peer_tls::is_fingerprint;
use serde::{Deserialize, Serialize};

use crate::secrets::random_bytes;

pub const PROLOGUE: &[u8] = b"loopsy peer pairing v1";
/// Largest handshake or step message accepted (hex characters).
pub const MAX_MESSAGE_HEX: usize = 8 * 1024;
/// Wrong invite codes before the window closes.
pub const MAX_WRONG_CODES: u8 = 3;

/// Six uniformly random digits.
pub fn invite_code() -> Result<String, crate::secrets::RandomUnavailable> {
    loop {
        let n = u32::from_be_bytes(random_bytes::<4>()?);
        // Reject the top sliver so that `n % 10^6` is uniform.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// Whether `code` has the invite code's shape.
pub fn is_invite_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// The Noise PSK for an invite code.
pub fn psk_of(code: &str) -> PairingSecret {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"loopsy peer pairing psk v1");
    let mut out = [0u8; 32];
    let filled = salt
        .extract(code.as_bytes())
        .expand(&[b"psk"], Len32)
        .and_then(|okm| okm.fill(&mut out));
    // HKDF-SHA-256 fills 32 bytes or the library is broken; an all-zero PSK
    // would then fail every handshake rather than open one.
    if filled.is_err() {
        out = [0; 32];
    }
    PairingSecret(out)
}

/// The host's commitment to its nonce.
pub fn commitment(nonce: &[u8; 32]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"loopsy peer sas commit v1");
    ctx.update(nonce);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The 6-digit code both owners compare.
pub fn sas(handshake_hash: &[u8], host_nonce: &[u8; 32], joiner_nonce: &[u8; 32]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, handshake_hash);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(b"loopsy peer sas v1");
    ctx.update(host_nonce);
    ctx.update(joiner_nonce);
    let tag = ctx.sign();
    let first: [u8; 4] = [
        tag.as_ref()[0],
        tag.as_ref()[1],
        tag.as_ref()[2],
        tag.as_ref()[3],
    ];
    format!("{:06}", u32::from_be_bytes(first) % 1_000_000)
}

/// Who a side says it is, inside the handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Introduction {
    pub node_id: String,
    pub hostname: String,
    pub version: String,
    pub platform: String,
    /// Fingerprint of the certificate its TLS listener presents.
    pub cert_fp: String,
    /// Its TLS port for peers.
    pub peer_port: u16,
}

/// Text another machine sent, made safe to show and log: no control or
/// invisible formatting characters (escape sequences, bidi overrides,
/// zero-width marks), at most `max` characters.
pub fn clean(text: &str, max: usize) -> String {
    let invisible = |c: char| {
        c.is_control()
            || ('\u{200B}'..='\u{200F}').contains(&c)
            || ('\u{202A}'..='\u{202E}').contains(&c)
            || ('\u{2060}'..='\u{2069}').contains(&c)
            || c == '\u{FEFF}'
    };
    text.chars().filter(|c| !invisible(*c)).take(max).collect()
}

impl Introduction {
    /// Checks every field a hostile side could fill with nonsense. The node id
    /// must be a UUID in its canonical spelling (lower-case, hyphenated), since
    /// it is what a peer is known, scoped and rate limited by; the names are
    /// printable ASCII, so a look-alike cannot pass the confirm prompt.
    pub fn check(&self) -> Result<(), String> {
        match uuid::Uuid::try_parse(&self.node_id) {
            Ok(id) if id.hyphenated().to_string() == self.node_id => {}
            _ => return Err("its node id is not a UUID in canonical form".into()),
        }
        let printable = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.bytes().all(|b| (0x20..0x7f).contains(&b))
        };
        if !printable(&self.hostname, 253) {
            return Err("its hostname is empty, too long or has control characters".into());
        }
        if !printable(&self.version, 64) || !printable(&self.platform, 32) {
            return Err("its version or platform is malformed".into());
        }
        if !is_fingerprint(&self.cert_fp) {
            return Err("its certificate fingerprint is malformed".into());
        }
        if self.peer_port == 0 {
            return Err("its peer port is 0".into());
        }
        Ok(())
    }
}

/// What is said inside the channel once the handshake is done. (Its `Debug`
/// leaves the credentials out.)
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Step {
    /// Host → joiner, right after message 3: the commitment to its nonce.
    Commit { commit: String },
    /// Joiner → host: its nonce; host → joiner: the nonce it committed to.
    Nonce { nonce: String },
    /// Joiner → host: its owner's decision, the grants, and (when accepted)
    /// the credential the host is to call the joiner with.
    Confirm {
        accept: bool,
        grants: Vec<String>,
        credential: Option<String>,
    },
    /// Joiner → host: has your owner decided?
    Poll,
    /// Host → joiner: not yet.
    Pending,
    /// Host → joiner: no pairing (the reason is shown to the joiner's owner).
    Declined { reason: String },
    /// Host → joiner: both accepted; the grants and the joiner's credential.
    Paired {
        grants: Vec<String>,
        credential: String,
    },
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Commit { .. } => "Commit",
            Self::Nonce { .. } => "Nonce",
            Self::Confirm { .. } => "Confirm",
            Self::Poll => "Poll",
            Self::Pending => "Pending",
            Self::Declined { .. } => "Declined",
            Self::Paired { .. } => "Paired",
        };
        write!(f, "Step::{kind}(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() -> Result<(), crate::secrets::RandomUnavailable> {
        for _ in 0..100 {
            assert!(is_invite_code(&invite_code()?));
        }
        assert!(!is_invite_code("12345"));
        assert!(!is_invite_code("12345a"));
        Ok(())
    }

    #[test]
    fn the_sas_depends_on_every_input() {
        let base = sas(b"hash", &[1; 32], &[2; 32]);
        assert_eq!(base.len(), 6);
        assert_eq!(base, sas(b"hash", &[1; 32], &[2; 32]));
        assert_ne!(base, sas(b"hasH", &[1; 32], &[2; 32]));
        assert_ne!(base, sas(b"hash", &[3; 32], &[2; 32]));
        assert_ne!(base, sas(b"hash", &[1; 32], &[3; 32]));
        assert_ne!(commitment(&[1; 32]), commitment(&[2; 32]));
        assert_ne!(psk_of("000000").0, psk_of("000001").0);
    }

    #[test]
    fn text_from_peers_is_cleaned() {
        assert_eq!(clean("ok\u{1b}[2Jgone\u{202e}x\u{200b}", 100), "ok[2Jgonex");
        assert_eq!(clean("abcdef", 3), "abc");
    }

    #[test]
    fn introductions_with_nonsense_are_refused() {
        let good = Introduction {
            node_id: "6f1e9b1c-0d1a-4c55-9a53-3f4f2c9e8a10".into(),
            hostname: "kai".into(),
            version: "0.1.0".into(),
            platform: "linux".into(),
            cert_fp: "ab".repeat(32),
            peer_port: 19533,
        };
        assert_eq!(good.check(), Ok(()));
        for bad in [
            Introduction {
                node_id: "x".into(),
                ..good.clone()
            },
            // A TypeScript peer's record key can never be claimed by a pairing.
            Introduction {
                node_id: "typescript-10.0.0.7:19532".into(),
                ..good.clone()
            },
            Introduction {
                hostname: "a\u{1b}[2J".into(),
                ..good.clone()
            },
            Introduction {
                hostname: "h".repeat(300),
                ..good.clone()
            },
            Introduction {
                cert_fp: "zz".into(),
                ..good.clone()
            },
            Introduction {
                peer_port: 0,
                ..good.clone()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
