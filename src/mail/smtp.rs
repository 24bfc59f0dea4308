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
    /// How long one send may take in all: lettre's own timeout bounds only the
    /// TCP connect on async transports, not a server that then stops answering.
    timeout: Duration,
}

impl SmtpMailer {
    /// `url`: `smtp://[user:pass@]host[:port]` (STARTTLS when `?tls=required`) or `smtps://…`.
    /// `timeout` (`BLOG_MAIL_TIMEOUT`) bounds the connect and each whole send, so a
    /// server that stops answering fails the attempt (retried) instead of holding it.
    pub fn new(url: &str, from: &str, timeout: Duration) -> anyhow::Result<Self> {
        // The URL holds credentials: errors name the setting, never echo it.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("BLOG_SMTP_URL: not a usable SMTP URL ({e})"))?
            .timeout(Some(timeout))
            .build();
        let from = sender(from)?;
        Ok(Self { transport, from, timeout })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = build_message(&self.from, mail)?;
        let Ok(sent) = tokio::time::timeout(self.timeout, self.transport.send(message)).await else {
            let waited = self.timeout.as_secs_f64();
            return Err(MailError::Transient(format!("SMTP: no answer within {waited} s (BLOG_MAIL_TIMEOUT)")));
        };
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Rejected(format!("SMTP server refused: {e}"))),
            Err(e) => Err(MailError::Transient(format!("SMTP: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A mail server that accepts connections and never says a word: its socket
    /// is open, so only a timeout ends the wait.
    async fn silent_server() -> (u16, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        (port, held)
    }

    #[tokio::test]
    async fn a_server_that_never_answers_fails_the_attempt_as_transient_within_the_timeout() {
        let (port, server) = silent_server().await;
        let timeout = Duration::from_millis(300);
        let mailer = SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), "Blog <no-reply@blog.local>", timeout).unwrap();
        let mail = OutgoingMail {
            message_id: "order-A-1@blog.local".into(),
            to_name: "Ada Lovelace".into(),
            to_email: "ada@example.com".into(),
            subject: "Your order A-1 is on its way".into(),
            text_body: "Hello Ada".into(),
            html_body: "<p>Hello Ada</p>".into(),
        };
        let started = Instant::now();
        // The outer bound only keeps a broken timeout from hanging the suite.
        let sent = tokio::time::timeout(Duration::from_secs(20), mailer.send(&mail)).await.expect("the send gave up by itself");
        assert!(matches!(sent, Err(MailError::Transient(_))), "{sent:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        server.abort();
    }
}
