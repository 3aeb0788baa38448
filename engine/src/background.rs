//! The background processes' loop: wake up at once when this executor created work, poll
//! rarely for work created elsewhere, slow down on errors.
//!
//! Each process runs an iteration at start; when an iteration reports more work (a full batch)
//! it runs again at once. Otherwise it sleeps until a wake-up or its next poll:
//!
//! - **Wake-ups.** This executor enqueued, finished a task, inserted children, … : the process
//!   concerned runs after a short debounce (a burst costs one storage call, and the storage's
//!   clock has moved past the write that caused it: several processes select `updatedAt <
//!   now`). A delayed start or retry, or a sleeping task's timeout, schedules a wake-up when
//!   due. Wake-ups do not change the polling schedule.
//! - **Polls**, for work created elsewhere: the claiming and cancellation processes every
//!   `max_idle_poll_interval` (10 s), the others every `max_idle_maintenance_poll_interval`
//!   (5 min), minus up to 10 % jitter (so the bound holds). A poll that finds work (there is
//!   work from elsewhere: more may follow) polls again after the intra-batch interval, doubling
//!   back to the bound.
//! - **Errors.** After 3 consecutive errors the sleep grows ×1.25 per error up to 5× the
//!   intra-batch interval.

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
    /// Whether the process polls at the maintenance bound (its work normally follows from
    /// this executor's own, which wakes it).
    fn is_maintenance(self) -> bool {
        !matches!(self, Self::ClaimReady | Self::Cancellations)
    }

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

/// After a wake-up, wait this long before the iteration, so that a burst costs one call and
/// the storage's clock (milliseconds) has moved past the write that caused the wake-up.
const WAKE_DEBOUNCE: Duration = Duration::from_millis(10);

/// Wake-ups of the background processes.
#[derive(Default)]
pub(crate) struct Wakers {
    wake: [Notify; 6],
    reschedule: [Notify; 6],
    scheduled: Mutex<[BTreeSet<Instant>; 6]>,
}

/// How long after the due time a scheduled wake-up runs.
const SCHEDULE_MARGIN: Duration = Duration::from_millis(2);
/// When the iteration of a scheduled wake-up, or of a wake-up of the claiming process, found
/// nothing (the work is due on this process's estimate of the storage's clock, `store.now()`,
/// which may lag behind the storage's own, which decides), it is tried again after this,
/// doubling…
const SCHEDULED_RETRY: Duration = Duration::from_millis(25);
/// …while the retries are shorter than this (together about 1.6 s, the uncertainty of a
/// clock estimate from one-second `Date` headers).
const SCHEDULED_RETRY_MAX: Duration = Duration::from_millis(800);

/// What ended a sleep of a background process.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Poll,
    Wake,
    Scheduled,
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
        // A little more: the storage compares with a strict `<`, on its own clock.
        let at = Instant::now() + delay + SCHEDULE_MARGIN;
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

/// Up to 10 % less: polls of several executors spread out, and the bound still holds.
fn jitter(duration: Duration) -> Duration {
    duration.mul_f64(0.9 + 0.1 * fastrand::f64())
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
    let bound = if process.is_maintenance() {
        inner.options.max_idle_maintenance_poll_interval
    } else {
        inner.options.max_idle_poll_interval
    };
    // The interval to the next poll.
    let mut poll = bound;
    let mut errors = 0_u32;
    let mut trigger = Trigger::Poll;
    // The retry after a scheduled wake-up whose iteration found nothing.
    let mut retry = SCHEDULED_RETRY;
    // Whether the current sleep is such a retry.
    let mut retrying;
    let wakers = &inner.wakers;
    loop {
        if inner.shutdown.is_fired() {
            return;
        }
        let wait = match inner.iterate(process).await {
            Ok(progress) => {
                errors = 0;
                if progress.more {
                    tokio::task::yield_now().await;
                    continue;
                }
                if trigger == Trigger::Poll && progress.found {
                    // Work from elsewhere: more may follow soon.
                    poll = base;
                }
                // A wake-up of the claiming process expects an execution this executor made
                // ready: like a scheduled one, it is retried while it finds nothing.
                let expects_work = trigger == Trigger::Scheduled
                    || (trigger == Trigger::Wake && process == Process::ClaimReady);
                if progress.found || !expects_work {
                    retry = SCHEDULED_RETRY;
                }
                if expects_work && !progress.found && retry <= SCHEDULED_RETRY_MAX {
                    let wait = retry;
                    retry *= 2;
                    retrying = true;
                    // The retry keeps this trigger: it ends when it finds the work, or after the
                    // last retry.
                    wait
                } else {
                    let wait = poll;
                    poll = (poll * 2).min(bound);
                    retrying = false;
                    jitter(wait)
                }
            }
            Err(error) => {
                errors += 1;
                inner.log_error(format_args!(
                    "background process {} failed ({errors} in a row): {error}",
                    process.name()
                ));
                retrying = false;
                jitter(error_sleep(base, errors))
            }
        };
        let until = Instant::now() + wait;
        let woken = loop {
            let deadline = wakers.scheduled(process).map_or(until, |at| at.min(until));
            tokio::select! {
                biased;
                () = inner.shutdown.fired() => return,
                () = wakers.wake[process as usize].notified() => {
                    tokio::time::sleep(WAKE_DEBOUNCE).await;
                    break Some(Trigger::Wake);
                }
                () = wakers.reschedule[process as usize].notified() => {}
                () = tokio::time::sleep_until(deadline) => {
                    if wakers.take_due(process, Instant::now()) {
                        retry = SCHEDULED_RETRY;
                        break Some(Trigger::Scheduled);
                    }
                    if Instant::now() >= until {
                        break None;
                    }
                }
            }
        };
        // A retry's deadline keeps its trigger; a plain deadline is a poll.
        trigger = match woken {
            Some(woken) => woken,
            None if retrying => trigger,
            None => Trigger::Poll,
        };
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
