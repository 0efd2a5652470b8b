//! Output that cannot show is not parsed. When the emulator has fallen behind
//! a program that prints in bulk (`cat` of a big file, a build log), most of
//! the lines waiting for it will scroll out of the history before anyone can
//! see them. Parsing them is the session's costliest work, so the emulator
//! skips them, when that provably leaves the same screen and history:
//!
//! - the parser is on the ground (not inside an escape, a control sequence or
//!   a string) when the batch starts, and no scroll region is in force on the
//!   screen in use (with one, line feeds below it do not scroll and skipped
//!   text could survive); [`RegionWatch`] follows both over every byte the
//!   emulator parses;
//! - the skipped bytes and the lines after them up to the cut-off count are
//!   plain: printable text (UTF-8), CR, LF, tab, backspace, bell and SGR
//!   colour sequences, nothing that moves the cursor elsewhere or changes a
//!   mode;
//! - after the skipped part come at least `history + 2 × rows + grow_margin`
//!   more line feeds, so whatever the skipped lines would have left on the
//!   screen or in the history is pushed out by later lines either way (each
//!   line feed moves the cursor down, at most `rows − 1` times, or scrolls one
//!   line out), and vt100's count of lines scrolled out (it pulls that many
//!   back when the screen grows) stays above what one resize can pull;
//! - the skip ends right after a CR LF; a CR and the skipped colour sequences
//!   are parsed in its place, so the column and the pen are the same.
//!
//! `tests` check the claim against full parsing on generated output, also
//! after the screen grows. What is not the same: the exact count of lines
//! vt100 has scrolled out, which only matters if the screen then grows by more
//! rows in total (beyond what shrinking pushed back) than `grow_margin`.

/// What the emulator's parser is in the middle of, and whether a scroll region
/// may be in force on the screen in use (main and alternate each have their
/// own), from exactly the bytes the emulator parses. Sequences are read by a
/// second `vte` parser, the one vt100 uses, so they are understood as vt100
/// understands them; the parser's state (inside a string, a control sequence,
/// an escape) is followed byte by byte after vte's state table, since vte does
/// not show it. It errs on the side of "a region is set": then nothing is skipped.
#[derive(Default)]
pub struct RegionWatch {
    parser: vte::Parser,
    screens: Screens,
    state: VtState,
}

#[derive(Debug, Default)]
struct Screens {
    alternate: bool,
    region: [bool; 2],
}

impl vte::Perform for Screens {
    fn csi_dispatch(&mut self, params: &vte::Params, intermediates: &[u8], _: bool, action: char) {
        match (intermediates.first(), action) {
            // DECSTBM: with margins other than the defaults, a region (vt100
            // treats margins that span the screen as none; this does not look).
            (None, 'r') => {
                let mut margins = params.iter().map(|p| p.first().copied().unwrap_or(0));
                let top = margins.next().unwrap_or(0);
                let bottom = margins.next().unwrap_or(0);
                self.region[usize::from(self.alternate)] = top > 1 || bottom != 0;
            }
            // The screens vt100 switches: 47 and 1049 (not 1047).
            (Some(b'?'), 'h' | 'l') => {
                for param in params.iter() {
                    if param == [47] || param == [1049] {
                        self.alternate = action == 'h';
                    }
                }
            }
            _ => {}
        }
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], _: bool, byte: u8) {
        if intermediates.is_empty() && byte == b'c' {
            // RIS: vt100 starts a new screen.
            *self = Self::default();
        }
    }
}

/// vte's parser states (vte 0.15), for knowing when it is back on the ground.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum VtState {
    #[default]
    Ground,
    Escape,
    EscapeIntermediate,
    CsiEntry,
    CsiParam,
    CsiIntermediate,
    CsiIgnore,
    DcsEntry,
    DcsParam,
    DcsIntermediate,
    DcsIgnore,
    DcsPassthrough,
    OscString,
    SosPmApcString,
}

/// The states of a control sequence (CSI) or a device control string (DCS),
/// which vte reads alike up to the final byte.
struct Family {
    param: VtState,
    intermediate: VtState,
    ignore: VtState,
    /// Where the final byte leads.
    done: VtState,
}

const CSI: Family = Family {
    param: VtState::CsiParam,
    intermediate: VtState::CsiIntermediate,
    ignore: VtState::CsiIgnore,
    done: VtState::Ground,
};

const DCS: Family = Family {
    param: VtState::DcsParam,
    intermediate: VtState::DcsIntermediate,
    ignore: VtState::DcsIgnore,
    done: VtState::DcsPassthrough,
};

