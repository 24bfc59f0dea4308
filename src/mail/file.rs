//! The embedded mailer: each mail becomes an .eml file in a folder.

use std::path::PathBuf;

use async_trait::async_trait;
use blog_actors::ports::{MailError, Mailer, OutgoingMail};
use lettre::message::Mailbox;

use super::message::build_message;

/// Writes `<message id>.eml` files; the name repeats for the same order, so a
/// redelivered event rewrites its file rather than adding a second one.
pub struct FileMailer {
    /// The folder the files go to; created at start.
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    pub fn new(dir: PathBuf, from: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("creating mail dir {}: {e}", dir.display()))?;
        let from = from.parse().map_err(|e| anyhow::anyhow!("BLOG_MAIL_FROM {from:?}: {e}"))?;
        Ok(Self { dir, from })
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = build_message(&self.from, mail)?;
        let name: String = mail
            .message_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
            .collect();
        let path = self.dir.join(format!("{name}.eml"));
        let partial = self.dir.join(format!(".{name}.eml.partial"));
        let io = |e: std::io::Error| MailError::Transient(format!("writing {}: {e}", path.display()));
        // Written aside, synced, then renamed: a reader never sees half a mail.
        let file = tokio::fs::File::create(&partial).await.map_err(io)?;
        let mut file = tokio::io::BufWriter::new(file);
        tokio::io::AsyncWriteExt::write_all(&mut file, &message.formatted()).await.map_err(io)?;
        tokio::io::AsyncWriteExt::flush(&mut file).await.map_err(io)?;
        file.into_inner().sync_all().await.map_err(io)?;
        tokio::fs::rename(&partial, &path).await.map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(to: &str) -> OutgoingMail {
        OutgoingMail {
            message_id: "order-A-1@blog.local".into(),
            to_name: "Ada Lovelace".into(),
            to_email: to.into(),
            subject: "Your order A-1 is on its way".into(),
            text_body: "Hello Ada".into(),
            html_body: "<p>Hello Ada</p>".into(),
        }
    }

    #[tokio::test]
    async fn a_mail_becomes_one_eml_file_named_after_its_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(dir.path().to_owned(), "Blog <no-reply@blog.local>").unwrap();
        mailer.send(&mail("ada@example.com")).await.unwrap();
        mailer.send(&mail("ada@example.com")).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files, vec![std::ffi::OsString::from("order-A-1_blog.local.eml")]);
        let text = std::fs::read_to_string(dir.path().join("order-A-1_blog.local.eml")).unwrap();
        assert!(text.contains("To: \"Ada Lovelace\" <ada@example.com>"), "{text}");
        assert!(text.contains("Message-ID: <order-A-1@blog.local>"), "{text}");
    }

    #[tokio::test]
    async fn an_unusable_address_is_rejected_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(dir.path().to_owned(), "Blog <no-reply@blog.local>").unwrap();
        assert!(matches!(mailer.send(&mail("ada@@example")).await, Err(MailError::Rejected(_))));
    }
}
