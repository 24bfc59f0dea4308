//! The tag aggregator: keeps the tag cloud exact on every post change, and
//! rebuilds it from scratch on a timer and on demand.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;

use crate::event::{Envelope, Event, PostChange};
use crate::messages::{HandlerError, Rebuild};
use crate::ports::{Leases, RebuildReport, StoreError, TagCloudStore};
use crate::post_change::apply_post_change;
use crate::supervision::WorkerActor;
use crate::supervision::Worker;
use crate::worker::WorkerSpec;

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
}

impl TagAggregator {
    pub fn new(store: Arc<dyn TagCloudStore>, rebuild_interval: Option<Duration>, lease: RebuildLease) -> Self {
        Self { store, rebuild_interval, lease }
    }
}

impl Worker for TagAggregator {
    const SPEC: &'static WorkerSpec = &WorkerSpec::on_post_events("tag_aggregator");

    fn handle(&self, _: Arc<Envelope>, event: Event) -> impl std::future::Future<Output = Result<(), HandlerError>> + 'static {
        apply_post_change(self.store.clone(), event, async |store, change| match change {
            PostChange::Upserted(p) => store.apply_post_tags(p.id, p.version, Some(&p.tags)).await,
            PostChange::Deleted(d) => store.apply_post_tags(d.id, d.version, None).await,
        })
    }

    /// A full rebuild; the store does the aggregation.
    fn rebuild(&self) -> Option<impl std::future::Future<Output = Result<RebuildReport, StoreError>> + 'static> {
        let store = self.store.clone();
        Some(async move { store.rebuild_tag_cloud().await })
    }

    fn started(&mut self, ctx: &mut Context<WorkerActor<Self>>) {
        if let Some(every) = self.rebuild_interval {
            ctx.run_interval(every, |_, ctx| ctx.notify(RebuildOnTimer));
        }
    }
}

/// The timer's tick: a rebuild whose result only the log sees, run only by the
/// instance holding the rebuild lease.
#[derive(Message)]
#[rtype(result = "()")]
struct RebuildOnTimer;

impl Handler<RebuildOnTimer> for WorkerActor<TagAggregator> {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: RebuildOnTimer, ctx: &mut Context<Self>) -> Self::Result {
        let Some(interval) = self.worker().rebuild_interval else {
            return Box::pin(actix::fut::ready(()));
        };
        // The holder renews at every tick; a dead holder's lease runs out half an
        // interval after its last tick would have renewed it, then another takes over.
        let until = Utc::now() + chrono::Duration::from_std(interval.mul_f64(1.5)).unwrap_or(chrono::Duration::MAX);
        let (lease, me) = (self.worker().lease.clone(), ctx.address());
        Box::pin(
            async move {
                match lease.leases.try_lease(REBUILD_LEASE, &lease.holder, until).await {
                    // Through the mailbox, so the rebuild runs alone as an admin rebuild does.
                    Ok(true) => drop(me.send(Rebuild).await),
                    Ok(false) => tracing::debug!("another instance holds the rebuild lease"),
                    Err(e) => tracing::warn!(error = %e, "cannot take the rebuild lease; skipping this rebuild"),
                }
            }
            .into_actor(self),
        )
    }
}
