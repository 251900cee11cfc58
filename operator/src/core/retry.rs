//! What an error does to a sector: retry with backoff, pause, or abort.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::error::{ErrorLevel, StepError};
use super::record::{ErrorRecord, Pause, PauseReason, SectorRecord};
use super::state::State;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Temporary failures of one step before it counts as permanent.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 5, initial_backoff: Duration::from_secs(30), max_backoff: Duration::from_secs(30 * 60) }
    }
}

impl RetryPolicy {
    /// Backoff after the `failures`-th consecutive failure: doubling from the initial backoff,
    /// capped at the maximum.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial_backoff.saturating_mul(1u32 << doublings).min(self.max_backoff)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Try the same work again, not before `after`.
    Retry { after: Timestamp },
    /// The sector is paused with its error visible until someone resumes it.
    Paused,
    Aborted,
}

/// Records `error` on the sector and decides what happens next. A temporary error that has
/// already used up the policy's attempts becomes permanent.
pub fn on_error(record: &SectorRecord, error: StepError, policy: &RetryPolicy, now: Timestamp) -> (SectorRecord, Outcome) {
    let mut out = record.clone();
    let mut level = error.level;
    let mut message = error.message;
    if level == ErrorLevel::Temporary {
        out.failures += 1;
        if out.failures >= policy.max_attempts {
            level = ErrorLevel::Permanent;
            message = format!("{message} (gave up after {} attempts)", out.failures);
        }
    }
    let outcome = match level {
        ErrorLevel::Temporary => {
            let wait = SignedDuration::try_from(policy.backoff(out.failures)).unwrap_or(SignedDuration::MAX);
            let after = now.checked_add(wait).unwrap_or(Timestamp::MAX);
            out.retry_after = Some(after);
            Outcome::Retry { after }
        }
        ErrorLevel::Permanent => {
            out.retry_after = None;
            out.paused = Some(Pause { since: now, reason: PauseReason::Error });
            Outcome::Paused
        }
        ErrorLevel::Abort => {
            out.retry_after = None;
            out.enter(State::Aborted, now);
            Outcome::Aborted
        }
    };
    out.last_error = Some(ErrorRecord { level, step: error.step, message, time: now });
    (out, outcome)
}
