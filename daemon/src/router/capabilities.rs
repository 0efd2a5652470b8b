//! What each principal may do (DESIGN §3). Every principal holds an explicit
//! set; the Router checks the set before an operation runs, and the session
//! operations use it to decide what may be started and which sessions are seen.
//! This is a boundary: tests attack it with peer keys over the real HTTP API.

use std::fmt;

/// One right. Names are as `auth.allowedKeys.<peer>.capabilities` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Run commands (`/execute`, `exec.*`), within the command guard.
    Exec,
    /// Move files within `transfer.allowedPaths`.
    Transfer,
    /// The shared key/value context.
    Context,
    /// The message inbox (reserved for the messaging operations).
    Messages,
    /// Start the picker's agents (vetted arguments) and the owner's custom commands.
    SessionsAgents,
    /// Start a shell or any program in a session: equal to a shell on this machine.
    SessionsShell,
    /// See and drive every session, not only the ones this principal started.
    SessionsAll,
}

const ALL: [Capability; 7] = [
    Capability::Exec,
    Capability::Transfer,
    Capability::Context,
    Capability::Messages,
    Capability::SessionsAgents,
    Capability::SessionsShell,
    Capability::SessionsAll,
];

impl Capability {
    pub fn name(self) -> &'static str {
        match self {
            Self::Exec => "exec",
            Self::Transfer => "transfer",
            Self::Context => "context",
            Self::Messages => "messages",
            Self::SessionsAgents => "sessions:agents",
            Self::SessionsShell => "sessions:shell",
            Self::SessionsAll => "sessions:all",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of capabilities.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities(u8);

impl Capabilities {
    /// The owner: everything.
    pub const fn all() -> Self {
        Self(0x7f)
    }

    pub const fn none() -> Self {
        Self(0)
    }

    /// A peer key listed without capabilities: no sessions.
    pub fn peer_default() -> Self {
        Self::of(&[
            Capability::Exec,
            Capability::Transfer,
            Capability::Context,
            Capability::Messages,
        ])
    }

    /// A paired phone: it drives the owner's sessions (it is the owner's phone),
    /// and nothing outside sessions.
    pub fn phone() -> Self {
        Self::of(&[
            Capability::SessionsAgents,
            Capability::SessionsShell,
            Capability::SessionsAll,
        ])
    }

    pub fn of(list: &[Capability]) -> Self {
        Self(list.iter().fold(0, |bits, c| bits | c.bit()))
    }

    pub fn has(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }

    /// Whether any session right is held (the session operations need one).
    pub fn any_sessions(self) -> bool {
        self.has(Capability::SessionsAgents) || self.has(Capability::SessionsShell)
    }

    /// Parses config names; the error lists the names that exist.
    pub fn parse(names: &[String]) -> Result<Self, String> {
        let mut set = Self::none();
        for name in names {
            let capability = ALL
                .iter()
                .find(|c| c.name() == name.trim())
                .ok_or_else(|| {
                    format!(
                        "unknown capability '{name}'; use {}",
                        ALL.map(Capability::name).join(", ")
                    )
                })?;
            set.0 |= capability.bit();
        }
        Ok(set)
    }

    pub fn names(self) -> Vec<&'static str> {
        ALL.iter()
            .filter(|c| self.has(**c))
            .map(|c| c.name())
            .collect()
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// What an operation needs beyond authentication (the table in `operations` says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing more (health, identity, status; owner-only checks come apart).
    Nothing,
    One(Capability),
    /// Some session right; the session operations then decide what exactly.
    Sessions,
}

impl Capabilities {
    /// Whether this set meets `need`.
    pub fn meets(self, need: Need) -> bool {
        match need {
            Need::Nothing => true,
            Need::One(capability) => self.has(capability),
            Need::Sessions => self.any_sessions(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        let names: Vec<String> = ALL.iter().map(|c| c.name().to_owned()).collect();
        assert_eq!(Capabilities::parse(&names), Ok(Capabilities::all()));
        assert_eq!(Capabilities::all().names().len(), ALL.len());
        assert!(Capabilities::parse(&["sessions".into()]).is_err());
        assert!(Capabilities::parse(&["EXEC".into()]).is_err());
        let default = Capabilities::peer_default();
        assert!(default.has(Capability::Exec) && !default.any_sessions());
        assert!(!Capabilities::phone().has(Capability::Exec));
        assert!(!Capabilities::none().any_sessions());
    }
}
