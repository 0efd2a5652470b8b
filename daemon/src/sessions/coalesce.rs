//! Output that cannot show is not parsed. When the emulator has fallen behind
//! a program that prints in bulk (`cat` of a big file, a build log), most of
//! the lines waiting for it will scroll out of the history before anyone can
//! see them. Parsing them is the session's costliest work, so the emulator
//! skips them, when that provably leaves the same screen and history:
//!
//! - the skipped bytes and the lines after them up to the cut-off count are
//!   plain: printable text (UTF-8), CR, LF, tab, backspace, bell and SGR
//!   colour sequences, nothing that moves the cursor elsewhere or changes a
//!   mode;
//! - after the skipped part come at least `history + 2 × rows` more line
//!   feeds, so whatever the skipped lines would have left on the screen or in
//!   the history is pushed out by later lines either way (each line feed
//!   moves the cursor down, at most `rows − 1` times, or scrolls one line
//!   out);
//! - the skip ends right after a CR LF, so the cursor column is 0 either way,
//!   and the skipped colour sequences are replayed, so the pen is the same;
//! - no scroll region is set (with one, line feeds below it do not scroll and
//!   skipped text could survive), which [`RegionWatch`] tracks over every byte
//!   the emulator sees.
//!
//! `tests` check the claim against full parsing on generated output.

/// Whether a scroll region (DECSTBM) may be in force on the screen in use
/// (the main and the alternate screen each have their own), from every byte
/// parsed. It errs on the side of "set": then nothing is skipped.
#[derive(Debug, Default)]
pub struct RegionWatch {
    state: Scan,
    /// The parameters of the control sequence being read (only the first few matter).
    params: Vec<u8>,
    alternate: bool,
    region: [bool; 2],
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Scan {
    #[default]
    Ground,
    Escape,
    /// Inside `ESC [`: whether a private marker was seen.
    Csi {
        private: bool,
    },
}

/// Parameters kept per sequence: enough for `?1049`.
const PARAMS_KEPT: usize = 32;

impl RegionWatch {
    /// Follows `bytes` as the emulator parses them.
    pub fn observe(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.state = match (self.state, byte) {
                (_, 0x1b) => Scan::Escape,
                (Scan::Escape, b'[') => {
                    self.params.clear();
                    Scan::Csi { private: false }
                }
                (Scan::Escape, b'c') => {
                    // RIS resets the whole terminal: regions, and back to the main screen.
                    self.region = [false; 2];
                    self.alternate = false;
                    Scan::Ground
                }
                (Scan::Escape, _) => Scan::Ground,
                (Scan::Csi { .. }, b'<'..=b'?') => Scan::Csi { private: true },
                (state @ Scan::Csi { .. }, b'0'..=b'9' | b';' | b':') => {
                    if self.params.len() < PARAMS_KEPT {
                        self.params.push(byte);
                    }
                    state
                }
                (state @ Scan::Csi { .. }, 0x20..=0x2f) => state,
                (Scan::Csi { private }, final_byte @ 0x40..=0x7e) => {
                    self.finish(private, final_byte);
                    Scan::Ground
                }
                (state @ Scan::Csi { .. }, _) => state,
                (Scan::Ground, _) => Scan::Ground,
            };
        }
    }

    fn finish(&mut self, private: bool, final_byte: u8) {
        match (private, final_byte) {
            // `CSI r` resets the region; with margins it sets one.
            (false, b'r') => self.region[usize::from(self.alternate)] = !self.params.is_empty(),
            (true, b'h' | b'l') => {
                let switches = self
                    .params
                    .split(|&b| b == b';')
                    .any(|p| matches!(p, b"47" | b"1047" | b"1049"));
                if switches {
                    self.alternate = final_byte == b'h';
                }
            }
            _ => {}
        }
    }

    pub fn region_set(&self) -> bool {
        self.region[usize::from(self.alternate)]
    }
}

/// What to parse instead of a batch: the colour sequences of the skipped
/// part, then the batch from `keep_from` on.
#[derive(Debug, PartialEq, Eq)]
pub struct Skip {
    pub keep_from: usize,
    pub pen: Vec<u8>,
}

