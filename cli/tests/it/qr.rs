//! The QR code `loopsy up` prints, read back as a phone's camera would: the
//! output drawn as a terminal shows it (80 columns, a dark or a light theme),
//! turned into an image and decoded with a real decoder (rqrr, a port of quirc).

use std::io::BufRead;
use std::process::Stdio;

use crate::harness::*;

/// What a theme draws when the output sets no colour: (foreground, background) grey.
const DARK_THEME: (u8, u8) = (230, 20);
const LIGHT_THEME: (u8, u8) = (20, 250);

/// `loopsy up`'s output up to the code line, with `env` set.
fn up_output(env: &[(&str, &str)]) -> Vec<String> {
    let loopsy = Loopsy::new();
    let relay_port = free_port().to_string();
    let port = free_port().to_string();
    let mut up = loopsy.command(&["up", "--relay-port", &relay_port, "--port", &port]);
    up.envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = KillOnDrop(up.spawn().expect("spawn up"));
    let lines = std::io::BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let mut out = Vec::new();
    for line in lines {
        let line = line.expect("a line");
        let done = line.starts_with("Then type this code on the phone:");
        out.push(line);
        if done {
            return out;
        }
    }
    panic!("`loopsy up` ended before printing a code: {out:#?}");
}

/// One character cell: its text and the colours the output set, if any.
struct Cell {
    glyph: char,
    colours: Option<(u8, u8)>,
}

/// The cells of a line, reading the two SGR sequences the QR code uses.
fn cells(line: &str) -> Vec<Cell> {
    let mut out = Vec::new();
    let mut colours = None;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("\x1b[") {
            let end = after.find('m').expect("an SGR sequence");
            colours = match &after[..end] {
                "38;5;16;48;5;231" => Some((0, 255)),
                "0" => None,
                other => panic!("an unexpected SGR sequence {other:?}"),
            };
            rest = &after[end + 1..];
            continue;
        }
        out.push(Cell { glyph: c, colours });
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The QR code's lines: those made of half blocks only.
fn qr_lines(output: &[String]) -> Vec<&String> {
    output
        .iter()
        .filter(|l| {
            let shown: Vec<Cell> = cells(l);
            shown.len() > 20 && shown.iter().all(|c| " ▀▄█".contains(c.glyph))
        })
        .collect()
}

/// Decodes `lines` drawn in `theme`, each module 4×4 pixels, inside a margin of
/// the theme's background.
fn decode(lines: &[&String], theme: (u8, u8)) -> Option<String> {
    const SCALE: usize = 4;
    const MARGIN: usize = 16;
    let rows: Vec<Vec<Cell>> = lines.iter().map(|l| cells(l)).collect();
    let width = rows.iter().map(Vec::len).max()? * SCALE + 2 * MARGIN;
    let height = rows.len() * 2 * SCALE + 2 * MARGIN;
    let pixel = |x: usize, y: usize| -> u8 {
        if x < MARGIN || y < MARGIN {
            return theme.1;
        }
        let (column, half) = ((x - MARGIN) / SCALE, (y - MARGIN) / SCALE);
        let Some(cell) = rows.get(half / 2).and_then(|r| r.get(column)) else {
            return theme.1;
        };
        let (fg, bg) = cell.colours.unwrap_or(theme);
        let top = half % 2 == 0;
        let inked = match cell.glyph {
            '█' => true,
            '▀' => top,
            '▄' => !top,
            _ => false,
        };
        if inked { fg } else { bg }
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, pixel);
    let grids = image.detect_grids();
    let (_, content) = grids.first()?.decode().ok()?;
    Some(content)
}

#[test]
fn up_prints_a_code_that_fits_80_by_24_and_scans_on_dark_and_light_themes() {
    let output = up_output(&[]);
    let url = output
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("http://") && l.contains("/app/#"))
        .expect("the pairing URL")
        .to_owned();
    assert!(url.len() <= 120, "{} characters: {url}", url.len());
    let qr = qr_lines(&output);
    assert!(!qr.is_empty(), "no QR code in {output:#?}");
    assert!(qr.len() <= 24, "the code takes {} rows", qr.len());
    for line in &output {
        assert!(cells(line).len() <= 80, "wider than 80 columns: {line:?}");
    }
    // Said before the code: it opens only on this machine (no --lan).
    let warning = output
        .iter()
        .position(|l| l.contains("on this machine only"))
        .expect("the loopback warning");
    let first_qr = output.iter().position(|l| l == qr[0]).expect("the code");
    assert!(warning < first_qr, "the warning comes after the code");
    for theme in [DARK_THEME, LIGHT_THEME] {
        assert_eq!(
            decode(&qr, theme).as_deref(),
            Some(url.as_str()),
            "theme {theme:?}"
        );
    }
}

#[test]
fn without_colour_the_code_still_scans_on_a_light_theme() {
    let output = up_output(&[("NO_COLOR", "1")]);
    let qr = qr_lines(&output);
    assert!(
        qr.iter().all(|l| !l.contains('\x1b')),
        "NO_COLOR was ignored"
    );
    let decoded = decode(&qr, LIGHT_THEME).expect("decodes on a light theme");
    assert!(decoded.contains("/app/#"), "{decoded}");
}
