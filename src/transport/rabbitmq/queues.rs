//! What kind of queues the topology declares (`BLOG_AMQP_QUEUE_TYPE`,
//! `BLOG_AMQP_DELIVERY_LIMIT`) and the arguments that follow from it.
//!
//! Quorum queues (the default) are replicated over the cluster's nodes, so losing
//! one node loses no message. On them:
//! - worker queues carry `x-delivery-limit` and dead-letter to the worker's parking
//!   lot: a message the broker had to take back that often (the process died while
//!   holding it, again and again) is parked instead of crashing the service forever;
//! - retry levels dead-letter back at least once (`x-dead-letter-strategy:
//!   at-least-once`, which needs `x-overflow: reject-publish`), so a node lost
//!   during a TTL hop loses nothing.
//!
//! Classic queues keep the arguments they always had (no delivery limit).

use amqprs::FieldValue;
use serde::{Deserialize, Serialize};

/// Queue arguments, name and value; `topology` turns them into the declare's table.
pub(super) type Arguments = Vec<(&'static str, FieldValue)>;

/// `x-queue-type` of every queue the service declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    #[default]
    Quorum,
    Classic,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Quorum => "quorum",
            QueueType::Classic => "classic",
        }
    }
}

/// How the queues are declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueOptions {
    pub kind: QueueType,
    /// Deliveries of one message a quorum worker queue allows before parking it.
    /// Every return counts (a crash, a lost connection, a shutdown handing back
    /// what was prefetched), not our own retries, which republish a fresh copy.
    pub delivery_limit: u32,
}

/// RabbitMQ 4's own default: far above the returns a healthy message sees
/// (a failover or a shutdown each count one), low enough to stop a crash loop.
pub const DEFAULT_DELIVERY_LIMIT: u32 = 20;

impl Default for QueueOptions {
    fn default() -> Self {
        Self { kind: QueueType::Quorum, delivery_limit: DEFAULT_DELIVERY_LIMIT }
    }
}

impl QueueOptions {
    /// Arguments of a queue that holds messages until someone takes them
    /// (the unrouted queue and the parking lots). A classic queue is declared
    /// without `x-queue-type`, exactly as before, so existing deployments match.
    pub(super) fn plain(&self) -> Arguments {
        let mut args = Arguments::new();
        if self.kind == QueueType::Quorum {
            args.push(("x-queue-type", FieldValue::from(self.kind.as_str())));
        }
        args
    }

    /// A worker queue's: past the delivery limit a message goes to `parking_lot`.
    pub(super) fn worker(&self, parking_lot: &str) -> Arguments {
        let mut args = self.plain();
        if self.kind == QueueType::Quorum {
            args.push(("x-delivery-limit", FieldValue::l(i64::from(self.delivery_limit))));
            args.push(("x-dead-letter-exchange", FieldValue::from("")));
            args.push(("x-dead-letter-routing-key", FieldValue::from(parking_lot)));
        }
        args
    }

    /// A retry level's: messages wait `millis`, then go back to `worker_queue`.
    pub(super) fn retry(&self, millis: u64, worker_queue: &str) -> Arguments {
        let mut args = self.plain();
        args.push(("x-message-ttl", FieldValue::l(i64::try_from(millis).unwrap_or(i64::MAX))));
        args.push(("x-dead-letter-exchange", FieldValue::from("")));
        args.push(("x-dead-letter-routing-key", FieldValue::from(worker_queue)));
        if self.kind == QueueType::Quorum {
            args.push(("x-dead-letter-strategy", FieldValue::from("at-least-once")));
            args.push(("x-overflow", FieldValue::from("reject-publish")));
        }
        args
    }
}