/// Where `batch` may be cut (see the module's rules), if anywhere: at least
/// `history + 2 × rows` line feeds of plain output must follow the cut.
pub fn plan(batch: &[u8], rows: u16, history: usize, watch: &RegionWatch) -> Option<Skip> {
    if watch.region_set() || watch_mid_sequence(watch) {
        return None;
    }
    let needed = history + 2 * usize::from(rows);
    // Line feeds in the plain prefix: (position, preceded by CR).
    let mut feeds: Vec<(usize, bool)> = Vec::new();
    let mut at = 0;
    while at < batch.len() {
        match batch[at] {
            b'\n' => {
                feeds.push((at, at > 0 && batch[at - 1] == b'\r'));
                at += 1;
            }
            b'\r' | b'\t' | 0x08 | 0x07 | 0x20..=0x7e | 0x7f..=0xff => at += 1,
            0x1b => match sgr_end(&batch[at..]) {
                Some(length) => at += length,
                None => break,
            },
            _ => break,
        }
    }
    if feeds.len() <= needed {
        return None;
    }
    // The last CR LF with enough line feeds after it.
    let last_allowed = feeds.len() - 1 - needed;
    let cut_feed = (0..=last_allowed).rev().find(|&i| feeds[i].1)?;
    let keep_from = feeds[cut_feed].0 + 1;
    Some(Skip {
        keep_from,
        pen: pen_of(&batch[..keep_from]),
    })
}

/// A sequence the watch is in the middle of (split across batches) makes the
/// start of the next batch part of it: never cut then.
fn watch_mid_sequence(watch: &RegionWatch) -> bool {
    !matches!(watch.state, Scan::Ground)
}

/// The length of an SGR sequence (`ESC [ params m`) at the start of `bytes`.
fn sgr_end(bytes: &[u8]) -> Option<usize> {
    if bytes.get(1) != Some(&b'[') {
        return None;
    }
    for (i, &b) in bytes.iter().enumerate().skip(2) {
        match b {
            b'0'..=b'9' | b';' | b':' => {}
            b'm' => return Some(i + 1),
            _ => return None,
        }
    }
    None
}

