//! The production mailer: SMTP through lettre. A 4xx answer or a lost
//! connection is transient (retried by the queue); a 5xx answer is permanent
//! (the message is parked).

use std::time::Duration;

use async_trait::async_trait;
use blog_actors::ports::{MailError, Mailer, OutgoingMail};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::message::{build_message, sender};

pub struct SmtpMailer {
    /// Pooled connections; TLS and credentials come from the URL.
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// `url`: `smtp://[user:pass@]host[:port]` (STARTTLS when `?tls=required`) or `smtps://…`.
    /// `timeout` (`BLOG_MAIL_TIMEOUT`) bounds each exchange with the server, so a
    /// server that stops answering fails the attempt (retried) instead of holding it.
    pub fn new(url: &str, from: &str, timeout: Duration) -> anyhow::Result<Self> {
        // The URL holds credentials: errors name the setting, never echo it.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("BLOG_SMTP_URL: not a usable SMTP URL ({e})"))?
            .timeout(Some(timeout))
            .build();
        let from = sender(from)?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = build_message(&self.from, mail)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Rejected(format!("SMTP server refused: {e}"))),
            Err(e) => Err(MailError::Transient(format!("SMTP: {e}"))),
        }
    }
}
