//! End-to-end encryption of the phone channel (DESIGN §5, `docs/security.md`).
//!
//! Two Noise patterns over the suite `25519_ChaChaPoly_SHA256`, run by snow
//! with primitives from aws-lc-rs ([`resolver`]):
//! - pairing, once per phone: `Noise_XXpsk3`, keyed by the secret in the QR
//!   code's URL fragment, so only a party that saw the QR completes it;
//! - every connection: `Noise_KK`, both static keys known, fresh ephemeral
//!   keys each time (mutual authentication and forward secrecy).
//!
//! [`frames`] carries the framed JSON-RPC protocol inside a channel;
//! [`pairing_link`] is what the QR code carries and what is derived from it.
//!
//! After the handshake a [`Channel`] seals and opens one Noise transport
//! message per relay frame. A message that fails to open (altered, replayed,
//! reordered, dropped before it) breaks the channel for good.

mod channel;
pub mod frames;
mod keys;
pub mod pairing_link;
pub mod resolver;

pub use channel::{
    CONNECTION_PATTERN, Channel, E2eError, Handshake, MAX_MESSAGE, MAX_PLAINTEXT, PAIRING_PATTERN,
    connection_prologue, pairing_prologue,
};
pub use keys::{PairingSecret, StaticKey, fingerprint};
