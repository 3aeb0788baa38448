//! [`RetryPolicy`]: which failed calls the client calls again, and when.
//!
//! A call is retried only when **both** hold:
//!
//! - the failure is transient ([`ConvexError::is_transient`]): connection refused or reset,
//!   timeouts, HTTP 429, 502, 503 and 504, and Convex's overload and write-conflict (OCC)
//!   errors;
//! - re-sending is safe for the operation ([`RetrySafety`]): always when the failure proves the
//!   call did not take effect (nothing sent, 429, 503, a mutation's write conflict); when its
//!   outcome is unknown (a timeout or reset after sending, 502, 504), only for
//!   [`Idempotent`](RetrySafety::Idempotent) and
//!   [`VerifyDuplicates`](RetrySafety::VerifyDuplicates) operations, never for
//!   [`OnlyUnsent`](RetrySafety::OnlyUnsent) ones.
//!
//! Retries wait an exponential backoff with full jitter — a uniform random delay in
//! `[0, min(max_backoff, initial_backoff × 2^(n-1))]` before retry `n` — or longer when the
//! server asked for it with `Retry-After` (429/503), and stop after `max_attempts` attempts or
//! when the next attempt would start more than `max_elapsed` after the first.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::http_date::parse_http_date;
use super::{ConvexError, FunctionKind, RetrySafety};

/// When the client calls a failed function again.
///
/// A call is retried only when the failure is transient ([`ConvexError::is_transient`]) and
/// re-sending is safe for the operation ([`RetrySafety`]): always when the failure proves the
/// call did not take effect (nothing sent, HTTP 429 or 503, a mutation's write conflict); when
/// its outcome is unknown (a timeout or reset after sending, 502, 504, an action's write
/// conflict), only for `Idempotent` and `VerifyDuplicates` operations. Before retry `n` the
/// client waits a uniform random delay in `[0, min(max_backoff, initial_backoff × 2^(n-1))]`
/// (full jitter), or the server's `Retry-After` when that is longer.
///
/// `#[non_exhaustive]`: start from [`RetryPolicy::default()`] (or [`RetryPolicy::none()`]) and
/// adjust with the `with_…` methods.
///
/// | setting | default |
/// | --- | --- |
/// | [`max_attempts`](Self::max_attempts) | 5 (the first attempt and 4 retries) |
/// | [`initial_backoff`](Self::initial_backoff) | 100 ms |
/// | [`max_backoff`](Self::max_backoff) | 5 s |
/// | [`max_elapsed`](Self::max_elapsed) | 30 s |
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; 1 disables retries. At least 1.
    pub max_attempts: u32,
    /// The cap of the first retry's random delay; each retry doubles it.
    pub initial_backoff: Duration,
    /// The largest cap of a retry's random delay (a server's `Retry-After` may ask for more).
    pub max_backoff: Duration,
    /// No attempt starts later than this after the first one. An attempt that started in time
    /// still runs to its end (at most the request timeout), so a call lasts at most about
    /// `max_elapsed` plus one request timeout.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries: every call is attempted once.
    pub fn none() -> Self {
        Self::default().with_max_attempts(1)
    }

    /// Sets [`max_attempts`](Self::max_attempts) (0 counts as 1).
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets [`initial_backoff`](Self::initial_backoff).
    pub fn with_initial_backoff(mut self, initial_backoff: Duration) -> Self {
        self.initial_backoff = initial_backoff;
        self
    }

    /// Sets [`max_backoff`](Self::max_backoff).
    pub fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// Sets [`max_elapsed`](Self::max_elapsed).
    pub fn with_max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.max_elapsed = max_elapsed;
        self
    }

    /// The upper bound of the random delay before retry `retry` (1 for the first retry):
    /// `min(max_backoff, initial_backoff × 2^(retry-1))`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(32);
        let cap = self
            .initial_backoff
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max_backoff);
        cap.min(self.max_backoff)
    }

    /// The delay before retry `retry`: uniform in `[0, backoff_cap(retry)]` ("full jitter"),
    /// so that clients failing together do not retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        self.backoff_with(retry, &mut fastrand::Rng::new())
    }

    pub(crate) fn backoff_with(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let cap = u64::try_from(self.backoff_cap(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.u64(0..=cap))
    }
}

