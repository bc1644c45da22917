//! Retry eligibility and backoff, as pure functions of values the caller supplies.
//!
//! A failed step waits in `error`. It may go back to `pending` (the `retry` event) once it is
//! retry-eligible:
//! - it has never consumed an attempt (`attempts == 0`: the first attempt is always allowed),
//!   or it is retryable and `attempts < max_attempts`;
//! - and its backoff has elapsed: `now >= last_attempted_at + backoff`, where the backoff is the
//!   step's requested backoff if set, else `min(base × multiplier^attempts, max)` with optional
//!   jitter.
//!
//! Jitter is deterministic: the caller supplies the random draw as a [`JitterSample`], so the
//! same inputs always give the same answer.

use std::{fmt, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};

/// How long a failed step waits before its next attempt, from the backoff configuration.
///
/// Built with [`BackoffPolicy::new`], which rejects values that make no sense.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    base: Duration,
    multiplier: f64,
    max: Duration,
    jitter: f64,
}

/// A backoff configuration value that [`BackoffPolicy::new`] rejects.
#[derive(Debug, thiserror::Error)]
pub enum InvalidBackoffPolicy {
    /// The multiplier is below 1, infinite or NaN.
    #[error("backoff multiplier must be a finite number of at least 1, got {0}")]
    Multiplier(f64),
    /// The jitter fraction is outside `0.0..=1.0` or NaN.
    #[error("backoff jitter must be a fraction between 0 and 1 (0.15 = ±15%), got {0}")]
    Jitter(f64),
    /// The base delay is longer than the maximum delay.
    #[error("backoff base {base:?} is longer than the maximum backoff {max:?}")]
    BaseExceedsMax {
        /// The configured base delay.
        base: Duration,
        /// The configured maximum delay.
        max: Duration,
    },
}

impl BackoffPolicy {
    /// A policy whose delay after `attempts` attempts is `min(base × multiplier^attempts, max)`,
    /// moved by up to `± jitter × delay` (`jitter` is a fraction: 0.15 = ±15%, 0 = none).
    pub fn new(
        base: Duration,
        multiplier: f64,
        max: Duration,
        jitter: f64,
    ) -> Result<Self, InvalidBackoffPolicy> {
        if !multiplier.is_finite() || multiplier < 1.0 {
            return Err(InvalidBackoffPolicy::Multiplier(multiplier));
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(InvalidBackoffPolicy::Jitter(jitter));
        }
        if base > max {
            return Err(InvalidBackoffPolicy::BaseExceedsMax { base, max });
        }
        Ok(BackoffPolicy {
            base,
            multiplier,
            max,
            jitter,
        })
    }

    /// The delay before any growth.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The growth factor per attempt.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The longest delay the policy computes, jitter included.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The jitter fraction (0.15 = ±15%).
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The delay after `attempts` attempts: `min(base × multiplier^attempts, max)`, then moved
    /// by `jitter × delay × (2 × sample − 1)`, capped at `max` again, and rounded to whole
    /// milliseconds (halves up).
    ///
    /// Computed in milliseconds, as PostgreSQL's `tasker.step_backoff_ms` computes it, so that
    /// without jitter the two agree on every input (a tasker-db property test holds them
    /// equal). A base of zero stays zero however many attempts were made.
    pub fn backoff_for(&self, attempts: u32, sample: JitterSample) -> Duration {
        let max_ms = millis_f64(self.max);
        let base_ms = millis_f64(self.base);
        // multiplier^attempts may overflow to infinity, and 0 × ∞ is NaN rather than 0.
        let grown = if base_ms == 0.0 {
            0.0
        } else {
            base_ms * self.multiplier.powf(f64::from(attempts))
        };
        let delay = if grown.is_finite() {
            grown.min(max_ms)
        } else {
            max_ms
        };
        let jittered = (delay + self.jitter * delay * (2.0 * sample.0 - 1.0)).clamp(0.0, max_ms);
        let millis = jittered.round();
        if millis >= self.max.as_millis() as f64 {
            return self.max;
        }
        // In range: 0 <= millis < max in milliseconds, which fits in a u64.
        Duration::from_millis(millis as u64)
    }
}

/// A duration in milliseconds, exact for whole milliseconds (unlike `as_secs_f64() * 1000`,
/// whose seconds are already rounded to binary).
fn millis_f64(duration: Duration) -> f64 {
    duration.as_secs() as f64 * 1000.0 + f64::from(duration.subsec_nanos()) / 1_000_000.0
}

/// The caller's random draw for jitter: a fraction in `0.0..=1.0`.
///
/// `0.5` adds no jitter; `0.0` and `1.0` move the delay by the full jitter fraction down and up.
/// Keeping the draw outside makes backoff a pure function: derive it from a random number
/// generator, or deterministically from the step (see [`JitterSample::from_bits`]).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct JitterSample(f64);

/// A jitter sample outside `0.0..=1.0`, or NaN.
#[derive(Debug, thiserror::Error)]
#[error("jitter sample must be a fraction between 0 and 1, got {value}")]
pub struct InvalidJitterSample {
    /// The rejected value.
    pub value: f64,
}

