//! Test-only fault hooks: compiled only with the `fault-hooks` feature, which the
//! service turns on through its dev-dependencies. So `cargo test` builds have them
//! and `cargo build --release` (the shipped binary) does not.
//!
//! - An event whose correlation id is [`ABORT_PROCESS`] aborts the whole process
//!   when a worker starts handling it, as an out-of-memory kill or an abort inside
//!   a library would: nothing is settled, the broker sees the connection drop.

use crate::event::Envelope;

/// The correlation id that makes the process abort while a worker handles the event.
pub const ABORT_PROCESS: &str = "fault-hook:abort-process";

/// Called by the worker guard before the handler runs.
pub fn before_handling(actor: &str, envelope: &Envelope) {
    if envelope.correlation_id.as_deref() == Some(ABORT_PROCESS) {
        eprintln!("fault hook: {actor} aborts the process while handling event {}", envelope.id);
        std::process::abort();
    }
}
