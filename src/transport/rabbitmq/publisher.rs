//! The publishing side: one connection with a confirm channel, opened (and the
//! topology declared) at connect, reopened on the next use after it died.
//! The outbox relay, the CLI and the dead-letter admin share it.

use std::sync::{Arc, Mutex};

use blog_actors::delivery::TransportError;
use tokio_util::sync::CancellationToken;

use super::confirm::ConfirmChannel;
use super::connection::Link;
use super::nodes::InUse;
use super::message::event_properties;
use super::{topology, Config};
use crate::transport::OutgoingMessage;

/// One publishing connection's life.
pub(super) struct PubSession {
    pub link: Link,
    pub confirm: ConfirmChannel,
}

impl PubSession {
    async fn close(&self) {
        self.confirm.close().await;
        self.link.close().await;
    }
}

pub(super) struct PublishSide {
    cfg: Arc<Config>,
    /// Only touched on the AMQP thread; the lock also makes reconnects one at a time.
    session: tokio::sync::Mutex<Option<Arc<PubSession>>>,
    /// The live session's loss token, readable without the AMQP thread.
    alive: Mutex<Option<CancellationToken>>,
    /// The node the live session is connected to.
    in_use: InUse,
}

impl PublishSide {
    pub(super) fn new(cfg: Arc<Config>) -> Self {
        Self { cfg, session: tokio::sync::Mutex::new(None), alive: Mutex::new(None), in_use: InUse::default() }
    }

    /// The open session, reconnecting (and redeclaring) when the last one died.
    pub(super) async fn session(&self) -> Result<Arc<PubSession>, TransportError> {
        let mut slot = self.session.lock().await;
        if let Some(session) = slot.as_ref().filter(|s| s.link.is_alive() && !s.confirm_failed()) {
            return Ok(session.clone());
        }
        if let Some(old) = slot.take() {
            tracing::info!(node = self.cfg.nodes.label(old.link.node).unwrap_or_default(), "reopening the RabbitMQ publisher connection");
            if !old.link.is_alive() {
                // Lost: the next try starts at the next node of the list (round robin).
                self.cfg.nodes.lost(old.link.node);
            }
            old.close().await;
        }
        let link = self.cfg.nodes.open(&self.cfg.connection_name("publish")).await?;
        let opened = async {
            topology::declare(&link, &self.cfg.names, &self.cfg.queues).await?;
            ConfirmChannel::open(&link, &link.lost).await
        };
        let confirm = match opened.await {
            Ok(confirm) => confirm,
            Err(e) => {
                self.cfg.nodes.lost(link.node);
                link.close().await;
                return Err(e);
            }
        };
        if let Ok(mut alive) = self.alive.lock() {
            *alive = Some(link.lost.clone());
        }
        self.in_use.set(Some(link.node));
        let session = Arc::new(PubSession { link, confirm });
        *slot = Some(session.clone());
        Ok(session)
    }

    /// Publishes every entry, then waits for every confirm (a window, not one round trip each).
    pub(super) async fn publish(&self, entries: Vec<OutgoingMessage>) -> Result<(), TransportError> {
        if entries.is_empty() {
            return Ok(());
        }
        let session = self.session().await?;
        let exchange = self.cfg.names.events();
        let mut pending = Vec::with_capacity(entries.len());
        for entry in entries {
            let props = event_properties(&entry);
            pending.push(session.confirm.publish(&exchange, &entry.routing_key, props, entry.body).await?);
        }
        for confirm in pending {
            confirm.confirmed().await?;
        }
        Ok(())
    }

    pub(super) fn node(&self) -> Option<usize> {
        self.in_use.get().filter(|_| self.is_connected())
    }

    pub(super) fn is_connected(&self) -> bool {
        self.alive.lock().ok().and_then(|alive| alive.as_ref().map(|lost| !lost.is_cancelled())).unwrap_or(false)
    }

    pub(super) async fn close(&self) {
        if let Some(session) = self.session.lock().await.take() {
            session.close().await;
        }
        if let Ok(mut alive) = self.alive.lock() {
            *alive = None;
        }
    }
}

impl PubSession {
    /// A confirm channel that lost a publish frame cannot be trusted to count any more.
    fn confirm_failed(&self) -> bool {
        self.confirm.is_failed()
    }
}
