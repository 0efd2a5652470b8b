//! Pairing windows: what `loopsy mobile pair` opened and the daemon alone
//! knows — the pairing secret (also in the QR's fragment) and the 4-digit
//! code (only on the laptop's screen). The code is compared in constant time;
//! five wrong codes close the window for good.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use loopsy_transports::e2e::PairingSecret;
use serde_json::{Value, json};

/// Wrong codes a window allows.
pub const CODE_ATTEMPTS: u32 = 5;
/// How long a finished window's outcome stays readable.
const KEEP_OUTCOME: Duration = Duration::from_secs(600);

enum Outcome {
    Waiting,
    /// The right code came; the relay is minting the phone's id.
    Accepted,
    Paired {
        phone_id: String,
        label: Option<String>,
        fingerprint: String,
    },
    Dead,
}

struct Window {
    secret: [u8; 32],
    code: String,
    expires: Instant,
    wrong: u32,
    outcome: Outcome,
}

pub enum CodeCheck {
    Right,
    Wrong {
        attempts_left: u32,
    },
    /// That was the last allowed wrong code.
    Dead,
    /// No open window (expired, finished, or never opened).
    Closed,
}

#[derive(Default)]
pub struct PairingWindows {
    windows: HashMap<String, Window>,
}

/// A uniformly random 4-digit code.
fn random_code() -> Option<String> {
    loop {
        let bytes = crate::secrets::random_bytes::<2>().ok()?;
        let value = u16::from_be_bytes(bytes);
        // Reject the top of the range so every code is equally likely.
        if value < 60_000 {
            return Some(format!("{:04}", value % 10_000));
        }
    }
}

impl PairingWindows {
    fn purge(&mut self) {
        let now = Instant::now();
        self.windows.retain(|_, w| now < w.expires + KEEP_OUTCOME);
    }

    /// Opens a window for a relay token with its pairing secret; returns its code.
    pub fn open(&mut self, token_id: &str, secret: PairingSecret, ttl: Duration) -> Option<String> {
        self.purge();
        let code = random_code()?;
        self.windows.insert(
            token_id.to_owned(),
            Window {
                secret: secret.0,
                code: code.clone(),
                expires: Instant::now() + ttl,
                wrong: 0,
                outcome: Outcome::Waiting,
            },
        );
        Some(code)
    }

    fn open_window(&mut self, token_id: &str) -> Option<&mut Window> {
        self.windows
            .get_mut(token_id)
            .filter(|w| matches!(w.outcome, Outcome::Waiting) && Instant::now() < w.expires)
    }

    /// The secret of an open window.
    pub fn secret(&mut self, token_id: &str) -> Option<PairingSecret> {
        self.open_window(token_id).map(|w| PairingSecret(w.secret))
    }

    pub fn check_code(&mut self, token_id: &str, offered: &str) -> CodeCheck {
        let Some(window) = self.open_window(token_id) else {
            return CodeCheck::Closed;
        };
        if verify_slices_are_equal(window.code.as_bytes(), offered.as_bytes()).is_ok() {
            // One phone per window: no other channel may use it from now on.
            window.outcome = Outcome::Accepted;
            return CodeCheck::Right;
        }
        window.wrong += 1;
        if window.wrong >= CODE_ATTEMPTS {
            window.outcome = Outcome::Dead;
            window.secret.fill(0);
            return CodeCheck::Dead;
        }
        CodeCheck::Wrong {
            attempts_left: CODE_ATTEMPTS - window.wrong,
        }
    }

    /// Whether `token_id`'s window took the right code and awaits its phone id.
    pub fn accepted(&self, token_id: &str) -> bool {
        self.windows
            .get(token_id)
            .is_some_and(|w| matches!(w.outcome, Outcome::Accepted))
    }

    /// Records the phone a window paired; only a window whose code was accepted.
    pub fn complete(
        &mut self,
        token_id: &str,
        phone_id: &str,
        label: Option<String>,
        fingerprint: String,
    ) -> bool {
        match self.windows.get_mut(token_id) {
            Some(window) if matches!(window.outcome, Outcome::Accepted) => {
                window.secret.fill(0);
                window.outcome = Outcome::Paired {
                    phone_id: phone_id.to_owned(),
                    label,
                    fingerprint,
                };
                true
            }
            _ => false,
        }
    }

    /// `mobile.pairStatus`: waiting, paired (with the phone), expired, dead.
    pub fn status(&mut self, token_id: &str) -> Option<Value> {
        self.purge();
        let window = self.windows.get(token_id)?;
        Some(match &window.outcome {
            Outcome::Paired {
                phone_id,
                label,
                fingerprint,
            } => json!({
                "state": "paired", "phoneId": phone_id, "label": label, "fingerprint": fingerprint,
            }),
            Outcome::Dead => json!({ "state": "dead", "wrongCodes": window.wrong }),
            Outcome::Waiting | Outcome::Accepted if Instant::now() >= window.expires => {
                json!({ "state": "expired" })
            }
            Outcome::Waiting | Outcome::Accepted => {
                json!({ "state": "waiting", "wrongCodes": window.wrong })
            }
        })
    }
}

impl Drop for PairingWindows {
    fn drop(&mut self) {
        for window in self.windows.values_mut() {
            window.secret.fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_codes_close_the_window() {
        let mut windows = PairingWindows::default();
        let Some(code) = windows.open("t", PairingSecret([5; 32]), Duration::from_secs(60)) else {
            panic!("no window");
        };
        assert_eq!(code.len(), 4);
        let wrong = if code == "0000" { "1111" } else { "0000" };
        for left in (1..CODE_ATTEMPTS).rev() {
            assert!(
                matches!(windows.check_code("t", wrong), CodeCheck::Wrong { attempts_left } if attempts_left == left)
            );
        }
        assert!(matches!(windows.check_code("t", wrong), CodeCheck::Dead));
        assert!(
            matches!(windows.check_code("t", &code), CodeCheck::Closed),
            "the right code is too late"
        );
        assert!(windows.secret("t").is_none());
    }

    #[test]
    fn an_expired_window_takes_no_code() {
        let mut windows = PairingWindows::default();
        let Some(code) = windows.open("t", PairingSecret([5; 32]), Duration::ZERO) else {
            panic!("no window");
        };
        assert!(matches!(windows.check_code("t", &code), CodeCheck::Closed));
        assert_eq!(
            windows.status("t").map(|s| s["state"].clone()),
            Some(json!("expired"))
        );
    }
}
