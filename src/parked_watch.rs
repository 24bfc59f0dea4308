//! `BLOG_PARKED_WARN`: a warning in the log when the parking lots grow past
//! the threshold, once per crossing (and a note when they are back under), not
//! once per message. Read on a timer, so it holds whoever parks the messages.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::transport::Transport;

/// How often the parked count is read for the warning.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Whether the count was over the threshold at the last look.
#[derive(Debug, Default)]
pub struct ParkedWatch {
    threshold: u64,
    over: bool,
}

/// What one look at the count found.
#[derive(Debug, PartialEq, Eq)]
pub enum Crossing {
    Up,
    Down,
    Unchanged,
}

impl ParkedWatch {
    pub fn new(threshold: u64) -> Self {
        Self { threshold, over: false }
    }

    /// Compares `parked` with the threshold; says when it crossed it.
    pub fn observe(&mut self, parked: u64) -> Crossing {
        let over = self.threshold > 0 && parked >= self.threshold;
        let crossing = match (self.over, over) {
            (false, true) => Crossing::Up,
            (true, false) => Crossing::Down,
            _ => Crossing::Unchanged,
        };
        self.over = over;
        crossing
    }
}

/// Watches the parked count until `stop`; nothing runs when the threshold is 0.
pub fn spawn(transport: Arc<dyn Transport>, threshold: u64, stop: CancellationToken) -> Option<JoinHandle<()>> {
    if threshold == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut watch = ParkedWatch::new(threshold);
        let mut every = tokio::time::interval(CHECK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let Ok(parked) = transport.parked_count().await else { continue };
            match watch.observe(parked) {
                Crossing::Up => tracing::warn!(parked, threshold, "parked messages passed BLOG_PARKED_WARN: see the dead-letter console"),
                Crossing::Down => tracing::info!(parked, threshold, "parked messages are back under BLOG_PARKED_WARN"),
                Crossing::Unchanged => {}
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crossing_is_reported_once_each_way() {
        let mut watch = ParkedWatch::new(10);
        let seen: Vec<Crossing> = [0, 9, 10, 50, 11, 3, 2, 10].into_iter().map(|n| watch.observe(n)).collect();
        use Crossing::*;
        assert_eq!(seen, [Unchanged, Unchanged, Up, Unchanged, Unchanged, Down, Unchanged, Up]);
        let mut off = ParkedWatch::new(0);
        assert_eq!(off.observe(1_000_000), Unchanged, "0 turns the warning off");
    }
}
