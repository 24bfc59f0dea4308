//! Turns a rendered mail into an RFC 5322 message with lettre.

use blog_actors::ports::{MailError, OutgoingMail};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::Message;

/// The sender every mail names, from the BLOG_MAIL_FROM setting (`Name <address>` or an address).
pub fn sender(from: &str) -> anyhow::Result<Mailbox> {
    from.parse().map_err(|e| anyhow::anyhow!("BLOG_MAIL_FROM {from:?}: {e}"))
}

/// Builds the message; an unusable address or header text is a permanent rejection.
/// Nothing here may panic: lettre's header rendering panics on a line break in a
/// display name, so header text is checked first.
pub fn build_message(from: &Mailbox, mail: &OutgoingMail) -> Result<Message, MailError> {
    for (header, text) in [("recipient name", &mail.to_name), ("subject", &mail.subject), ("Message-ID", &mail.message_id)] {
        if text.chars().any(blog_actors::rules::text::is_forbidden) {
            return Err(MailError::Rejected(format!("the {header} holds control characters")));
        }
    }
    let to_address = mail
        .to_email
        .parse()
        .map_err(|e| MailError::Rejected(format!("the recipient's address is not usable: {e}")))?;
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(Some(mail.to_name.clone()), to_address))
        .subject(&mail.subject)
        .message_id(Some(format!("<{}>", mail.message_id)))
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text_body.clone()))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(mail.html_body.clone())),
        )
        .map_err(|e| MailError::Rejected(format!("building the message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(name: &str, subject: &str) -> OutgoingMail {
        OutgoingMail {
            message_id: "order-A-1-0123456789ab@blog.local".into(),
            to_name: name.into(),
            to_email: "ada@example.com".into(),
            subject: subject.into(),
            text_body: "Hello".into(),
            html_body: "<p>Hello</p>".into(),
        }
    }

    #[test]
    fn header_breaking_text_never_panics_nor_injects_a_header() {
        let from: Mailbox = "Blog <no-reply@blog.local>".parse().unwrap();
        for (name, subject) in [("Eve\r\nBcc: all@example.com", "S"), ("Eve", "Order\r\nBcc: x@example.com"), ("\u{0}\u{7f}", "\n")] {
            let built = std::panic::catch_unwind(|| build_message(&from, &mail(name, subject)));
            let built = built.unwrap_or_else(|_| panic!("building a mail for {name:?} / {subject:?} panicked"));
            if let Ok(message) = built {
                let text = String::from_utf8_lossy(&message.formatted()).into_owned();
                assert!(!text.lines().any(|l| l.starts_with("Bcc:")), "{text}");
            }
        }
    }
}
