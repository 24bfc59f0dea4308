//! The embedded mailer: each mail becomes an .eml file in a folder.

use std::path::PathBuf;

use async_trait::async_trait;
use blog_actors::ports::{MailError, Mailer, OutgoingMail};
use lettre::message::Mailbox;

use super::message::{build_message, sender};

/// Writes `<message id>.eml` files; the name repeats for the same order, so a
/// redelivered event finds its file there rather than adding a second one.
pub struct FileMailer {
    /// The folder the files go to; created at start.
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    pub fn new(dir: PathBuf, from: &str) -> anyhow::Result<Self> {
        crate::durable_dir::create_durable_dir(&dir).map_err(|e| anyhow::anyhow!("creating mail dir {}: {e}", dir.display()))?;
        let from = sender(from)?;
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
        let partial = self.dir.join(format!(".{name}.{}.partial", uuid::Uuid::new_v4().simple()));
        // The reason reaches the dead-letter list and the logs: it names no host path.
        let io = |e: std::io::Error| MailError::Transient(format!("writing the .eml file: {e}"));
        // Written aside and synced, then linked into place: a reader never sees half
        // a mail, and a link never replaces a file already there. The name is unique
        // per order (the mail id carries a hash of the order id), so a file already
        // there is this order's mail from an earlier attempt.
        let written = async {
            let file = tokio::fs::File::create(&partial).await?;
            let mut file = tokio::io::BufWriter::new(file);
            tokio::io::AsyncWriteExt::write_all(&mut file, &message.formatted()).await?;
            tokio::io::AsyncWriteExt::flush(&mut file).await?;
            file.into_inner().sync_all().await?;
            match tokio::fs::hard_link(&partial, &path).await {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            // The new name must be durable too before the mail counts as sent.
            tokio::fs::File::open(&self.dir).await?.sync_all().await
        }
        .await;
        let _ = tokio::fs::remove_file(&partial).await;
        written.map_err(io)
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

    /// A mailer writing into a fresh temporary directory (kept alive by the returned guard).
    fn temp_mailer() -> (tempfile::TempDir, FileMailer) {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(dir.path().to_owned(), "Blog <no-reply@blog.local>").unwrap();
        (dir, mailer)
    }

    #[tokio::test]
    async fn a_mail_becomes_one_eml_file_named_after_its_message_id() {
        let (dir, mailer) = temp_mailer();
        mailer.send(&mail("ada@example.com")).await.unwrap();
        mailer.send(&mail("ada@example.com")).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files, vec![std::ffi::OsString::from("order-A-1_blog.local.eml")]);
        let text = std::fs::read_to_string(dir.path().join("order-A-1_blog.local.eml")).unwrap();
        assert!(text.contains("To: \"Ada Lovelace\" <ada@example.com>"), "{text}");
        assert!(text.contains("Message-ID: <order-A-1@blog.local>"), "{text}");
    }

    #[tokio::test]
    async fn a_mail_already_there_is_never_replaced() {
        let (dir, mailer) = temp_mailer();
        mailer.send(&mail("ada@example.com")).await.unwrap();
        mailer.send(&mail("eve@example.com")).await.unwrap();
        let text = std::fs::read_to_string(dir.path().join("order-A-1_blog.local.eml")).unwrap();
        assert!(text.contains("ada@example.com") && !text.contains("eve@example.com"), "{text}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "no partial file left behind: {names:?}");
    }

    #[tokio::test]
    async fn a_failed_write_names_no_host_path() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(dir.path().join("mail"), "Blog <no-reply@blog.local>").unwrap();
        std::fs::remove_dir(dir.path().join("mail")).unwrap();
        let err = mailer.send(&mail("ada@example.com")).await.unwrap_err();
        assert!(matches!(err, MailError::Transient(_)), "{err}");
        assert!(!err.to_string().contains(&*dir.path().to_string_lossy()), "{err}");
    }

    #[tokio::test]
    async fn an_unusable_address_is_rejected_for_good() {
        let (_dir, mailer) = temp_mailer();
        assert!(matches!(mailer.send(&mail("ada@@example")).await, Err(MailError::Rejected(_))));
    }
}