impl VtState {
    /// vte's entry, parameter and intermediate states of a CSI or DCS.
    fn in_sequence(self, byte: u8, family: Family) -> Self {
        match byte {
            0x00..=0x17 | 0x19 | 0x1c..=0x1f | 0x7f => self,
            0x20..=0x2f => family.intermediate,
            0x30..=0x3f if self == family.intermediate => family.ignore,
            0x3c..=0x3f if self == family.param => family.ignore,
            0x30..=0x3f => family.param,
            0x40..=0x7e => family.done,
            0x18 | 0x1a => VtState::Ground,
            0x1b => VtState::Escape,
            _ => self,
        }
    }

    /// vte's transition on `byte` (its `advance_*` functions, state only).
    fn next(self, byte: u8) -> Self {
        use VtState::*;
        // Bytes that vte executes (or drops) without leaving the state.
        let c0 = matches!(byte, 0x00..=0x17 | 0x19 | 0x1c..=0x1f);
        // vte's `anywhere`: CAN and SUB abort to the ground, ESC starts over.
        let anywhere = |state: Self| match byte {
            0x18 | 0x1a => Ground,
            0x1b => Escape,
            _ => state,
        };
        match self {
            Ground => {
                if byte == 0x1b {
                    Escape
                } else {
                    Ground
                }
            }
            Escape => match byte {
                0x20..=0x2f => EscapeIntermediate,
                0x50 => DcsEntry,
                0x58 | 0x5e | 0x5f => SosPmApcString,
                0x5b => CsiEntry,
                0x5d => OscString,
                0x30..=0x7e => Ground,
                0x18 | 0x1a => Ground,
                _ => Escape,
            },
            EscapeIntermediate => match byte {
                _ if c0 => self,
                0x20..=0x2f | 0x7f => self,
                0x30..=0x7e => Ground,
                _ => anywhere(self),
            },
            CsiEntry | CsiParam | CsiIntermediate => self.in_sequence(byte, CSI),
            CsiIgnore => match byte {
                _ if c0 => self,
                0x20..=0x3f | 0x7f => self,
                0x40..=0x7e => Ground,
                _ => anywhere(self),
            },
            DcsEntry | DcsParam | DcsIntermediate => self.in_sequence(byte, DCS),
            DcsIgnore | SosPmApcString => anywhere(self),
            DcsPassthrough => match byte {
                0x18 | 0x1a | 0x9c => Ground,
                0x1b => Escape,
                _ => self,
            },
            OscString => match byte {
                0x07 | 0x18 | 0x1a => Ground,
                0x1b => Escape,
                _ => self,
            },
        }
    }
}

impl RegionWatch {
    /// Follows `bytes` as the emulator parses them.
    pub fn observe(&mut self, bytes: &[u8]) {
        self.parser.advance(&mut self.screens, bytes);
        for &byte in bytes {
            self.state = self.state.next(byte);
        }
    }

