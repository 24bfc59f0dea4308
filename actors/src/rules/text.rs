//! Characters no text field may hold, and length bounds counted in characters.

/// Control characters (C0, C1, DEL), line and paragraph separators, and the
/// bidirectional controls that make text read differently from how it is
/// stored (a spoofed name in a mail, a reversed order id in a log line).
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{061C}' | '\u{200E}' | '\u{200F}')
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// A one-line field (a title, a name, an id): not blank, at most `max` characters,
/// nothing [`is_forbidden`]. The error says what is wrong without repeating the value.
pub fn check_line(value: &str, max: usize) -> Result<(), String> {
    check(value, max, is_forbidden)
}

/// A multi-line field (a description): like [`check_line`], but newlines and tabs are allowed.
pub fn check_multiline(value: &str, max: usize) -> Result<(), String> {
    check(value, max, |c| is_forbidden(c) && !matches!(c, '\n' | '\r' | '\t'))
}

fn check(value: &str, max: usize, forbidden: impl Fn(char) -> bool) -> Result<(), String> {
    // The byte length bounds the character count from above: no need to count a huge value.
    if value.len() > max * 4 || value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().any(forbidden) {
        return Err("must not contain control or bidirectional-control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_bidi_controls_are_refused_in_a_line() {
        for bad in ["Eve\r\nBcc: x", "a\u{0}b", "\u{202E}gnp.exe", "x\u{2028}y", "del\u{7f}", "c1\u{85}"] {
            assert!(check_line(bad, 100).is_err(), "{bad:?}");
        }
        assert!(check_line("Ada Lovelace", 100).is_ok());
        assert!(check_line("Zoë Ñandú 李", 100).is_ok());
    }

    #[test]
    fn a_multiline_field_keeps_its_newlines_but_not_other_controls() {
        assert!(check_multiline("one\ntwo\r\n\tthree", 100).is_ok());
        assert!(check_multiline("bell\u{7}", 100).is_err());
    }

    #[test]
    fn bounds_count_characters_and_blank_is_empty() {
        assert!(check_line(&"é".repeat(10), 10).is_ok());
        assert_eq!(check_line(&"é".repeat(11), 10).unwrap_err(), "must be at most 10 characters");
        assert_eq!(check_line("  ", 10).unwrap_err(), "must not be empty");
    }
}
