//! [`Permit`]: the right to make one call, and the call's outcome; [`CircuitBreaker::call`],
//! the convenience that asks for a permit, runs a future and reports its result.

use std::fmt;
use std::future::Future;

use crate::breaker::{BreakerError, CircuitBreaker};

/// How a failed call's error counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The dependency failed (unreachable, timed out, a 5xx): a failure that may open the
    /// breaker.
    Dependency,
    /// The caller's fault (a poison message, a validation error, a 4xx): the dependency
    /// answered, so it is neither a failure nor a success.
    Caller,
}

/// The right to make one call through a breaker, granted by [`CircuitBreaker::permit`].
///
/// Report the outcome with [`Permit::success`], [`Permit::failure`] or [`Permit::ignore`]. A
/// permit dropped without an outcome (the caller's future was cancelled, or a timeout dropped
/// it) counts as a failure: a call that was given up on did not show the dependency healthy.
/// A trial permit of a half-open breaker frees its trial slot when it is reported or dropped,
/// exactly once.
#[must_use = "a permit dropped without an outcome counts as a failure"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    kind: PermitKind,
    word: u64,
    finished: bool,
}

/// What a permit was granted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PermitKind {
    /// By a disabled breaker: nothing to report.
    PassThrough,
    /// By a closed breaker.
    Normal,
    /// By a half-open breaker: one of its trial slots.
    Trial,
}

/// A call's outcome as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    Ignored,
    /// Dropped without an outcome: a failure, logged as a cancellation.
    Cancelled,
}

impl<'a> Permit<'a> {
    pub(crate) fn new(breaker: &'a CircuitBreaker, kind: PermitKind, word: u64) -> Self {
        Self {
            breaker,
            kind,
            word,
            finished: false,
        }
    }

    /// Whether this is a trial call of a half-open breaker.
    pub fn is_trial(&self) -> bool {
        self.kind == PermitKind::Trial
    }

    /// The call succeeded.
    pub fn success(mut self) {
        self.finish(Outcome::Success);
    }

    /// The dependency failed.
    pub fn failure(mut self) {
        self.finish(Outcome::Failure);
    }

    /// The call failed through the caller's fault: counts neither way.
    pub fn ignore(mut self) {
        self.finish(Outcome::Ignored);
    }

    /// The call failed with an error of `class`: [`Permit::failure`] or [`Permit::ignore`].
    pub fn error(self, class: ErrorClass) {
        match class {
            ErrorClass::Dependency => self.failure(),
            ErrorClass::Caller => self.ignore(),
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        if !self.finished {
            self.finished = true;
            self.breaker.finish(self.kind, self.word, outcome);
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("component", &self.breaker.component())
            .field("kind", &self.kind)
            .field("finished", &self.finished)
            .finish()
    }
}

/// A call through [`CircuitBreaker::call`] that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The breaker rejected the call; it was not tried.
    #[error(transparent)]
    Rejected(BreakerError),
    /// The call was tried and failed with the operation's error.
    #[error(transparent)]
    Failed(E),
}

impl<E> CallError<E> {
    /// The operation's error, if the call was tried.
    pub fn into_failed(self) -> Option<E> {
        match self {
            CallError::Rejected(_) => None,
            CallError::Failed(error) => Some(error),
        }
    }
}

impl CircuitBreaker {
    /// Runs `operation` if the breaker lets it, and reports its result: `Ok` as a success, an
    /// error as `classify` says ([`ErrorClass::Dependency`] a failure, [`ErrorClass::Caller`]
    /// neither). If the returned future is dropped before `operation` finishes, the call counts
    /// as a failure.
    pub async fn call<T, E, F, Fut>(
        &self,
        operation: F,
        classify: impl FnOnce(&E) -> ErrorClass,
    ) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.permit().map_err(CallError::Rejected)?;
        match operation().await {
            Ok(value) => {
                permit.success();
                Ok(value)
            }
            Err(error) => {
                permit.error(classify(&error));
                Err(CallError::Failed(error))
            }
        }
    }
}