    /// Whether a region may be in force, or the parser is inside a sequence
    /// (then the next bytes are not text, whatever they look like).
    fn unsafe_to_cut(&self) -> bool {
        self.screens.region[usize::from(self.screens.alternate)] || self.state != VtState::Ground
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
/// `history + 2 × rows + grow_margin` line feeds of plain output must follow
/// the cut (`grow_margin`: the most rows a later resize can add).
pub fn plan(
    batch: &[u8],
    rows: u16,
    history: usize,
    grow_margin: u16,
    watch: &RegionWatch,
) -> Option<Skip> {
    if watch.unsafe_to_cut() {
        return None;
    }
    let needed = history + 2 * usize::from(rows) + usize::from(grow_margin);
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

/// What stands in for the skipped part: a carriage return (the skipped part
/// ended at column 0), then its colour sequences from the last full reset on
/// (those before a reset cannot matter).
fn pen_of(plain: &[u8]) -> Vec<u8> {
    let mut pen = b"\r".to_vec();
    let mut at = 0;
    while let Some(offset) = plain[at..].iter().position(|&b| b == 0x1b) {
        let start = at + offset;
        let Some(length) = sgr_end(&plain[start..]) else {
            at = start + 1;
            continue;
        };
        let sequence = &plain[start..start + length];
        if sequence == b"\x1b[m" || sequence == b"\x1b[0m" {
            pen.truncate(1);
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
        vt100::Parser::new(nonzero(ROWS), nonzero(COLS), HISTORY)
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

    /// The most rows these tests grow the screen by after a batch.
    const GROW: u16 = 2 * ROWS;

    /// Parses `before` then `batch`, fully and with the plan; the states must
    /// agree, then and after the screen grows (vt100 pulls lines back out of
    /// its history then). Returns whether anything was skipped.
    fn agree(before: &[u8], batch: &[u8]) -> bool {
        let mut full = parser();
        full.process(before);
        full.process(batch);
        let mut quick = parser();
        let mut watch = RegionWatch::default();
        quick.process(before);
        watch.observe(before);
        let skip = plan(batch, ROWS, HISTORY, GROW, &watch);
        match &skip {
            Some(skip) => {
                quick.process(&skip.pen);
                quick.process(&batch[skip.keep_from..]);
            }
            None => quick.process(batch),
        }
        assert_eq!(state(&mut full), state(&mut quick), "skip {skip:?}");
        for parser in [&mut full, &mut quick] {
            parser
                .screen_mut()
                .set_size(nonzero(ROWS + GROW), nonzero(COLS));
        }
        assert_eq!(
            state(&mut full),
            state(&mut quick),
            "after growing; skip {skip:?}"
        );
        skip.is_some()
    }

    fn nonzero(n: u16) -> std::num::NonZeroU16 {
        std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN)
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
            let skip = plan(&batch, ROWS, HISTORY, GROW, &RegionWatch::default());
            assert_eq!(skip, None, "{interruption:?}");
            agree(b"", &batch);
        }
    }

    #[test]
    fn a_sequence_split_across_batches_is_never_cut_into() {
        for (open, close) in [
            (&b"text \x1b[3"[..], &b"1mred"[..]),
            (b"\x1b]0;a title that goes o", b"n\x07"),
            (b"\x1bP1$r", b"q\x1b\\"),
            (b"\x1b_private", b"\x18"),
            (b"\x1b", b"7"),
        ] {
            let mut watch = RegionWatch::default();
            watch.observe(open);
            assert_eq!(
                plan(&output(9, 300), ROWS, HISTORY, GROW, &watch),
                None,
                "{open:?}"
            );
            let mut batch = close.to_vec();
            batch.extend_from_slice(&output(9, 300));
            agree(open, &batch);
            watch.observe(close);
            assert!(
                plan(&output(9, 300), ROWS, HISTORY, GROW, &watch).is_some(),
                "{open:?}"
            );
        }
    }

    /// Records whether vte printed the probe character last.
    #[derive(Default)]
    struct Probe {
        printed_x: bool,
    }

    impl vte::Perform for Probe {
        fn print(&mut self, c: char) {
            self.printed_x = c == 'x';
        }
    }

    #[test]
    fn the_state_machine_knows_when_vte_is_on_the_ground() {
        // On the ground vte prints a following `x`; in any sequence or string
        // it does not (it is a final byte, a string byte, or ignored).
        let alphabet = b"\x1b\x07\x18\x1a\x9c\x7f\x00\x0a[]P^_X@?;:0123 /\\cmra";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            for _ in 0..(1 + x % 12) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let mut watch = RegionWatch::default();
            watch.observe(&bytes);
            let mut parser = vte::Parser::new();
            let mut probe = Probe::default();
            parser.advance(&mut probe, &bytes);
            probe.printed_x = false;
            parser.advance(&mut probe, b"x");
            assert_eq!(watch.state == VtState::Ground, probe.printed_x, "{bytes:?}");
        }
    }

    #[test]
    fn the_kept_part_starts_at_column_zero_as_it_would_have() {
        // Bare line feeds keep the column: a staircase from where the cursor is.
        let mut batch = b"\r\n".to_vec();
        batch.extend_from_slice(&b"x\n".repeat(300));
        assert!(agree(b"abc", &batch));
    }

    #[test]
    fn regions_are_read_as_vt100_reads_them() {
        let batch = output(4, 300);
        // 1047 does not switch screens in vt100: the main screen's region stays.
        assert!(!agree(b"\x1b[2;5r\x1b[?1047h\x1b[9;1Hbelow", &batch));
        // A control inside the escape does not end it.
        assert!(!agree(b"\x1b\x07[2;5r\x1b[9;1Hbelow", &batch));
        // CAN cancels the sequence: no region was set.
        assert!(agree(b"\x1b[2;5\x18r", &batch));
        // `>` is not `?`: no switch to the alternate screen.
        assert!(!agree(b"\x1b[2;5r\x1b[>1049h\x1b[9;1Hbelow", &batch));
        // A long parameter list still switches, as it does in vt100.
        let mut long = b"\x1b[?1049h\x1b[3;4r\x1b[?".to_vec();
        long.extend_from_slice(&b"1;".repeat(40));
        long.extend_from_slice(b"1049l");
        agree(&long, &batch);
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
            b"\r\x1b[0m\x1b[1m\x1b[44m"
        );
    }
}
