//! What the workers that keep state derived from posts (tag aggregator,
//! projector, feed writer) share: each applies an event's post change to a
//! store of its own, version-guarded there, so a redelivery changes nothing.

use std::sync::Arc;

use crate::event::{Event, PostChange};
use crate::messages::HandlerError;
use crate::ports::StoreError;

/// Applies the post change `event` carries with `apply` on `store`; an event
/// about something else is parked (the reader checks the types first, so it is a defect).
pub async fn apply_post_change<S: ?Sized, T>(
    store: Arc<S>,
    event: Event,
    apply: impl AsyncFnOnce(&S, PostChange<'_>) -> Result<T, StoreError>,
) -> Result<(), HandlerError> {
    let change = event.post_change().ok_or_else(|| HandlerError::Permanent("not a post event".into()))?;
    apply(&store, change).await.map(drop).map_err(HandlerError::from)
}
