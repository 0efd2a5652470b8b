//! Handshakes and the encrypted channel that follows them.

use snow::params::NoiseParams;
use snow::{Builder, HandshakeState, TransportState};

use super::keys::{PairingSecret, StaticKey};
use super::resolver::AwsLcResolver;

pub const PAIRING_PATTERN: &str = "Noise_XXpsk3_25519_ChaChaPoly_SHA256";
pub const CONNECTION_PATTERN: &str = "Noise_KK_25519_ChaChaPoly_SHA256";
/// Largest Noise message (the Noise limit).
pub const MAX_MESSAGE: usize = 65_535;
/// Largest plaintext one message carries (the AEAD tag takes 16 bytes).
pub const MAX_PLAINTEXT: usize = MAX_MESSAGE - 16;
/// Each direction rekeys after this many messages (Noise's `REKEY`).
const REKEY_EVERY: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    #[error("the end-to-end handshake failed: {0}")]
    Handshake(String),
    #[error(
        "an encrypted frame did not open (altered, replayed, reordered or missing one before it); the channel is closed"
    )]
    Decrypt,
    #[error("the channel is closed after an earlier failure; open a new connection")]
    Broken,
    #[error("a frame of {0} bytes is over the channel's limit of {MAX_PLAINTEXT}")]
    TooLarge(usize),
    #[error("the other side's key is not the expected one")]
    WrongPeer,
    #[error("a key is not a valid X25519 key")]
    BadKey,
    #[error("the system random source failed")]
    Random,
    #[error("{0}")]
    Link(String),
}

/// Binds a pairing to its device and token: both ends must agree on them or
/// the handshake fails.
pub fn pairing_prologue(device_id: &str, token_id: &str) -> Vec<u8> {
    format!("loopsy pairing v1\n{device_id}\n{token_id}").into_bytes()
}

/// Binds a connection to its device and phone, so that a relay cannot present
/// one phone's handshake as another's.
pub fn connection_prologue(device_id: &str, phone_id: &str) -> Vec<u8> {
    format!("loopsy connection v1\n{device_id}\n{phone_id}").into_bytes()
}

fn params(pattern: &str) -> Result<NoiseParams, E2eError> {
    pattern
        .parse()
        .map_err(|e: snow::Error| E2eError::Handshake(e.to_string()))
}

fn failed(e: snow::Error) -> E2eError {
    E2eError::Handshake(e.to_string())
}

/// A handshake in progress.
pub struct Handshake {
    state: HandshakeState,
}

