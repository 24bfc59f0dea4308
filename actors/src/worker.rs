//! What a worker is: a name, the event types it takes, a mailbox size and an
//! idempotent handler. A worker is one file that implements
//! [`Worker`](crate::supervision::Worker) (beside the actor that runs it); the
//! service's registration list ([`Workers`]) names every worker it runs, and the
//! queues, the fan-out, the metrics, `/actors` and the dashboard follow from it.

use std::sync::Arc;

use serde::{Serialize, Serializer};

/// Who a worker is, declared once in its file as a `static`.
#[derive(Debug)]
pub struct WorkerSpec {
    /// The worker's name in queue names, metrics labels and the dead-letter API.
    pub name: &'static str,
    /// The event types (routing keys) its queue is bound to.
    pub event_types: &'static [&'static str],
    /// Deliveries that may wait in its mailbox; the reader's prefetch bounds it too.
    pub mailbox: usize,
}

impl WorkerSpec {
    /// A worker that keeps state derived from posts: it takes every post event.
    pub const fn on_post_events(name: &'static str) -> Self {
        Self { name, event_types: crate::event::POST_EVENTS, mailbox: 1024 }
    }
}

/// A worker as the queues, metrics and routes name it: a handle on its spec.
/// Two handles are the same worker when their names are the same.
#[derive(Debug, Clone, Copy)]
pub struct WorkerKind(&'static WorkerSpec);

impl WorkerKind {
    pub const fn of(spec: &'static WorkerSpec) -> Self {
        Self(spec)
    }

    pub fn name(self) -> &'static str {
        self.0.name
    }

    pub fn event_types(self) -> &'static [&'static str] {
        self.0.event_types
    }

    pub fn takes(self, event_type: &str) -> bool {
        self.0.event_types.contains(&event_type)
    }

    pub fn mailbox(self) -> usize {
        self.0.mailbox
    }
}

impl PartialEq for WorkerKind {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for WorkerKind {}

impl std::hash::Hash for WorkerKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl std::fmt::Display for WorkerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for WorkerKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// The workers one service runs, in registration order; cheap to clone.
#[derive(Debug, Clone)]
pub struct Workers(Arc<[WorkerKind]>);

impl Workers {
    /// A list of distinct workers; a name given twice is a programming error caught at start.
    pub fn new(workers: impl IntoIterator<Item = WorkerKind>) -> Result<Self, String> {
        let list: Vec<WorkerKind> = workers.into_iter().collect();
        for (i, w) in list.iter().enumerate() {
            if list[..i].contains(w) {
                return Err(format!("the worker {w} is registered twice"));
            }
        }
        Ok(Self(list.into()))
    }

    pub fn all(&self) -> &[WorkerKind] {
        &self.0
    }

    pub fn iter(&self) -> impl Iterator<Item = WorkerKind> + '_ {
        self.0.iter().copied()
    }

    /// The worker with this name, if registered.
    pub fn find(&self, name: &str) -> Option<WorkerKind> {
        self.iter().find(|w| w.name() == name)
    }

    /// The workers that receive an event of this type; empty for a type none takes.
    pub fn subscribers(&self, event_type: &str) -> Vec<WorkerKind> {
        self.iter().filter(|w| w.takes(event_type)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: WorkerSpec = WorkerSpec { name: "a", event_types: &["x", "y"], mailbox: 8 };
    static B: WorkerSpec = WorkerSpec { name: "b", event_types: &["y"], mailbox: 8 };

    #[test]
    fn subscribers_follow_the_registered_event_types() {
        let workers = Workers::new([WorkerKind::of(&A), WorkerKind::of(&B)]).unwrap();
        assert_eq!(workers.subscribers("y"), vec![WorkerKind::of(&A), WorkerKind::of(&B)]);
        assert_eq!(workers.subscribers("x"), vec![WorkerKind::of(&A)]);
        assert!(workers.subscribers("z").is_empty());
        assert_eq!(workers.find("b"), Some(WorkerKind::of(&B)));
        assert_eq!(workers.find("c"), None);
    }

    #[test]
    fn a_worker_registered_twice_is_refused() {
        let err = Workers::new([WorkerKind::of(&A), WorkerKind::of(&A)]).unwrap_err();
        assert!(err.contains("registered twice"), "{err}");
    }
}
