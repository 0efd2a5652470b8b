//! What the relay and a laptop (daemon) say to each other on the laptop's one
//! WebSocket, and what the relay says to a phone. The relay multiplexes every
//! phone channel of a device over the laptop socket: binary frames carry a
//! channel number and opaque end-to-end bytes, text frames carry the control
//! messages below. Nothing here is ever plaintext of a session.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Largest WebSocket frame the relay and the daemon accept (1 MiB).
pub const MAX_FRAME: usize = 1 << 20;
/// Subprotocol both sides speak; offered beside the bearer.
pub const SUBPROTOCOL: &str = "loopsy.relay.v1";
/// Prefix of the `Sec-WebSocket-Protocol` entry that carries a bearer secret
/// (browsers cannot set headers on a WebSocket).
pub const BEARER_PROTOCOL_PREFIX: &str = "loopsy.bearer.";

/// WebSocket close codes of the relay.
pub mod close {
    /// Another laptop connection of the same device replaced this one.
    pub const REPLACED: u16 = 4001;
    /// The phone was revoked.
    pub const REVOKED: u16 = 4003;
    /// The laptop is not connected (or went away).
    pub const DEVICE_OFFLINE: u16 = 4004;
    /// The pairing was refused or its token is dead.
    pub const PAIRING_REFUSED: u16 = 4006;
    /// The laptop closed this channel.
    pub const CLOSED_BY_DEVICE: u16 = 4007;
    /// The phone read too slowly and its queue overflowed.
    pub const TOO_SLOW: u16 = 4008;
    /// No frame and no pong within the idle timeout.
    pub const IDLE: u16 = 4009;
    /// The device has as many phone or pairing sockets as the relay allows.
    pub const DEVICE_FULL: u16 = 4010;
    /// The laptop's phones now reach another node of a fleet: reconnect
    /// (through the balancer) to meet them there.
    pub const MOVED: u16 = 4011;
    /// A frame larger than the relay takes (RFC 6455 "message too big").
    pub const TOO_BIG: u16 = 1009;
}

/// A binary frame on the laptop socket: `u32 BE channel | payload`.
pub fn channel_frame(channel: u32, payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(4 + payload.len());
    frame.put_u32(channel);
    frame.put_slice(payload);
    frame.freeze()
}

/// Splits a laptop-socket binary frame into its channel and payload.
pub fn split_channel_frame(mut frame: Bytes) -> Option<(u32, Bytes)> {
    if frame.len() < 4 {
        return None;
    }
    let header = frame.split_to(4);
    Some((
        u32::from_be_bytes([header[0], header[1], header[2], header[3]]),
        frame,
    ))
}

/// Which kind of phone socket a channel belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum ChannelKind {
    /// A phone pairing with a one-time token (identified by its id, never the token).
    Pairing { token_id: String },
    /// A paired phone connecting.
    Phone { phone_id: String },
}

/// Relay → laptop control messages (text frames).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum ToLaptop {
    /// A phone socket opened; its frames arrive on `channel`.
    Open {
        channel: u32,
        #[serde(flatten)]
        kind: ChannelKind,
    },
    /// A phone socket closed.
    Close { channel: u32 },
    /// The pairing on `channel` is complete: the relay minted this phone id.
    Paired { channel: u32, phone_id: String },
    /// A phone was revoked (by the owner through the relay's API).
    Revoked { phone_id: String },
}

/// Laptop → relay control messages (text frames).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum FromLaptop {
    /// Close a phone's channel.
    Close { channel: u32 },
    /// The daemon accepted the pairing on `channel` (code checked): mint the
    /// phone's relay credentials and burn the token.
    PairAccept { channel: u32 },
    /// The daemon ends the pairing on `channel` and its token (too many wrong codes).
    PairKill { channel: u32 },
    /// Revoke a phone now (closes its sockets).
    Revoke { phone_id: String },
}

/// Relay → phone control messages (text frames; everything else a phone gets
/// is binary end-to-end bytes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum ToPhone {
    /// After a pairing: the phone's credentials for connecting through the relay.
    Credentials {
        device_id: String,
        phone_id: String,
        phone_secret: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_short_ones_are_refused() {
        let frame = channel_frame(7, b"sealed");
        assert_eq!(
            split_channel_frame(frame),
            Some((7, Bytes::from_static(b"sealed")))
        );
        assert_eq!(split_channel_frame(Bytes::from_static(b"abc")), None);
    }

    #[test]
    fn control_messages_are_tagged() -> Result<(), serde_json::Error> {
        let open = ToLaptop::Open {
            channel: 1,
            kind: ChannelKind::Phone {
                phone_id: "p".into(),
            },
        };
        let text = serde_json::to_string(&open)?;
        assert_eq!(
            text,
            r#"{"type":"open","channel":1,"kind":"phone","phoneId":"p"}"#
        );
        assert_eq!(serde_json::from_str::<ToLaptop>(&text)?, open);
        Ok(())
    }
}
