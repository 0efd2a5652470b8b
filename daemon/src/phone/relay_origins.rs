//! The relay's origins, shared with the LAN transport: the app the daemon
//! serves on the LAN may open connections to its relay and nowhere else
//! (its Content-Security-Policy names them), and the relay can change while
//! the daemon runs (`loopsy relay configure`).

use std::sync::{Arc, RwLock};

use loopsy_webapp::ConnectSources;

#[derive(Clone, Default)]
pub struct RelayOrigins(Arc<RwLock<Vec<String>>>);

impl RelayOrigins {
    /// Now the relay at `url` (or none).
    pub fn set(&self, url: Option<&str>) {
        let origins = url.map(loopsy_webapp::origins_of).unwrap_or_default();
        // A poisoned lock still holds a whole Vec: writing over it is safe.
        match self.0.write() {
            Ok(mut held) => *held = origins,
            Err(poisoned) => *poisoned.into_inner() = origins,
        }
    }

    /// What the app's pages are told they may connect to.
    pub fn sources(&self) -> ConnectSources {
        let shared = self.0.clone();
        Arc::new(move || match shared.read() {
            Ok(held) => held.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sources_follow_the_relay() {
        let origins = RelayOrigins::default();
        let sources = origins.sources();
        assert!(sources().is_empty());
        origins.set(Some("https://relay.example.com/"));
        assert_eq!(
            sources(),
            ["https://relay.example.com", "wss://relay.example.com"]
        );
        origins.set(None);
        assert!(sources().is_empty());
    }
}
