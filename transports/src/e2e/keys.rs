//! Long-term X25519 keys and pairing secrets.

use aws_lc_rs::agreement::{PrivateKey, X25519};
use aws_lc_rs::{digest, rand};

use super::E2eError;

/// A long-term X25519 key pair: the daemon's (in its data dir, `0600`) or a
/// phone's. The private half is wiped when dropped and never printed.
pub struct StaticKey {
    private: [u8; 32],
    public: [u8; 32],
}

impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKey")
            .field("public", &fingerprint(&self.public))
            .finish_non_exhaustive()
    }
}

impl Drop for StaticKey {
    fn drop(&mut self) {
        self.private.fill(0);
        std::hint::black_box(&self.private);
    }
}

impl StaticKey {
    pub fn generate() -> Result<Self, E2eError> {
        let mut private = [0u8; 32];
        rand::fill(&mut private).map_err(|_| E2eError::Random)?;
        let key = Self::from_private(&private);
        private.fill(0);
        key
    }

    /// The key pair of a stored 32-byte private key.
    pub fn from_private(private: &[u8]) -> Result<Self, E2eError> {
        let parsed =
            PrivateKey::from_private_key(&X25519, private).map_err(|_| E2eError::BadKey)?;
        let public = parsed.compute_public_key().map_err(|_| E2eError::BadKey)?;
        let mut key = Self {
            private: [0; 32],
            public: [0; 32],
        };
        key.private.copy_from_slice(private);
        key.public.copy_from_slice(public.as_ref());
        Ok(key)
    }

    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The private half, for storing it (and for snow).
    pub fn private(&self) -> &[u8; 32] {
        &self.private
    }
}

/// What a user compares: the first 16 bytes of SHA-256 of a public key, as
/// eight groups of four hex digits.
pub fn fingerprint(public: &[u8]) -> String {
    let digest = digest::digest(&digest::SHA256, public);
    digest.as_ref()[..16]
        .chunks(2)
        .map(|pair| format!("{:02x}{:02x}", pair[0], pair[1]))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The 32-byte secret of one pairing, carried only in the QR code's URL
/// fragment (never sent to a server).
pub struct PairingSecret(pub [u8; 32]);

impl PairingSecret {
    pub fn generate() -> Result<Self, E2eError> {
        let mut secret = [0u8; 32];
        rand::fill(&mut secret).map_err(|_| E2eError::Random)?;
        Ok(Self(secret))
    }
}

impl Drop for PairingSecret {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

impl std::fmt::Debug for PairingSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairingSecret(..)")
    }
}