/// Whether a failed attempt may have taken effect on the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The failure proves the call did not run, or ran and did not commit.
    NotApplied,
    /// The call may have run and committed; only its answer is missing.
    Unknown,
}

/// `errorData`-less codes with which Convex reports overload (`ErrorMetadata::overloaded`
/// short messages, as listed by Convex's own clients for backing off) and write conflicts
/// (`OptimisticConcurrencyControlFailure`, Convex's OCC error). They arrive as the `code` of a
/// non-200 answer, or inside the message of a function that called another one.
pub(crate) const TRANSIENT_CONVEX_CODES: [&str; 10] = [
    OCC_CODE,
    "Overloaded",
    "ServiceUnavailable",
    "TooManyConcurrentRequests",
    "CommitterFullError",
    "ExecuteFullError",
    "SystemTimeoutError",
    "ExpiredInQueue",
    "TooManyWritesInTimePeriod",
    "SubscriptionsWorkerFullError",
];

/// Convex's code for a write conflict the backend gave up retrying.
pub(crate) const OCC_CODE: &str = "OptimisticConcurrencyControlFailure";

/// How Convex words a write conflict in a function's error message (see
/// <https://docs.convex.dev/error#1>).
const OCC_MESSAGE: &str = "changed while this mutation was being run";

/// Whether `text` names a transient Convex condition (overload or write conflict).
fn names_transient_condition(text: &str) -> bool {
    text.contains(OCC_MESSAGE)
        || TRANSIENT_CONVEX_CODES
            .iter()
            .any(|code| text.contains(code))
}

/// `None` when `error` is not transient; otherwise whether the failed attempt may have taken
/// effect.
pub(crate) fn classify(error: &ConvexError) -> Option<Outcome> {
    match error {
        ConvexError::Transport { request_sent, .. } => Some(if *request_sent {
            Outcome::Unknown
        } else {
            Outcome::NotApplied
        }),
        ConvexError::Http {
            kind, status, code, ..
        } => match status {
            // Rate limited or unavailable: refused before running. Convex answers 503 for its
            // overload errors and for a write conflict it gave up retrying (not committed).
            429 | 503 => Some(Outcome::NotApplied),
            // A gateway or proxy failed: it may have forwarded the call.
            502 | 504 => Some(Outcome::Unknown),
            _ => match code.as_deref() {
                Some(OCC_CODE) if *kind != FunctionKind::Action => Some(Outcome::NotApplied),
                Some(code) if TRANSIENT_CONVEX_CODES.contains(&code) => Some(Outcome::Unknown),
                _ => None,
            },
        },
        // A function that threw with a transient condition in its message: a write conflict
        // inside a mutation means its transaction did not commit; an action that reports one
        // may have done other writes before, so its outcome is unknown.
        ConvexError::Function {
            message,
            code: None,
            ..
        } if names_transient_condition(message) => Some(Outcome::Unknown),
        ConvexError::Attempts { last, .. } => classify(last),
        _ => None,
    }
}

/// Like [`classify`], knowing the function's kind: a failed mutation never committed when its
/// error is a write conflict, and a query never applies anything.
pub(crate) fn classify_call(error: &ConvexError, kind: FunctionKind) -> Option<Outcome> {
    let outcome = classify(error)?;
    Some(match (kind, error) {
        (FunctionKind::Query, _) => Outcome::NotApplied,
        (FunctionKind::Mutation, ConvexError::Function { message, .. })
            if message.contains(OCC_MESSAGE) || message.contains(OCC_CODE) =>
        {
            Outcome::NotApplied
        }
        _ => outcome,
    })
}

/// Whether an attempt that failed with `outcome` may be sent again under `safety`.
pub(crate) fn may_resend(outcome: Outcome, safety: RetrySafety) -> bool {
    match outcome {
        Outcome::NotApplied => true,
        Outcome::Unknown => safety != RetrySafety::OnlyUnsent,
    }
}

