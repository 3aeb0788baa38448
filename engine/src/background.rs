//! The background processes' loop: poll, back off while idle, wake up at once when this
//! executor created work, slow down on errors.
//!
//! Each process runs an iteration; when it reports more work it runs again at once. Otherwise
//! it sleeps: the intra-batch interval after finding work, doubling while it finds nothing up
//! to `max_idle_poll_interval` (adaptive polling), with ±10 % jitter. After 3 consecutive
//! errors the sleep grows ×1.25 per error up to 5× the interval. A wake-up (this executor
//! enqueued, finished a task, inserted children, …) ends the sleep after a short debounce (so
//! that a burst of wake-ups costs one storage call); when the iteration after a wake-up finds
//! nothing (the storage's `updatedAt < now` needs its clock to have moved on), it is tried
//! again a few times at short intervals before the loop goes back to sleeping.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::executor::Inner;

/// The six background processes (reference §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Process {
    ClaimReady = 0,
    ChildrenFinished = 1,
    MarkFinished = 2,
    Close = 3,
    Cancellations = 4,
    Expired = 5,
}

pub(crate) const PROCESSES: [Process; 6] = [
    Process::ClaimReady,
    Process::ChildrenFinished,
    Process::MarkFinished,
    Process::Close,
    Process::Cancellations,
    Process::Expired,
];

impl Process {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::ClaimReady => "processReadyTaskExecutions",
            Self::ChildrenFinished => "processOnChildrenFinishedTaskExecutions",
            Self::MarkFinished => "markFinishedTaskExecutionsAsCloseStatusReady",
            Self::Close => "closeFinishedTaskExecutions",
            Self::Cancellations => "cancelNeedsPromiseCancellationTaskExecutions",
            Self::Expired => "retryExpiredTaskExecutions",
        }
    }
}

/// After a wake-up, wait this long before polling, so that a burst costs one call.
const WAKE_DEBOUNCE: Duration = Duration::from_millis(2);
/// After a wake-up whose iteration found nothing, try again this often…
const QUICK_RETRY: Duration = Duration::from_millis(5);
/// …this many times.
const QUICK_RETRIES: u32 = 3;

/// Wake-ups of the background processes.
#[derive(Default)]
pub(crate) struct Wakers {
    wake: [Notify; 6],
    reschedule: [Notify; 6],
    scheduled: Mutex<[BTreeSet<Instant>; 6]>,
}

/// At most this many pending scheduled wake-ups per process (the latest are dropped: polling
/// still finds that work).
const MAX_SCHEDULED: usize = 1024;

impl Wakers {
    /// Runs `process` soon (now, after the debounce).
    pub(crate) fn wake(&self, process: Process) {
        self.wake[process as usize].notify_one();
    }

    /// Runs `process` once `delay` has passed (e.g. when a retry or a delayed start is due),
    /// without waking it before.
    pub(crate) fn wake_after(&self, process: Process, delay: Duration) {
        if delay.is_zero() {
            self.wake(process);
            return;
        }
        // One millisecond more: the storage compares with a strict `<`.
        let at = Instant::now() + delay + Duration::from_millis(1);
        let mut scheduled = self
            .scheduled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = &mut scheduled[process as usize];
        let earliest = slot.first().is_none_or(|first| at < *first);
        slot.insert(at);
        if slot.len() > MAX_SCHEDULED {
            slot.pop_last();
        }
        drop(scheduled);
        if earliest {
            self.reschedule[process as usize].notify_one();
        }
    }

    fn scheduled(&self, process: Process) -> Option<Instant> {
        self.scheduled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)[process as usize]
            .first()
            .copied()
    }

    /// Removes the scheduled wake-ups that are due; whether there were any.
    fn take_due(&self, process: Process, now: Instant) -> bool {
        let mut scheduled = self
            .scheduled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = &mut scheduled[process as usize];
        let mut any = false;
        while slot.first().is_some_and(|at| *at <= now) {
            slot.pop_first();
            any = true;
        }
        any
    }
}

fn jitter(duration: Duration) -> Duration {
    duration.mul_f64(0.9 + 0.2 * fastrand::f64())
}

fn error_sleep(base: Duration, consecutive_errors: u32) -> Duration {
    if consecutive_errors <= 3 {
        return base;
    }
    let factor = 1.25_f64.powi(i32::try_from(consecutive_errors - 3).unwrap_or(i32::MAX));
    base.mul_f64(factor.min(5.0))
}

/// Runs `process` until the executor's shutdown signal fires.
pub(crate) async fn run_process(inner: Arc<Inner>, process: Process) {
    let base = inner.options.intra_batch_sleep;
    let max_idle = inner.options.max_idle_poll_interval;
    let mut idle = base;
    let mut errors = 0_u32;
    let mut quick_retries = 0_u32;
    let wakers = &inner.wakers;
    loop {
        if inner.shutdown.is_fired() {
            return;
        }
        let wait = match inner.iterate(process).await {
            Ok(true) => {
                errors = 0;
                idle = base;
                quick_retries = 0;
                tokio::task::yield_now().await;
                continue;
            }
            Ok(false) => {
                errors = 0;
                if quick_retries > 0 {
                    quick_retries -= 1;
                    QUICK_RETRY
                } else {
                    let wait = idle;
                    idle = (idle * 2).min(max_idle);
                    jitter(wait)
                }
            }
            Err(error) => {
                errors += 1;
                quick_retries = 0;
                inner.log_error(format_args!(
                    "background process {} failed ({errors} in a row): {error}",
                    process.name()
                ));
                jitter(error_sleep(base, errors))
            }
        };
        let until = Instant::now() + wait;
        loop {
            let deadline = wakers.scheduled(process).map_or(until, |at| at.min(until));
            tokio::select! {
                biased;
                () = inner.shutdown.fired() => return,
                () = wakers.wake[process as usize].notified() => {
                    idle = base;
                    quick_retries = QUICK_RETRIES;
                    tokio::time::sleep(WAKE_DEBOUNCE).await;
                    break;
                }
                () = wakers.reschedule[process as usize].notified() => {}
                () = tokio::time::sleep_until(deadline) => {
                    if wakers.take_due(process, Instant::now()) {
                        idle = base;
                        quick_retries = QUICK_RETRIES;
                    }
                    if Instant::now() >= until || quick_retries == QUICK_RETRIES {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_sleep_grows_after_three_errors_up_to_five_times() {
        let base = Duration::from_millis(100);
        assert_eq!(error_sleep(base, 1), base);
        assert_eq!(error_sleep(base, 3), base);
        assert_eq!(error_sleep(base, 4), Duration::from_millis(125));
        assert_eq!(error_sleep(base, 50), Duration::from_millis(500));
        for _ in 0..100 {
            let j = jitter(base);
            assert!(j >= Duration::from_millis(90) && j <= Duration::from_millis(110));
        }
    }
}
