//! What one consumer session's settlers share: its worker channels with their
//! ack windows, its confirm channel for retries and parking, and its generation
//! (a settler of an older session must not act on a newer one's channels).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use amqprs::channel::Channel;
use blog_actors::worker::WorkerKind;

use super::ack_window::AckWindow;
use super::confirm::ConfirmChannel;
use super::topology::Names;

/// What settlers reach through a weak reference; dropped (on the AMQP thread)
/// with the session, so a settler never keeps a dead channel alive.
pub(super) struct SessionShared {
    pub generation: u64,
    /// The supervisor's live generation.
    current: Arc<AtomicU64>,
    channels: HashMap<WorkerKind, Channel>,
    /// Each worker channel's acks, sent in groups.
    windows: HashMap<WorkerKind, AckWindow>,
    pub confirm: ConfirmChannel,
    pub names: Names,
}

impl SessionShared {
    pub(super) fn new(
        generation: u64,
        current: Arc<AtomicU64>,
        channels: HashMap<WorkerKind, Channel>,
        windows: HashMap<WorkerKind, AckWindow>,
        confirm: ConfirmChannel,
        names: Names,
    ) -> Self {
        Self { generation, current, channels, windows, confirm, names }
    }

    pub(super) fn is_current(&self, generation: u64) -> bool {
        self.generation == generation && self.current.load(Ordering::SeqCst) == generation
    }

    pub(super) fn channel(&self, worker: WorkerKind) -> Option<&Channel> {
        self.channels.get(&worker)
    }

    pub(super) fn window(&self, worker: WorkerKind) -> Option<&AckWindow> {
        self.windows.get(&worker)
    }
}
