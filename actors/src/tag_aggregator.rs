//! The tag aggregator: keeps the tag cloud exact on every post change, and
//! rebuilds it from scratch on a timer and on demand.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;

use crate::event::Event;
use crate::messages::{HandleEvent, HandlerError, RebuildTagCloud};
use crate::metrics::ActorMetrics;
use crate::ports::{Leases, RebuildReport, StoreError, TagCloudStore};
use crate::supervision::guard;

const NAME: &str = "tag_aggregator";
const MAILBOX_CAPACITY: usize = 1024;
/// The lease that lets one instance at a time run the scheduled rebuild.
pub const REBUILD_LEASE: &str = "tag-cloud-rebuild";

/// Who may run the scheduled rebuild: one instance at a time among those sharing a store.
#[derive(Clone)]
pub struct RebuildLease {
    pub leases: Arc<dyn Leases>,
    /// This instance's name in the lease.
    pub holder: String,
}

/// Keeps `[{tag, posts_count}]` current. Post changes are handled concurrently:
/// each is one atomic, version-guarded store step, so their order does not
/// matter, and the store's group commit needs several in flight to batch them.
/// A rebuild runs alone (no change starts while it runs); one already in
/// flight commits before or after the rebuild's transaction, exact either way.
pub struct TagAggregator {
    /// Where the cloud and its per-post bookkeeping live.
    store: Arc<dyn TagCloudStore>,
    /// How often the full rebuild runs; `None` turns the timer off.
    rebuild_interval: Option<Duration>,
    /// Taken before each scheduled rebuild, so instances do not all rebuild at once.
    lease: RebuildLease,
    metrics: ActorMetrics,
}

impl TagAggregator {
    pub fn new(
        store: Arc<dyn TagCloudStore>,
        rebuild_interval: Option<Duration>,
        lease: RebuildLease,
        metrics: ActorMetrics,
    ) -> Self {
        Self { store, rebuild_interval, lease, metrics }
    }
}

crate::supervised_worker!(TagAggregator, NAME, |actor, ctx| {
    if let Some(every) = actor.rebuild_interval {
        ctx.run_interval(every, |_, ctx| ctx.notify(RebuildOnTimer));
    }
});

/// Apply one post change to the tag cloud.
impl Handler<HandleEvent> for TagAggregator {
    type Result = ResponseActFuture<Self, Result<(), HandlerError>>;

    fn handle(&mut self, msg: HandleEvent, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        let (envelope, deadline, parent) = (msg.envelope.clone(), msg.deadline, msg.span.clone());
        let work = async move {
            let applied = match &msg.event {
                Event::PostCreated(p) => store.apply_post_tags(p.id, p.version, Some(&p.tags)).await,
                Event::PostUpdated(u) => store.apply_post_tags(u.post.id, u.post.version, Some(&u.post.tags)).await,
                Event::PostDeleted(d) => store.apply_post_tags(d.id, d.version, None).await,
                Event::OrderFulfilled(_) => return Err(HandlerError::Permanent("not a post event".into())),
            };
            applied.map(drop).map_err(|e| HandlerError::Retryable(e.to_string()))
        };
        Box::pin(guard(NAME, self.metrics.clone(), envelope, deadline, parent, work).into_actor(self).map(|guarded, _, ctx| {
            if guarded.panicked {
                ctx.stop();
            }
            guarded.result
        }))
    }
}

impl TagAggregator {
    /// A full rebuild, logged; the store does the aggregation.
    fn rebuild(&self) -> impl Future<Output = Result<RebuildReport, StoreError>> + 'static {
        let store = self.store.clone();
        async move {
            let report = store.rebuild_tag_cloud().await;
            match &report {
                Ok(r) => tracing::info!(posts = r.posts, tags = r.tags, took_ms = r.took_ms, "tag cloud rebuilt"),
                Err(e) => tracing::error!(error = %e, "tag cloud rebuild failed"),
            }
            report
        }
    }
}

/// Recompute the cloud from the posts, on demand.
impl Handler<RebuildTagCloud> for TagAggregator {
    type Result = AtomicResponse<Self, Result<RebuildReport, StoreError>>;

    fn handle(&mut self, _: RebuildTagCloud, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(self.rebuild().into_actor(self)))
    }
}

/// The timer's tick: a rebuild whose result only the log sees, run only by the
/// instance holding the rebuild lease.
#[derive(Message)]
#[rtype(result = "()")]
struct RebuildOnTimer;

impl Handler<RebuildOnTimer> for TagAggregator {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: RebuildOnTimer, _: &mut Context<Self>) -> Self::Result {
        let Some(interval) = self.rebuild_interval else {
            return AtomicResponse::new(Box::pin(actix::fut::ready(())));
        };
        // The holder renews at every tick; a dead holder's lease runs out half an
        // interval after its last tick would have renewed it, then another takes over.
        let until = Utc::now() + chrono::Duration::from_std(interval.mul_f64(1.5)).unwrap_or(chrono::Duration::MAX);
        let (lease, rebuild) = (self.lease.clone(), self.rebuild());
        AtomicResponse::new(Box::pin(
            async move {
                match lease.leases.try_lease(REBUILD_LEASE, &lease.holder, until).await {
                    Ok(true) => drop(rebuild.await),
                    Ok(false) => tracing::debug!("another instance holds the rebuild lease"),
                    Err(e) => tracing::warn!(error = %e, "cannot take the rebuild lease; skipping this rebuild"),
                }
            }
            .into_actor(self),
        ))
    }
}
