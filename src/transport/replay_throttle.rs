//! The pace of bulk replays (`BLOG_REPLAY_RATE` messages per second), so
//! replaying a pile of dead letters never floods a worker that only just
//! recovered. Messages go in batches of a tenth of a second's worth: each
//! batch waits for its permits, then is committed (or confirmed) at once.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Shared by every bulk replay of the process: two at once share the rate.
#[derive(Clone)]
pub struct ReplayThrottle {
    limiter: Arc<DefaultDirectRateLimiter>,
    batch: NonZeroU32,
    rate: NonZeroU32,
}

impl ReplayThrottle {
    pub fn new(per_second: NonZeroU32) -> Self {
        let batch = NonZeroU32::new(per_second.get() / 10).unwrap_or(NonZeroU32::MIN);
        // The burst is one batch: a replay never gets ahead of the rate by more than that.
        let quota = Quota::per_second(per_second).allow_burst(batch);
        Self { limiter: Arc::new(RateLimiter::direct(quota)), batch, rate: per_second }
    }

    /// How many messages go in one batch.
    pub fn batch(&self) -> usize {
        self.batch.get() as usize
    }

    pub fn rate(&self) -> u32 {
        self.rate.get()
    }

    /// Waits until `n` (at most one batch) more messages may go.
    pub async fn admit(&self, n: usize) {
        let n = u32::try_from(n.clamp(1, self.batch())).unwrap_or(self.batch.get());
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        // `n` is at most the burst, so the only error (more than the burst) cannot happen.
        let _ = self.limiter.until_n_ready(n).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_are_a_tenth_of_the_rate_and_the_rate_holds() {
        let throttle = ReplayThrottle::new(NonZeroU32::new(200).unwrap());
        assert_eq!(throttle.batch(), 20);
        let started = std::time::Instant::now();
        for _ in 0..5 {
            throttle.admit(20).await;
        }
        // 100 messages at 200/s with a burst of 20: at least (100 - 20) / 200 s.
        assert!(started.elapsed() >= std::time::Duration::from_millis(400), "{:?}", started.elapsed());
        assert_eq!(ReplayThrottle::new(NonZeroU32::new(5).unwrap()).batch(), 1);
    }
}
