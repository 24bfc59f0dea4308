//! Builds the whole service — store, transport, supervised workers, queue
//! reader, outbox relay, HTTP server — and runs it until it is told to stop.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use blog_actors::emailer::Emailer;
use blog_actors::feed_writer::FeedWriter;
use blog_actors::messages::Drain;
use blog_actors::metrics::ActorMetrics;
use blog_actors::projector::Projector;
use blog_actors::queue_reader::{Flow, QueueReader};
use blog_actors::tag_aggregator::{RebuildLease, TagAggregator};
use blog_actors::worker::Workers;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::adapters::Adapters;
use crate::configuration::Settings;
use crate::dead_letter_ops::DeadLetterOps;
use crate::registry::{Ports, Registration};
use crate::routes::{self, AppState};
use crate::store::Store;
use crate::transport::{relay, Transport};

/// Every worker this service runs, one line each. The queues and their bindings,
/// the embedded fan-out, the metrics, `/actors` and the dashboard follow from it.
pub fn registrations() -> Vec<Registration> {
    vec![
        Registration::of(|p: &Ports<'_>| TagAggregator::new(p.adapters.tag_cloud.clone(), p.settings.rebuild_interval(), p.rebuild_lease())),
        Registration::of(|p: &Ports<'_>| Emailer::new(p.adapters.email_log.clone(), p.adapters.mailer.clone(), p.instance)),
        Registration::of(|p: &Ports<'_>| Projector { store: p.adapters.read_model.clone() }),
        Registration::of(|p: &Ports<'_>| FeedWriter { store: p.adapters.store.clone() }),
    ]
}

/// The workers [`registrations`] names, for the transports, the CLI and tests.
pub fn registered_workers() -> Workers {
    Registration::kinds(&registrations()).expect("the registration list names each worker once")
}

impl Ports<'_> {
    /// The lease that keeps the scheduled tag-cloud rebuild to one instance at a time.
    fn rebuild_lease(&self) -> RebuildLease {
        RebuildLease { leases: self.adapters.store.clone(), holder: self.instance.to_owned() }
    }
}

/// Handles a test or the CLI may hold on a running application.
#[derive(Clone)]
pub struct AppHandles {
    pub store: Arc<dyn Store>,
    pub transport: Arc<dyn Transport>,
    pub actor_metrics: ActorMetrics,
    /// Cancelling it shuts the application down gracefully, as SIGTERM does.
    pub shutdown: CancellationToken,
}

/// A built, bound application; `run_until_stopped` drives it.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    reader: Addr<QueueReader>,
    relay: JoinHandle<()>,
    relay_stop: CancellationToken,
    shutdown_timeout: Duration,
    handles: AppHandles,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let adapters = Adapters::from_settings(&settings, registered_workers()).await?;
        Self::build_with(settings, adapters).await
    }

    /// Builds on given adapters; must run inside an actix `System`.
    pub async fn build_with(settings: Settings, adapters: Adapters) -> anyhow::Result<Self> {
        // First, before any actor starts: a start that fails must leave nothing
        // running that would outlive the runtime (and panic as it is dropped).
        let listener = TcpListener::bind(settings.http_addr)
            .with_context(|| format!("BLOG_HTTP_ADDR: cannot listen on {}", settings.http_addr))?;
        let registry = prometheus::Registry::new();
        let list = registrations();
        let workers = Registration::kinds(&list)?;
        let metrics = ActorMetrics::new(&registry, &workers).context("registering actor metrics")?;
        let http_metrics = crate::http_metrics::HttpMetrics::new(&registry).context("registering HTTP metrics")?;
        let retry = settings.retry_policy();
        let instance = instance_id();
        let ports = Ports { settings: &settings, adapters: &adapters, instance: &instance };
        let running: Vec<_> = list.into_iter().map(|r| r.start(&ports, metrics.clone())).collect();
        let routes = running.iter().map(|w| (w.kind, w.events.clone())).collect();
        let source = adapters.transport.clone() as Arc<dyn blog_actors::delivery::DeliverySource>;
        let reader = QueueReader::new(source, routes, Flow { retry, handler_timeout: settings.handler_timeout, prefetch: settings.prefetch }, metrics.clone())
            .with_breaker(settings.breaker())
            .start();

        let relay_stop = CancellationToken::new();
        let relay = relay::spawn(
            adapters.store.clone(),
            adapters.transport.clone(),
            metrics.clone(),
            relay_stop.clone(),
        );

        crate::live_figures::spawn_sampler(adapters.store.clone(), adapters.transport.clone(), metrics.clone(), relay_stop.clone());
        tokio::spawn(blog_actors::stall_watch::watch(metrics.clone(), workers.clone(), settings.stall_after, relay_stop.clone()));
        if settings.api_key.is_none() {
            tracing::warn!(addr = %settings.http_addr, "BLOG_API_KEY is not set: writes are open to anyone on this machine");
        }
        let dead_letters = DeadLetterOps::new(&registry, settings.replay_throttle(), settings.parked_warn).context("registering the operator action counter")?;
        crate::parked_watch::spawn(adapters.transport.clone(), settings.parked_warn, relay_stop.clone());
        let state = web::Data::new(AppState {
            store: adapters.store.clone(),
            transport: adapters.transport.clone(),
            workers: running,
            steer: reader.clone().recipient(),
            actor_metrics: metrics.clone(),
            registry,
            api_key: settings.api_key.clone(),
            dead_letters,
        });
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            App::new()
                // Outermost, so the not-found fallback is counted too.
                .wrap(from_fn(routes::server_span))
                .wrap(http_metrics.clone())
                .app_data(state.clone())
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        })
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout.as_secs().max(1))
        .listen(listener)?
        .run();
        tracing::info!(port, %instance, "listening");
        let handles = AppHandles {
            store: adapters.store,
            transport: adapters.transport,
            actor_metrics: metrics,
            shutdown: CancellationToken::new(),
        };
        Ok(Self { port, server, reader, relay, relay_stop, shutdown_timeout: settings.shutdown_timeout, handles })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handles(&self) -> AppHandles {
        self.handles.clone()
    }

    /// Serves until SIGTERM, Ctrl-C or the shutdown handle; then stops taking work,
    /// finishes what is in flight within the shutdown timeout, and returns.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let server_handle = self.server.handle();
        let mut server = actix_web::rt::spawn(self.server);
        let shutdown = self.handles.shutdown.clone();
        tokio::select! {
            reason = stop_signal() => tracing::info!(reason, "shutting down"),
            _ = shutdown.cancelled() => tracing::info!("shutting down on request"),
            ended = &mut server => {
                tracing::error!(?ended, "the HTTP server ended by itself");
            }
        }
        let deadline = self.shutdown_timeout;
        let drained = self.reader.send(Drain { timeout: deadline });
        let (drained, ()) = tokio::join!(drained, server_handle.stop(true));
        match drained {
            Ok(report) if report.abandoned > 0 => {
                tracing::warn!(abandoned = report.abandoned, "deadline passed; unfinished deliveries go back to the queue")
            }
            Ok(_) => tracing::info!("all in-flight deliveries settled"),
            Err(e) => tracing::warn!(error = %e, "queue reader gone before draining"),
        }
        self.relay_stop.cancel();
        if tokio::time::timeout(deadline, self.relay).await.is_err() {
            tracing::warn!("outbox relay did not stop in time; unsent entries stay in the outbox");
        }
        self.handles.transport.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Names this process among the instances sharing a store (claims, leases).
fn instance_id() -> String {
    format!("pid{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Resolves on SIGTERM or Ctrl-C, naming which.
async fn stop_signal() -> &'static str {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                let _ = ctrl_c.await;
                return "ctrl-c";
            }
        };
        tokio::select! {
            _ = ctrl_c => "ctrl-c",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
        "ctrl-c"
    }
}
