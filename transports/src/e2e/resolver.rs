//! Noise primitives for `snow`, all from aws-lc-rs: X25519, ChaCha20-Poly1305,
//! SHA-256 (and its HMAC) and the system random source. snow brings the
//! handshake state machine; no primitive is ours.

use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::{digest, hmac, rand};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::CryptoResolver;
use snow::types::{Cipher, Dh, Hash, Random};

/// Resolves the suite `25519_ChaChaPoly_SHA256` to aws-lc-rs.
pub struct AwsLcResolver;

impl CryptoResolver for AwsLcResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SystemRandom))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        matches!(choice, DHChoice::Curve25519)
            .then(|| Box::new(X25519Key::default()) as Box<dyn Dh>)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        matches!(choice, HashChoice::SHA256).then(|| Box::new(Sha256::default()) as Box<dyn Hash>)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        matches!(choice, CipherChoice::ChaChaPoly)
            .then(|| Box::new(ChaChaPoly::default()) as Box<dyn Cipher>)
    }
}

struct SystemRandom;

impl Random for SystemRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        rand::fill(dest).map_err(|_| snow::Error::Rng)
    }
}

/// An X25519 key pair. snow asks for the private bytes back (`privkey`), so
/// they are kept beside the parsed key.
#[derive(Default)]
struct X25519Key {
    private: [u8; 32],
    public: [u8; 32],
    key: Option<PrivateKey>,
}

impl X25519Key {
    fn load(&mut self, private: &[u8]) -> Result<(), snow::Error> {
        let key = PrivateKey::from_private_key(&X25519, private).map_err(|_| snow::Error::Dh)?;
        let public = key.compute_public_key().map_err(|_| snow::Error::Dh)?;
        self.public.copy_from_slice(public.as_ref());
        self.private.copy_from_slice(private);
        self.key = Some(key);
        Ok(())
    }
}

impl Drop for X25519Key {
    fn drop(&mut self) {
        // The parsed key is wiped by aws-lc; this copy is ours to wipe.
        self.private.fill(0);
        std::hint::black_box(&self.private);
    }
}

impl Dh for X25519Key {
    fn name(&self) -> &'static str {
        "25519"
    }
    fn pub_len(&self) -> usize {
        32
    }
    fn priv_len(&self) -> usize {
        32
    }
    fn set(&mut self, privkey: &[u8]) {
        if self.load(privkey).is_err() {
            // A later `dh` fails: no key is set.
            self.key = None;
        }
    }
    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut private = [0u8; 32];
        rng.try_fill_bytes(&mut private)?;
        let loaded = self.load(&private);
        private.fill(0);
        loaded
    }
    fn pubkey(&self) -> &[u8] {
        &self.public
    }
    fn privkey(&self) -> &[u8] {
        &self.private
    }
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let key = self.key.as_ref().ok_or(snow::Error::Dh)?;
        // snow hands over a buffer sized for its largest curve: the key is the start.
        let pubkey = pubkey.get(..32).ok_or(snow::Error::Dh)?;
        // aws-lc refuses a peer key of low order (an all-zero shared secret).
        agreement::agree(
            key,
            UnparsedPublicKey::new(&X25519, pubkey),
            snow::Error::Dh,
            |secret| {
                out.get_mut(..secret.len())
                    .ok_or(snow::Error::Dh)?
                    .copy_from_slice(secret);
                Ok(())
            },
        )
    }
}

#[derive(Default)]
struct ChaChaPoly {
    key: Option<LessSafeKey>,
}

const TAG_LEN: usize = 16;

/// Noise's ChaChaPoly nonce: 32 zero bits, then the counter little-endian.
fn noise_nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    bytes[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(bytes)
}

impl Cipher for ChaChaPoly {
    fn name(&self) -> &'static str {
        "ChaChaPoly"
    }
    fn set(&mut self, key: &[u8; 32]) {
        self.key = UnboundKey::new(&CHACHA20_POLY1305, key)
            .ok()
            .map(LessSafeKey::new);
    }
    fn encrypt(&self, nonce: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        let (Some(key), Some(body)) = (&self.key, out.get_mut(..plaintext.len())) else {
            return 0;
        };
        body.copy_from_slice(plaintext);
        let Ok(tag) = key.seal_in_place_separate_tag(noise_nonce(nonce), Aad::from(authtext), body)
        else {
            return 0;
        };
        match out.get_mut(plaintext.len()..plaintext.len() + TAG_LEN) {
            Some(slot) => {
                slot.copy_from_slice(tag.as_ref());
                plaintext.len() + TAG_LEN
            }
            None => 0,
        }
    }
    fn decrypt(
        &self,
        nonce: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let key = self.key.as_ref().ok_or(snow::Error::Decrypt)?;
        let body_len = ciphertext
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(snow::Error::Decrypt)?;
        let (body, tag) = ciphertext.split_at(body_len);
        let out = out.get_mut(..body_len).ok_or(snow::Error::Decrypt)?;
        key.open_separate_gather(noise_nonce(nonce), Aad::from(authtext), body, tag, out)
            .map_err(|_| snow::Error::Decrypt)?;
        Ok(body_len)
    }
}

struct Sha256 {
    context: digest::Context,
}

impl Default for Sha256 {
    fn default() -> Self {
        Self {
            context: digest::Context::new(&digest::SHA256),
        }
    }
}

impl Hash for Sha256 {
    fn name(&self) -> &'static str {
        "SHA256"
    }
    fn block_len(&self) -> usize {
        64
    }
    fn hash_len(&self) -> usize {
        32
    }
    fn reset(&mut self) {
        self.context = digest::Context::new(&digest::SHA256);
    }
    fn input(&mut self, data: &[u8]) {
        self.context.update(data);
    }
    fn result(&mut self, out: &mut [u8]) {
        let done =
            std::mem::replace(&mut self.context, digest::Context::new(&digest::SHA256)).finish();
        if let Some(out) = out.get_mut(..done.as_ref().len()) {
            out.copy_from_slice(done.as_ref());
        }
    }
    fn hmac(&mut self, key: &[u8], data: &[u8], out: &mut [u8]) {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
        if let Some(out) = out.get_mut(..tag.as_ref().len()) {
            out.copy_from_slice(tag.as_ref());
        }
    }
}