impl Handshake {
    fn build(
        pattern: &str,
        local: &StaticKey,
        remote: Option<&[u8; 32]>,
        psk: Option<&PairingSecret>,
        prologue: &[u8],
        initiator: bool,
    ) -> Result<Self, E2eError> {
        let mut builder = Builder::with_resolver(params(pattern)?, Box::new(AwsLcResolver))
            .local_private_key(local.private())
            .map_err(failed)?
            .prologue(prologue)
            .map_err(failed)?;
        if let Some(remote) = remote {
            builder = builder.remote_public_key(remote).map_err(failed)?;
        }
        if let Some(psk) = psk {
            builder = builder.psk(3, &psk.0).map_err(failed)?;
        }
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        };
        Ok(Self {
            state: state.map_err(failed)?,
        })
    }

    /// The phone's side of pairing (it speaks first).
    pub fn pairing_phone(
        phone: &StaticKey,
        secret: &PairingSecret,
        prologue: &[u8],
    ) -> Result<Self, E2eError> {
        Self::build(PAIRING_PATTERN, phone, None, Some(secret), prologue, true)
    }

    /// The daemon's side of pairing.
    pub fn pairing_daemon(
        daemon: &StaticKey,
        secret: &PairingSecret,
        prologue: &[u8],
    ) -> Result<Self, E2eError> {
        Self::build(PAIRING_PATTERN, daemon, None, Some(secret), prologue, false)
    }

    /// Either side of a pairing between two daemons (the joining one initiates),
    /// keyed by the invite code's secret.
    pub fn pairing_between_daemons(
        local: &StaticKey,
        secret: &PairingSecret,
        prologue: &[u8],
        initiator: bool,
    ) -> Result<Self, E2eError> {
        Self::build(
            PAIRING_PATTERN,
            local,
            None,
            Some(secret),
            prologue,
            initiator,
        )
    }

    /// The phone's side of a connection to a daemon it paired with.
    pub fn connection_phone(
        phone: &StaticKey,
        daemon: &[u8; 32],
        prologue: &[u8],
    ) -> Result<Self, E2eError> {
        Self::build(
            CONNECTION_PATTERN,
            phone,
            Some(daemon),
            None,
            prologue,
            true,
        )
    }

    /// The daemon's side of a connection from a paired phone.
    pub fn connection_daemon(
        daemon: &StaticKey,
        phone: &[u8; 32],
        prologue: &[u8],
    ) -> Result<Self, E2eError> {
        Self::build(
            CONNECTION_PATTERN,
            daemon,
            Some(phone),
            None,
            prologue,
            false,
        )
    }

    /// The next handshake message, carrying `payload`.
    pub fn write(&mut self, payload: &[u8]) -> Result<Vec<u8>, E2eError> {
        let mut message = vec![0u8; MAX_MESSAGE];
        let n = self
            .state
            .write_message(payload, &mut message)
            .map_err(failed)?;
        message.truncate(n);
        Ok(message)
    }

    /// Reads the other side's handshake message; returns its payload.
    pub fn read(&mut self, message: &[u8]) -> Result<Vec<u8>, E2eError> {
        if message.len() > MAX_MESSAGE {
            return Err(E2eError::TooLarge(message.len()));
        }
        let mut payload = vec![0u8; MAX_MESSAGE];
        let n = self
            .state
            .read_message(message, &mut payload)
            .map_err(failed)?;
        payload.truncate(n);
        Ok(payload)
    }

    pub fn is_finished(&self) -> bool {
        self.state.is_handshake_finished()
    }

    /// The other side's static key, once the handshake revealed it.
    pub fn remote_static(&self) -> Option<[u8; 32]> {
        self.state
            .get_remote_static()
            .and_then(|key| key.try_into().ok())
    }

    /// The hash of the whole handshake (the same on both sides).
    pub fn hash(&self) -> Vec<u8> {
        self.state.get_handshake_hash().to_vec()
    }

    pub fn into_channel(self) -> Result<Channel, E2eError> {
        Ok(Channel {
            transport: self.state.into_transport_mode().map_err(failed)?,
            sent: 0,
            received: 0,
            broken: false,
        })
    }
}

/// An established channel: one sealed Noise message per frame, in order.
pub struct Channel {
    transport: TransportState,
    sent: u64,
    received: u64,
    broken: bool,
}

impl Channel {
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, E2eError> {
        if self.broken {
            return Err(E2eError::Broken);
        }
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(E2eError::TooLarge(plaintext.len()));
        }
        let mut message = vec![0u8; plaintext.len() + 16];
        let n = match self.transport.write_message(plaintext, &mut message) {
            Ok(n) => n,
            Err(_) => {
                self.broken = true;
                return Err(E2eError::Broken);
            }
        };
        message.truncate(n);
        self.sent += 1;
        if self.sent.is_multiple_of(REKEY_EVERY) {
            self.transport.rekey_outgoing();
        }
        Ok(message)
    }

    /// Opens the next message. Any failure closes the channel for good: the
    /// implicit counters make a replayed, reordered or dropped frame fail here.
    pub fn open(&mut self, message: &[u8]) -> Result<Vec<u8>, E2eError> {
        if self.broken {
            return Err(E2eError::Broken);
        }
        if message.len() > MAX_MESSAGE {
            self.broken = true;
            return Err(E2eError::TooLarge(message.len()));
        }
        let mut plaintext = vec![0u8; message.len()];
        match self.transport.read_message(message, &mut plaintext) {
            Ok(n) => {
                plaintext.truncate(n);
                self.received += 1;
                if self.received.is_multiple_of(REKEY_EVERY) {
                    self.transport.rekey_incoming();
                }
                Ok(plaintext)
            }
            Err(_) => {
                self.broken = true;
                Err(E2eError::Decrypt)
            }
        }
    }

    /// The other side's static key.
    pub fn remote_static(&self) -> Option<[u8; 32]> {
        self.transport
            .get_remote_static()
            .and_then(|key| key.try_into().ok())
    }
}
