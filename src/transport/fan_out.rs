//! What the transports' tests expect of fan-out, computed once from the registry.

use std::collections::HashSet;

use blog_actors::worker::WorkerKind;

use crate::startup::registered_workers;

/// The (worker, type) pairs that events of `types` become: every registered worker
/// that takes a type gets its own delivery of it.
pub(super) fn expected_deliveries(types: &[&str]) -> HashSet<(WorkerKind, String)> {
    let workers = registered_workers();
    types.iter().flat_map(|t| workers.subscribers(t).into_iter().map(move |w| (w, (*t).to_owned()))).collect()
}
