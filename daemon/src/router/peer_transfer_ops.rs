//! What streams through a `PeerLink` (`peers::link_transfer`):
//! `peers.transfer.push|pull`, the owner's files to and from a paired peer in
//! constant memory (the idle timeout is `transfer.idleTimeoutSec`), and
//! `peers.tunnel`, the owner's socket connection carried on to the peer's
//! framed connection. The peer's Router decides everything inside.

use std::time::Duration;

use actix::fut::ActorFutureExt;
use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{Reply, UploadBody};
use serde_json::json;

use super::{Router, Work};
use crate::peers::link_push::PeerPush;
use crate::peers::link_transfer::PeerPull;

fn idle(router: &Router) -> Duration {
    Duration::from_secs(router.settings.config.transfer.idle_timeout_sec.max(1))
}

pub(super) fn push(
    router: &mut Router,
    peer: &str,
    dest_path: String,
    checksum: Option<String>,
    body: UploadBody,
) -> Work {
    let link = match router.peers.named(peer) {
        Ok((_, link)) => link,
        Err(e) => return Work::Done(Err(e)),
    };
    let idle = idle(router);
    super::peer_ops::later(async move {
        link.send(PeerPush {
            dest_path,
            checksum,
            body,
            idle,
        })
        .await
        .map_err(|_| ApiError::unavailable("the peer link stopped; try again"))?
    })
}

pub(super) fn pull(router: &mut Router, peer: &str, source_path: String) -> Work {
    let link = match router.peers.named(peer) {
        Ok((_, link)) => link,
        Err(e) => return Work::Done(Err(e)),
    };
    let idle = idle(router);
    let name = std::path::Path::new(&source_path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".to_owned());
    let asked = async move {
        link.send(PeerPull { source_path, idle })
            .await
            .map_err(|_| ApiError::unavailable("the peer link stopped; try again"))?
    };
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(asked).map(
        move |answer, _, _| {
            answer
                .map(|(size, stream)| Reply::streaming(json!({"size": size, "name": name}), stream))
        },
    )))
}

pub(super) fn tunnel(
    router: &mut Router,
    peer: &str,
    to_peer: tokio::sync::mpsc::Receiver<loopsy_transports::framing::Frame>,
    back: tokio::sync::mpsc::Sender<loopsy_transports::framing::Frame>,
) -> Work {
    let (node_id, link) = match router.peers.named(peer) {
        Ok(found) => found,
        Err(e) => return Work::Done(Err(e)),
    };
    super::peer_ops::later(async move {
        link.send(crate::peers::link_transfer::OpenTunnel { to_peer, back })
            .await
            .map_err(|_| ApiError::unavailable("the peer link stopped; try again"))??;
        Ok(json!({"tunnel": node_id}))
    })
}
