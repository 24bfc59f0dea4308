//! Keeping credentials and personal data out of what is printed or served: a URL
//! is shown with its user-info replaced (`postgres://admin:pw@db` reads
//! `postgres://***@db`), and an error text (a mail server's answer, say) loses the
//! mail addresses it quotes before it is logged or kept as an actor's last error.

/// The URL with any `user:password@` replaced by `***@`; text that is not a URL
/// (no `scheme://`) is hidden whole when it holds an `@`, which may be a credential.
pub fn url(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return if text.contains('@') { "***".into() } else { text.to_owned() };
    };
    // The authority ends at the first '/', '?' or '#'; a credential may hold any of the
    // others, so cut at the last '@' inside it.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://***@{}{path}", &authority[at + 1..]),
        None => text.to_owned(),
    }
}

/// Every `scheme://user:pass@` inside a longer text (an error a library wrote) redacted.
pub fn urls_in(text: &str) -> String {
    text.split(' ').map(|word| if word.contains("://") { url(word) } else { word.to_owned() }).collect::<Vec<_>>().join(" ")
}

/// The text with every word that holds an `@` outside a URL (a mail address,
/// bracketed or quoted) replaced by `<address>`.
pub fn addresses_in(text: &str) -> String {
    text.split(' ')
        .map(|word| if word.contains('@') && !word.contains("://") { "<address>".to_owned() } else { word.to_owned() })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_survive() {
        for (raw, shown) in [
            ("postgres://admin:Hunter2pw@db.example:5432/blog", "postgres://***@db.example:5432/blog"),
            ("amqp://guest:guest@127.0.0.1:5672", "amqp://***@127.0.0.1:5672"),
            ("mongodb://u:p@ss@h1,h2/?replicaSet=rs", "mongodb://***@h1,h2/?replicaSet=rs"),
            ("amqp://127.0.0.1:5672", "amqp://127.0.0.1:5672"),
            ("user:secret@host", "***"),
        ] {
            assert_eq!(url(raw), shown, "{raw}");
        }
        assert_eq!(urls_in("cannot reach \"amqp://a:b@h\" now"), "cannot reach \"amqp://***@h\" now");
    }

    #[test]
    fn addresses_are_taken_out_of_error_texts() {
        assert_eq!(
            addresses_in("SMTP server refused: 550 <ada@example.com>: no such user"),
            "SMTP server refused: 550 <address> no such user"
        );
        assert_eq!(addresses_in("store: timed out"), "store: timed out");
    }
}
