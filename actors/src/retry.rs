//! How often a failing message is tried and how long to wait between tries.

use std::time::Duration;

/// The retry rules every worker shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; after the last failure the message is parked.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles with each further failure.
    pub base_delay: Duration,
    /// No wait is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 5, base_delay: Duration::from_secs(1), max_delay: Duration::from_secs(300) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `failed_attempt + 1`: base × 2^(failed_attempt − 1), capped.
    pub fn delay_after(&self, failed_attempt: u32) -> Duration {
        let exponent = failed_attempt.saturating_sub(1).min(31);
        self.base_delay.saturating_mul(1u32 << exponent).min(self.max_delay)
    }

    /// Every distinct delay a message can wait, in order: one retry level each.
    pub fn delay_levels(&self) -> Vec<Duration> {
        let mut levels: Vec<Duration> = (1..self.max_attempts).map(|a| self.delay_after(a)).collect();
        levels.dedup();
        levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_then_stop_at_the_cap() {
        let p = RetryPolicy { max_attempts: 6, base_delay: Duration::from_secs(1), max_delay: Duration::from_secs(5) };
        let delays: Vec<u64> = (1..6).map(|a| p.delay_after(a).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
        assert_eq!(p.delay_levels(), vec![1, 2, 4, 5].into_iter().map(Duration::from_secs).collect::<Vec<_>>());
    }
}
