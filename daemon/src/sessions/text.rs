//! Session output as text an agent reads: escape sequences stripped, and
//! bytes cut where a UTF-8 character is whole.

/// Terminal output without its escape sequences (CSI, OSC, two-byte escapes)
/// and carriage returns that only redraw a line.
pub fn strip_ansi(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ST (ESC \).
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // Charset designations take one more byte.
                Some('(' | ')' | '*' | '+') => {
                    chars.next();
                }
                _ => {}
            },
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => out.push('\n'),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// How many bytes of `bytes` end on a whole character: an incomplete
/// sequence at the end (a read that stopped inside a character) is left for
/// the next read.
pub fn whole_chars(bytes: &[u8]) -> usize {
    let len = bytes.len();
    // The last character's lead byte is within its last 4 bytes.
    for back in 1..=len.min(4) {
        let lead = bytes[len - back];
        let width = match lead {
            0x00..=0x7f => return len,
            0x80..=0xbf => continue,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        };
        return if back < width { len - back } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_stripped_and_text_kept() {
        assert_eq!(
            strip_ansi("\u{1b}[1;31mred\u{1b}[0m \u{1b}]0;title\u{7}ok\r\n50%\r60%\u{1b}(B"),
            "red ok\n50%\n60%"
        );
    }

    #[test]
    fn a_read_never_ends_inside_a_character() {
        let euro = "a€".as_bytes();
        assert_eq!(whole_chars(euro), 4);
        assert_eq!(whole_chars(&euro[..3]), 1);
        assert_eq!(whole_chars(&[0xff, b'x', 0xe2, 0x82]), 2);
    }
}
