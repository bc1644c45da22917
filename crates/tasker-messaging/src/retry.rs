//! Retrying an operation that failed transiently (a connection terminated, a broker
//! reconnecting): exponential backoff with jitter, a bounded number of retries, and the caller
//! deciding which errors are worth another try.

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: never retry).
    pub max_retries: u32,
    /// The delay before the first retry.
    pub initial_delay: Duration,
    /// The largest delay between two attempts.
    pub max_delay: Duration,
    /// Growth of the delay from one retry to the next.
    pub multiplier: f64,
    /// The largest random deviation of a delay, as a fraction of it (0.0 to 1.0).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// Three retries after 100 ms, 200 ms and 400 ms, each ±10 %.
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry `retry` (0 for the first), given a random `draw` in `0.0..=1.0`
    /// that places it within the jitter. Never above `max_delay`.
    pub fn delay(&self, retry: u32, draw: f64) -> Duration {
        let base = self.initial_delay.as_secs_f64()
            * self
                .multiplier
                .max(1.0)
                .powi(i32::try_from(retry).unwrap_or(i32::MAX));
        let jitter = self.jitter.clamp(0.0, 1.0) * (2.0 * draw.clamp(0.0, 1.0) - 1.0);
        let seconds = (base * (1.0 + jitter)).min(self.max_delay.as_secs_f64());
        if seconds.is_finite() && seconds > 0.0 {
            Duration::from_secs_f64(seconds)
        } else {
            Duration::ZERO
        }
    }

    /// Runs `operation` until it succeeds, fails with an error `transient` does not accept, or
    /// has failed `max_retries + 1` times; the last error is returned. Each retry is logged
    /// with `what`.
    pub async fn run<T, E, F, Fut>(
        &self,
        what: &str,
        transient: impl Fn(&E) -> bool,
        mut operation: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::error::Error + 'static,
    {
        let mut retry = 0;
        loop {
            match operation().await {
                Ok(value) => return Ok(value),
                Err(error) if retry < self.max_retries && transient(&error) => {
                    let delay = self.delay(retry, rand::random::<f64>());
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        retry = retry + 1,
                        of = self.max_retries,
                        ?delay,
                        "{what} failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// An operation that did not finish within its time limit: the database or the broker did
/// not answer. Transient: the next try may find it answering again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no answer within {after:?} (the configured processing timeout); the database or the broker may be unreachable"
)]
pub struct TimedOut {
    /// The limit that passed.
    pub after: Duration,
}

/// Runs `operation` for at most `limit`: its output, or [`TimedOut`] (the operation is
/// dropped, which rolls back any transaction it had open). Callers name what they waited for
/// in their own error's context.
pub async fn within<F: Future>(limit: Duration, operation: F) -> Result<F::Output, TimedOut> {
    tokio::time::timeout(limit, operation)
        .await
        .map_err(|_| TimedOut { after: limit })
}

#[cfg(test)]
mod tests;
