//! Wrappers around a real adapter that observe it or make it fail on purpose.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
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
