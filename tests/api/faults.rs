//! Wrappers around a real adapter that observe it or make it fail on purpose.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use blog::adapters::Adapters;
use blog_actors::ports::{Applied, MailError, Mailer, OutgoingMail, PostView, ReadModelStore, StoreError};
use uuid::Uuid;

/// Fails the first `failures` sends with a transient error, then sends for real;
/// remembers when each call came.
pub struct FlakyMailer {
    pub inner: Arc<dyn Mailer>,
    pub failures_left: AtomicU32,
    pub calls: Arc<Mutex<Vec<Instant>>>,
}

impl FlakyMailer {
    pub fn new(inner: Arc<dyn Mailer>, failures: u32) -> Self {
        Self { inner, failures_left: AtomicU32::new(failures), calls: Arc::default() }
    }

    /// Puts a flaky mailer in front of the app's own; the handle shows the test how it was called.
    pub fn install(adapters: &mut Adapters, failures: u32) -> Arc<Self> {
        let flaky = Arc::new(Self::new(adapters.mailer.clone(), failures));
        adapters.mailer = flaky.clone();
        flaky
    }
}

#[async_trait]
impl Mailer for FlakyMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.calls.lock().unwrap().push(Instant::now());
        let failing = self.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if failing {
            return Err(MailError::Transient("421 try again later (injected)".into()));
        }
        self.inner.send(mail).await
    }
}

/// Panics on the first `panics` upserts, then projects for real.
pub struct PanickingReadModel {
    pub inner: Arc<dyn ReadModelStore>,
    pub panics_left: AtomicU32,
}

#[async_trait]
impl ReadModelStore for PanickingReadModel {
    async fn upsert_post_view(&self, view: &PostView) -> Result<Applied, StoreError> {
        if self.panics_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            panic!("injected projector panic for post {}", view.id);
        }
        self.inner.upsert_post_view(view).await
    }

    async fn remove_post_view(&self, post_id: Uuid, version: i64) -> Result<Applied, StoreError> {
        self.inner.remove_post_view(post_id, version).await
    }
}

/// Panics on the first `panics` sends of orders whose id starts with `BOOM`; other
/// sends take `delay` first, so several are in flight when the panic comes.
pub struct PanickingMailer {
    pub inner: Arc<dyn Mailer>,
    pub panics_left: AtomicU32,
    pub delay: std::time::Duration,
}

#[async_trait]
impl Mailer for PanickingMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        if mail.message_id.starts_with("order-BOOM")
            && self.panics_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            panic!("injected mailer panic");
        }
        tokio::time::sleep(self.delay).await; // holds the send in flight, as a slow SMTP server would
        self.inner.send(mail).await
    }
}

/// Refuses every mail the way an SMTP server answers 550, quoting the recipient.
pub struct RejectingMailer;

#[async_trait]
impl Mailer for RejectingMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        Err(MailError::Rejected(format!("550 5.1.1 <{}>: Recipient address rejected", mail.to_email)))
    }
}