/// The colour sequences of plain output, from its last full reset on (those
/// before a reset cannot matter).
fn pen_of(plain: &[u8]) -> Vec<u8> {
    let mut pen = Vec::new();
    let mut at = 0;
    while let Some(offset) = plain[at..].iter().position(|&b| b == 0x1b) {
        let start = at + offset;
        let Some(length) = sgr_end(&plain[start..]) else {
            at = start + 1;
            continue;
        };
        let sequence = &plain[start..start + length];
        if sequence == b"\x1b[m" || sequence == b"\x1b[0m" {
            pen.clear();
        }
        pen.extend_from_slice(sequence);
        at = start + length;
    }
    pen
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROWS: u16 = 10;
    const COLS: u16 = 30;
    const HISTORY: usize = 25;

    fn parser() -> vt100::Parser {
        vt100::Parser::new(
            std::num::NonZeroU16::new(ROWS).unwrap_or(std::num::NonZeroU16::MIN),
            std::num::NonZeroU16::new(COLS).unwrap_or(std::num::NonZeroU16::MIN),
            HISTORY,
        )
    }

    /// Everything a snapshot is made of: history, screen, pen, cursor, modes.
    fn state(parser: &mut vt100::Parser) -> String {
        let mut out = String::new();
        parser.screen_mut().set_scrollback(usize::MAX);
        let total = parser.screen().scrollback();
        for back in (1..=total).rev() {
            parser.screen_mut().set_scrollback(back);
            let first = parser
                .screen()
                .rows_formatted(0, COLS)
                .next()
                .unwrap_or_default();
            out.push_str(&first);
            out.push('\n');
        }
        parser.screen_mut().set_scrollback(0);
        out.push_str(&parser.screen().state_formatted());
        out.push_str(&parser.screen().attributes_formatted());
        out.push_str(&format!("{:?}", parser.screen().cursor_position()));
        out
    }

    /// Parses `before` then `batch`, fully and with the plan; the states must
    /// agree. Returns whether anything was skipped.
    fn agree(before: &[u8], batch: &[u8]) -> bool {
        let mut full = parser();
        full.process(before);
        full.process(batch);
        let mut quick = parser();
        let mut watch = RegionWatch::default();
        quick.process(before);
        watch.observe(before);
        let skip = plan(batch, ROWS, HISTORY, &watch);
        match &skip {
            Some(skip) => {
                quick.process(&skip.pen);
                quick.process(&batch[skip.keep_from..]);
            }
            None => quick.process(batch),
        }
        assert_eq!(state(&mut full), state(&mut quick), "skip {skip:?}");
        skip.is_some()
    }

    /// Deterministic pseudo-random output: text of every width (wide and
    /// combining characters too), colours, tabs, backspaces, long lines.
    fn output(seed: u64, lines: usize) -> Vec<u8> {
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pieces: [&str; 12] = [
            "plain words ",
            "\x1b[31mred\x1b[0m ",
            "\x1b[1;4;38;5;120mfancy",
            "\x1b[m",
            "漢字",
            "e\u{301}",
            "\t",
            "ab\x08c",
            "\x07",
            "x",
            "\x1b[48;2;10;20;30m",
            "a long run of text that wraps past the thirty columns of this terminal ",
        ];
        let mut out = Vec::new();
        for _ in 0..lines {
            for _ in 0..(next() % 5) {
                out.extend_from_slice(pieces[(next() % 12) as usize].as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn skipping_leaves_the_same_screen_history_pen_and_cursor() {
        let mut skipped = 0;
        for seed in 1..60u64 {
            let lines = 20 + (seed as usize * 7) % 200;
            let before = output(seed * 31, (seed % 7) as usize);
            if agree(&before, &output(seed, lines)) {
                skipped += 1;
            }
        }
        // Most batches are long enough to skip something.
        assert!(skipped > 30, "skipped in {skipped} cases");
    }

    #[test]
    fn the_tail_may_hold_anything_after_the_lines_it_needs() {
        let mut batch = output(7, 300);
        batch.extend_from_slice(b"\x1b[2J\x1b[5;5Hmoved\x1b[?1049halt screen");
        assert!(agree(b"", &batch));
    }

    #[test]
    fn a_scroll_region_or_a_short_batch_turns_skipping_off() {
        let batch = output(3, 300);
        // A region set earlier: lines below it do not scroll.
        assert!(!agree(b"\x1b[2;5r\x1b[9;1Hbelow the region", &batch));
        // Reset again: skipping is back.
        assert!(agree(b"\x1b[2;5r\x1b[r", &batch));
        assert!(agree(b"\x1b[2;5r\x1bc", &batch));
        // A region on the main screen survives a trip to the alternate one
        // whose own region was reset.
        assert!(!agree(
            b"\x1b[2;5r\x1b[?1049h\x1b[3;4r\x1b[r\x1b[?1049l\x1b[9;1Hbelow",
            &batch
        ));
        // One set on the alternate screen leaves the main screen free.
        assert!(agree(b"\x1b[?1049h\x1b[3;4r\x1b[?1049l", &batch));
        // Too few lines to push everything out.
        assert!(!agree(b"", &output(3, 40)));
    }

    #[test]
    fn cursor_moves_and_modes_in_the_prefix_turn_skipping_off() {
        for interruption in [
            &b"\x1b[H"[..],
            b"\x1b[?1049h",
            b"\x1b]0;title\x07",
            b"\x0e",
            b"\x1b(0",
            b"\x0b",
        ] {
            let mut batch = interruption.to_vec();
            batch.extend_from_slice(&output(5, 300));
            let skip = plan(&batch, ROWS, HISTORY, &RegionWatch::default());
            assert_eq!(skip, None, "{interruption:?}");
            agree(b"", &batch);
        }
    }

    #[test]
    fn a_sequence_split_across_batches_is_never_cut_into() {
        let mut watch = RegionWatch::default();
        watch.observe(b"text \x1b[3");
        assert_eq!(plan(&output(9, 300), ROWS, HISTORY, &watch), None);
        watch.observe(b"1mred");
        assert!(plan(&output(9, 300), ROWS, HISTORY, &watch).is_some());
    }

    #[test]
    fn a_colour_set_in_the_skipped_part_still_paints_what_follows() {
        let mut batch = b"\x1b[1;31mred from here on\r\n".to_vec();
        for n in 0..300 {
            batch.extend_from_slice(format!("line {n}\r\n").as_bytes());
        }
        batch.extend_from_slice(b"still red");
        assert!(agree(b"", &batch));
    }

    #[test]
    fn only_the_colours_after_the_last_reset_are_replayed() {
        assert_eq!(
            pen_of(b"a\x1b[31mb\x1b[0mc\x1b[1md\x1b[44me\r\n"),
            b"\x1b[0m\x1b[1m\x1b[44m"
        );
    }
}