impl JitterSample {
    /// The sample that adds no jitter.
    pub const NONE: JitterSample = JitterSample(0.5);

    /// A sample from a fraction in `0.0..=1.0`.
    pub fn new(fraction: f64) -> Result<Self, InvalidJitterSample> {
        if (0.0..=1.0).contains(&fraction) {
            Ok(JitterSample(fraction))
        } else {
            Err(InvalidJitterSample { value: fraction })
        }
    }

    /// A sample spread uniformly over `0.0..1.0` from 64 random or hashed bits, for example a
    /// hash of the step id and its attempt count (the same step and attempt get the same
    /// jitter everywhere).
    pub fn from_bits(bits: u64) -> Self {
        // The top 53 bits fill an f64 mantissa exactly.
        JitterSample((bits >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// The fraction.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// When the next attempt is due: `last_attempted_at + backoff`, saturating at the latest
/// representable time.
pub fn next_retry_at(last_attempted_at: DateTime<Utc>, backoff: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(backoff)
        .ok()
        .and_then(|delta| last_attempted_at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Everything retry eligibility depends on, as the caller read it from the step.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryContext {
    /// The step's retry policy allows retries, and its last failure did not forbid them
    /// ([`crate::StepEffect::SetFailureRetryable`]).
    pub retryable: bool,
    /// Attempts made so far (each worker claim counts one).
    pub attempts: u32,
    /// The most attempts the step may make.
    pub max_attempts: u32,
    /// When the last attempt started; `None` if the step never started.
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// The backoff the last failure asked for, used instead of the policy when set.
    pub requested_backoff: Option<Duration>,
    /// The configured backoff policy.
    pub policy: BackoffPolicy,
    /// The random draw for jitter ([`JitterSample::NONE`] for none).
    pub jitter: JitterSample,
    /// The time to decide at.
    pub now: DateTime<Utc>,
}

impl RetryContext {
    /// The backoff that applies: the requested one if set, else the policy's for `attempts`.
    pub fn backoff(&self) -> Duration {
        self.requested_backoff
            .unwrap_or_else(|| self.policy.backoff_for(self.attempts, self.jitter))
    }

    /// When the next attempt is due, or `None` if the step never started (nothing to wait for).
    pub fn next_retry_at(&self) -> Option<DateTime<Utc>> {
        self.last_attempted_at
            .map(|last| next_retry_at(last, self.backoff()))
    }
}

/// Why a failed step may not be retried (yet).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetryIneligible {
    /// The step's policy or its last failure forbids retries.
    #[error(
        "the step is not retryable (its retry policy or its last failure forbids retries) after \
         {attempts} attempt(s); an operator can reset it for retry"
    )]
    NotRetryable {
        /// Attempts made so far.
        attempts: u32,
    },
    /// Every allowed attempt has been used.
    #[error(
        "all {max_attempts} allowed attempt(s) are used ({attempts} made); an operator can reset \
         it for retry"
    )]
    AttemptsExhausted {
        /// Attempts made so far.
        attempts: u32,
        /// The most attempts the step may make.
        max_attempts: u32,
    },
    /// The backoff has not elapsed yet.
    #[error("its backoff has not elapsed: the next retry is due at {next_retry_at} (in {})",
        HumanDuration(*.remaining))]
    BackoffPending {
        /// When the step becomes eligible.
        next_retry_at: DateTime<Utc>,
        /// How long until then.
        remaining: Duration,
    },
}

/// Whether a failed step may be retried now; the error says why not.
///
/// Checks, in order: the first attempt is always allowed (`attempts == 0`); otherwise the step
/// must be retryable and have `attempts < max_attempts`; and in every case the backoff must have
/// elapsed (`now >= next_retry_at`, at the boundary itself the step is eligible).
pub fn is_retry_eligible(context: &RetryContext) -> Result<(), RetryIneligible> {
    if context.attempts > 0 {
        if !context.retryable {
            return Err(RetryIneligible::NotRetryable {
                attempts: context.attempts,
            });
        }
        if context.attempts >= context.max_attempts {
            return Err(RetryIneligible::AttemptsExhausted {
                attempts: context.attempts,
                max_attempts: context.max_attempts,
            });
        }
    }
    if let Some(next_retry_at) = context.next_retry_at()
        && context.now < next_retry_at
    {
        let remaining = (next_retry_at - context.now).to_std().unwrap_or_default();
        return Err(RetryIneligible::BackoffPending {
            next_retry_at,
            remaining,
        });
    }
    Ok(())
}

/// A duration as `1h 2m 3.5s`, for messages.
struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total_millis = self.0.as_millis();
        let hours = total_millis / 3_600_000;
        let minutes = total_millis / 60_000 % 60;
        let millis = total_millis % 60_000;
        if hours > 0 {
            write!(f, "{hours}h ")?;
        }
        if hours > 0 || minutes > 0 {
            write!(f, "{minutes}m ")?;
        }
        let fraction = format!("{:03}", millis % 1000);
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            write!(f, "{}s", millis / 1000)
        } else {
            write!(f, "{}.{fraction}s", millis / 1000)
        }
    }
}

#[cfg(test)]
mod tests;