/// The delay a `Retry-After` header asks for: a number of seconds, or an HTTP date (relative
/// to `now`; a date in the past asks for no delay). `None` when the value is neither.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // A huge number of seconds saturates rather than failing: the time budget refuses it.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value)?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Some(Duration::from_millis(at.saturating_sub(now)))
}

/// Why the client stopped calling a function that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The last failure is not transient: calling again would fail the same way.
    NotTransient,
    /// The last failure was transient but the call may have taken effect, and the operation
    /// is [`RetrySafety::OnlyUnsent`]: re-sending it could apply it twice.
    OutcomeUnknown,
    /// The policy's `max_attempts` were made (1 when retries are disabled).
    MaxAttempts(u32),
    /// The next attempt would have started after the policy's `max_elapsed`.
    MaxElapsed(Duration),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotTransient => f.write_str("not retried: the failure is not transient"),
            Self::OutcomeUnknown => f.write_str(
                "not retried: the call may have taken effect and this operation is only \
                 re-sent when it provably did not",
            ),
            Self::MaxAttempts(1) => f.write_str("not retried: retries are disabled"),
            Self::MaxAttempts(max) => write!(f, "gave up: at most {max} attempts"),
            Self::MaxElapsed(max) => write!(
                f,
                "gave up: the next attempt would start more than {} ms after the first",
                max.as_millis()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(kind: FunctionKind, status: u16, code: Option<&str>) -> ConvexError {
        ConvexError::Http {
            path: "m:f".into(),
            kind,
            status,
            code: code.map(str::to_owned),
            message: "x".into(),
        }
    }

    fn transport(request_sent: bool) -> ConvexError {
        ConvexError::Transport {
            path: "m:f".into(),
            kind: FunctionKind::Mutation,
            message: "x".into(),
            request_sent,
        }
    }

    fn function(message: &str, code: Option<&str>) -> ConvexError {
        ConvexError::Function {
            path: "m:f".into(),
            message: message.into(),
            code: code.map(str::to_owned),
            data: None,
        }
    }

    #[test]
    fn defaults_and_setters() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts, 5);
        assert_eq!(p.initial_backoff, Duration::from_millis(100));
        assert_eq!(p.max_backoff, Duration::from_secs(5));
        assert_eq!(p.max_elapsed, Duration::from_secs(30));
        assert_eq!(RetryPolicy::none().max_attempts, 1);
        let p = RetryPolicy::default()
            .with_max_attempts(0)
            .with_initial_backoff(Duration::from_millis(7))
            .with_max_backoff(Duration::from_millis(50))
            .with_max_elapsed(Duration::from_secs(2));
        assert_eq!(p.max_attempts, 1, "0 attempts means one");
        assert_eq!(p.initial_backoff, Duration::from_millis(7));
        assert_eq!(p.max_backoff, Duration::from_millis(50));
        assert_eq!(p.max_elapsed, Duration::from_secs(2));
    }

    #[test]
    fn the_backoff_cap_doubles_up_to_the_maximum() {
        let p = RetryPolicy::default();
        let caps: Vec<u128> = (1..=8).map(|n| p.backoff_cap(n).as_millis()).collect();
        assert_eq!(caps, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(p.backoff_cap(0), Duration::from_millis(100));
        assert_eq!(
            p.backoff_cap(u32::MAX),
            Duration::from_secs(5),
            "no overflow"
        );
        let huge = RetryPolicy::default()
            .with_initial_backoff(Duration::from_secs(u64::MAX / 4))
            .with_max_backoff(Duration::from_secs(9));
        assert_eq!(huge.backoff_cap(40), Duration::from_secs(9));
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_cap_and_spreads() {
        let p = RetryPolicy::default();
        let mut rng = fastrand::Rng::with_seed(7);
        for retry in 1..=6 {
            let cap = p.backoff_cap(retry);
            let delays: Vec<Duration> = (0..2_000)
                .map(|_| p.backoff_with(retry, &mut rng))
                .collect();
            assert!(delays.iter().all(|d| *d <= cap), "retry {retry}");
            let below_quarter = delays.iter().filter(|d| **d < cap / 4).count();
            let above_three_quarters = delays.iter().filter(|d| **d > cap * 3 / 4).count();
            // Uniform: about 500 in each quarter; far from it means no jitter (or a bias).
            assert!(
                (350..650).contains(&below_quarter),
                "retry {retry}: {below_quarter}"
            );
            assert!((350..650).contains(&above_three_quarters), "retry {retry}");
        }
        let zero = RetryPolicy::default().with_initial_backoff(Duration::ZERO);
        assert_eq!(zero.backoff(3), Duration::ZERO);
        assert!(p.backoff(1) <= Duration::from_millis(100));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past asks for no delay"
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn transient_failures_and_whether_they_may_have_applied() {
        use FunctionKind::*;
        use Outcome::*;
        assert_eq!(classify(&transport(false)), Some(NotApplied));
        assert_eq!(classify(&transport(true)), Some(Unknown));
        for kind in [Query, Mutation, Action] {
            assert_eq!(classify(&http(kind, 429, None)), Some(NotApplied));
            assert_eq!(classify(&http(kind, 503, None)), Some(NotApplied));
            assert_eq!(classify(&http(kind, 503, Some(OCC_CODE))), Some(NotApplied));
            assert_eq!(classify(&http(kind, 502, None)), Some(Unknown));
            assert_eq!(classify(&http(kind, 504, None)), Some(Unknown));
            for status in [400, 401, 403, 404, 408, 413, 500, 501] {
                assert_eq!(classify(&http(kind, status, None)), None, "{status}");
            }
            assert_eq!(
                classify(&http(kind, 500, Some("InternalServerError"))),
                None
            );
            assert_eq!(
                classify(&http(kind, 500, Some("TooManyConcurrentRequests"))),
                Some(Unknown)
            );
        }
        assert_eq!(
            classify(&http(Mutation, 500, Some(OCC_CODE))),
            Some(NotApplied)
        );
        assert_eq!(classify(&http(Action, 500, Some(OCC_CODE))), Some(Unknown));

        let occ = function(
            "Documents read from or written to the \"taskExecutions\" table changed while this \
             mutation was being run and on every subsequent retry.",
            None,
        );
        assert_eq!(classify(&occ), Some(Unknown));
        assert_eq!(classify_call(&occ, Mutation), Some(NotApplied));
        assert_eq!(classify_call(&occ, Action), Some(Unknown));
        assert_eq!(classify_call(&transport(true), Query), Some(NotApplied));
        let overloaded = function("Uncaught Error: TooManyConcurrentRequests: busy", None);
        assert_eq!(classify_call(&overloaded, Mutation), Some(Unknown));
        // Our own refusals are never transient, whatever their message says.
        assert_eq!(
            classify(&function("Overloaded", Some("LIMIT_EXCEEDED"))),
            None
        );
        assert_eq!(classify(&function("boom", None)), None);
    }

    #[test]
    fn only_unsent_operations_are_not_resent_after_an_unknown_outcome() {
        use RetrySafety::*;
        for safety in [Idempotent, VerifyDuplicates, OnlyUnsent] {
            assert!(may_resend(Outcome::NotApplied, safety));
        }
        assert!(may_resend(Outcome::Unknown, Idempotent));
        assert!(may_resend(Outcome::Unknown, VerifyDuplicates));
        assert!(!may_resend(Outcome::Unknown, OnlyUnsent));
    }

    #[test]
    fn stop_reasons_read_well() {
        assert_eq!(
            StopReason::MaxAttempts(5).to_string(),
            "gave up: at most 5 attempts"
        );
        assert_eq!(
            StopReason::MaxAttempts(1).to_string(),
            "not retried: retries are disabled"
        );
        assert!(StopReason::MaxElapsed(Duration::from_secs(2))
            .to_string()
            .contains("2000 ms"));
        assert!(StopReason::OutcomeUnknown
            .to_string()
            .contains("may have taken effect"));
        assert!(StopReason::NotTransient
            .to_string()
            .contains("not transient"));
    }
}
