//! The pairing QR code for a terminal: half blocks (two modules per character
//! cell), drawn black on white with explicit colours so that it reads the same
//! on dark and light terminal themes, small enough for an 80×24 window.

use anyhow::Context;
use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// Most terminal rows the code may take: a 24-row window.
const MOST_ROWS: usize = 24;
/// Black modules on a white ground (256-colour palette entries 16 and 231,
/// which themes do not remap), then back to the terminal's own colours.
const BLACK_ON_WHITE: &str = "\x1b[38;5;16;48;5;231m";
const RESET: &str = "\x1b[0m";

/// The QR code of `text`, with the error correction that still fits 24 rows
/// (M where it does, else L). Without colour (`NO_COLOR` set) the blocks are
/// drawn in the terminal's foreground, which reads right on light themes only.
pub fn for_terminal(text: &str, colour: bool) -> anyhow::Result<String> {
    let fits = |code: &QrCode| (code.width() + 8).div_ceil(2) <= MOST_ROWS;
    let code = [EcLevel::M, EcLevel::L]
        .into_iter()
        .filter_map(|level| QrCode::with_error_correction_level(text.as_bytes(), level).ok())
        .find(fits)
        .map_or_else(
            || QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L),
            Ok,
        )
        .context("the pairing URL does not fit in a QR code")?;
    let art = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Dark)
        .light_color(Dense1x2::Light)
        .quiet_zone(true)
        .build();
    if !colour {
        return Ok(art);
    }
    Ok(art
        .lines()
        .map(|line| format!("{BLACK_ON_WHITE}{line}{RESET}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Whether to colour: unless `NO_COLOR` is set (https://no-color.org).
pub fn colour_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_link_fits_an_80_by_24_window() {
        let url = format!("https://relay.example.com:8443/app/#{}", "A".repeat(44));
        for colour in [true, false] {
            let art = for_terminal(&url, colour).expect("a code");
            let lines: Vec<&str> = art.lines().collect();
            assert!(lines.len() <= 24, "{} rows", lines.len());
            for line in lines {
                let shown = line.replace(BLACK_ON_WHITE, "").replace(RESET, "");
                assert!(
                    shown.chars().count() <= 80,
                    "{} columns",
                    shown.chars().count()
                );
            }
        }
    }
}
