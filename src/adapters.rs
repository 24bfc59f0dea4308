//! The adapters the settings choose: the store (SQLite or MongoDB), the
//! transport (the embedded queue or RabbitMQ) and the mailer (`.eml` files or
//! SMTP), opened once at start and handed to the workers and routes.

use std::sync::Arc;

use anyhow::Context as _;
use blog_actors::ports::{EmailLog, Mailer, ReadModelStore, TagCloudStore};
use blog_actors::worker::Workers;
use secrecy::ExposeSecret;

use crate::configuration::{BrokerChoice, Settings, StoreChoice};
use crate::mail::{FileMailer, SmtpMailer};
use crate::store::mongo::MongoStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use crate::transport::embedded::EmbeddedQueue;
use crate::transport::rabbitmq::RabbitTransport;
use crate::transport::Transport;

/// The parts the settings choose. Each worker port is its own field so a test can
/// wrap one (to inject a fault) while the rest stay real.
pub struct Adapters {
    pub store: Arc<dyn Store>,
    pub transport: Arc<dyn Transport>,
    pub mailer: Arc<dyn Mailer>,
    pub tag_cloud: Arc<dyn TagCloudStore>,
    pub read_model: Arc<dyn ReadModelStore>,
    pub email_log: Arc<dyn EmailLog>,
}

impl Adapters {
    /// Opens what the settings name, the transport with a queue for each of `workers`.
    pub async fn from_settings(settings: &Settings, workers: Workers) -> anyhow::Result<Self> {
        let store = open_store(settings).await?;
        let transport = open_transport(settings, workers).await?;
        let mailer: Arc<dyn Mailer> = match &settings.smtp_url {
            Some(url) => Arc::new(SmtpMailer::new(url.expose_secret(), &settings.mail_from, settings.mail_timeout)?),
            None => Arc::new(FileMailer::new(settings.mail_dir(), &settings.mail_from)?),
        };
        Ok(Self {
            tag_cloud: store.clone(),
            read_model: store.clone(),
            email_log: store.clone(),
            store,
            transport,
            mailer,
        })
    }
}

/// Opens the store the settings name (also used by `blog load`).
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match settings.store()? {
        StoreChoice::Sqlite(dir) => Arc::new(
            SqliteStore::open_with_read_cache(&dir, settings.read_cache_bytes)
                .await
                .with_context(|| format!("opening the store in {}", dir.display()))?,
        ),
        StoreChoice::Mongo { url, db, queries_db } => Arc::new(
            MongoStore::connect_with(&url, &db, &queries_db, settings.store_timeout).await.context("BLOG_STORE_URL: connecting to MongoDB")?,
        ),
    };
    Ok(store)
}

/// Opens the transport the settings name, with a queue for each of `workers`
/// (also used by `blog publish`).
pub async fn open_transport(settings: &Settings, workers: Workers) -> anyhow::Result<Arc<dyn Transport>> {
    let transport: Arc<dyn Transport> = match settings.broker()? {
        BrokerChoice::Embedded(path) => Arc::new(
            EmbeddedQueue::open(&path, workers).with_context(|| format!("opening the queue {}", path.display()))?,
        ),
        BrokerChoice::Rabbit { url, prefix, options } => Arc::new(
            RabbitTransport::connect_with(&url, &prefix, settings.retry_policy().delay_levels(), workers, options)
                .await
                .context("BLOG_BROKER_URL: connecting to RabbitMQ")?,
        ),
    };
    Ok(transport)
}
