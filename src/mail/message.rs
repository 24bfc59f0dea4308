//! Turns a rendered mail into an RFC 5322 message with lettre.

use blog_actors::ports::{MailError, OutgoingMail};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::Message;

/// Builds the message; an unusable address is a permanent rejection.
pub fn build_message(from: &Mailbox, mail: &OutgoingMail) -> Result<Message, MailError> {
    let to_address = mail
        .to_email
        .parse()
        .map_err(|e| MailError::Rejected(format!("recipient {:?}: {e}", mail.to_email)))?;
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
