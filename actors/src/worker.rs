//! The workers that consume events, and the event types each one subscribes to.

use serde::Serialize;

use crate::event::{ORDER_FULFILLED, POST_CREATED, POST_DELETED, POST_UPDATED};

/// A worker that consumes events from its own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    TagAggregator,
    Emailer,
    Projector,
}

impl WorkerKind {
    /// Every worker, in a stable order.
    pub const ALL: [WorkerKind; 3] = [Self::TagAggregator, Self::Emailer, Self::Projector];

    /// The worker's name in queue names, metrics labels and the dead-letter API.
    pub fn name(self) -> &'static str {
        match self {
            Self::TagAggregator => "tag_aggregator",
            Self::Emailer => "emailer",
            Self::Projector => "projector",
        }
    }

    /// Parses a name given by [`WorkerKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The event types (routing keys) this worker consumes.
    pub fn event_types(self) -> &'static [&'static str] {
        match self {
            Self::TagAggregator | Self::Projector => &[POST_CREATED, POST_UPDATED, POST_DELETED],
            Self::Emailer => &[ORDER_FULFILLED],
        }
    }

    /// The workers that receive an event of this type; empty for an unknown type.
    pub fn subscribers(event_type: &str) -> Vec<WorkerKind> {
        Self::ALL
            .into_iter()
            .filter(|w| w.event_types().contains(&event_type))
            .collect()
    }
}

impl std::fmt::Display for WorkerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
