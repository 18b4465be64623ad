//! Activity options as they are recorded in history and enforced by the
//! store: timeouts and the retry policy. The SDK builds these from the
//! options users chain on an activity call.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How a failed activity attempt is retried. Retries are decided by the
/// store, so only the final outcome and the attempt count reach the
/// workflow's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Wait before the second attempt.
    pub initial_interval: Duration,
    /// Each further wait is the previous one times this (at least 1.0).
    pub backoff_coefficient: f64,
    /// Upper bound of any single wait; never below `initial_interval`
    /// (a longer first wait, asked for explicitly, is kept).
    pub max_interval: Duration,
    /// Attempts in all, the first included; 0 means no limit.
    pub max_attempts: u32,
    /// Error kinds (see `Failure::kind`) that fail the activity at once.
    pub non_retryable_kinds: Vec<String>,
}

impl Default for RetryPolicy {
    /// One second, doubling, capped at 100 s, unlimited attempts: the
    /// conventional default of durable-execution engines.
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            max_interval: Duration::from_secs(100),
            max_attempts: 0,
            non_retryable_kinds: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with the default intervals and no attempt limit.
    pub fn exponential() -> Self {
        Self::default()
    }

    /// Exactly one attempt.
    pub fn no_retries() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets the wait before the second attempt. A wait longer than
    /// `max_interval` is kept: the cap then applies from this wait on.
    pub fn initial_interval(mut self, d: Duration) -> Self {
        self.initial_interval = d;
        self
    }

    /// Sets the multiplier between successive waits (values below 1.0 are
    /// treated as 1.0).
    pub fn backoff_coefficient(mut self, c: f64) -> Self {
        self.backoff_coefficient = c;
        self
    }

    /// Sets the longest single wait.
    pub fn max_interval(mut self, d: Duration) -> Self {
        self.max_interval = d;
        self
    }

    /// Sets the number of attempts in all (0: unlimited).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Adds an error kind that is never retried.
    pub fn non_retryable(mut self, kind: impl Into<String>) -> Self {
        self.non_retryable_kinds.push(kind.into());
        self
    }

    /// The wait after failed attempt number `attempt` (1-based) before the
    /// next one.
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let coefficient = if self.backoff_coefficient.is_finite() {
            self.backoff_coefficient.max(1.0)
        } else {
            1.0
        };
        let exp = attempt.saturating_sub(1).min(64) as i32;
        let secs = self.initial_interval.as_secs_f64() * coefficient.powi(exp);
        let cap = self.max_interval.max(self.initial_interval);
        let capped = secs.min(cap.as_secs_f64());
        if capped.is_finite() && capped >= 0.0 {
            Duration::from_secs_f64(capped)
        } else {
            cap
        }
    }

    /// Whether another attempt may follow failed attempt `attempt` with an
    /// error of `kind`.
    pub fn allows_retry(&self, attempt: u32, kind: &str) -> bool {
        (self.max_attempts == 0 || attempt < self.max_attempts)
            && !self.non_retryable_kinds.iter().any(|k| k == kind)
    }
}

/// Timeouts and retry policy of one activity call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityOptions {
    /// Longest single attempt; past it the attempt fails and may be retried.
    pub start_to_close: Option<Duration>,
    /// Longest time from first scheduling to the final outcome, retries
    /// included.
    pub schedule_to_close: Option<Duration>,
    /// Longest silence between heartbeats of a running attempt.
    pub heartbeat_timeout: Option<Duration>,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
}

impl Default for ActivityOptions {
    /// A 60 s start-to-close timeout: some bound is needed so that an
    /// attempt lost in a crash is retried.
    fn default() -> Self {
        ActivityOptions {
            start_to_close: Some(Duration::from_secs(60)),
            schedule_to_close: None,
            heartbeat_timeout: None,
            retry: RetryPolicy::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::exponential()
            .initial_interval(Duration::from_millis(100))
            .backoff_coefficient(2.0)
            .max_interval(Duration::from_millis(350));
        assert_eq!(p.backoff_after(1), Duration::from_millis(100));
        assert_eq!(p.backoff_after(2), Duration::from_millis(200));
        assert_eq!(p.backoff_after(3), Duration::from_millis(350));
        assert_eq!(p.backoff_after(60), Duration::from_millis(350));
    }

    #[test]
    fn an_initial_interval_above_the_cap_is_kept() {
        // The default cap is 100 s; an hour asked for is an hour, not 100 s.
        let p = RetryPolicy::exponential().initial_interval(Duration::from_secs(3600));
        assert_eq!(p.backoff_after(1), Duration::from_secs(3600));
        assert_eq!(p.backoff_after(5), Duration::from_secs(3600));
    }

    #[test]
    fn attempts_and_kinds_limit_retries() {
        let p = RetryPolicy::exponential()
            .max_attempts(3)
            .non_retryable("card-declined");
        assert!(p.allows_retry(1, "io"));
        assert!(p.allows_retry(2, "io"));
        assert!(!p.allows_retry(3, "io"));
        assert!(!p.allows_retry(1, "card-declined"));
        assert!(RetryPolicy::exponential().allows_retry(1_000_000, "io"));
    }
}
