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
//! - **The claiming process knows what it waits for.** Each execution this executor made
//!   ready (enqueued, inserted as a child, scheduled for a retry) is *awaited* from its start
//!   time until this executor claims it. A wake-up or a scheduled wake-up of the claiming
//!   process makes a storage call only when an awaited execution is due or when the wake-up
//!   came from work it cannot name (leases recovered, a slot freed while full); so the wake-up
//!   of an execution that an earlier claim already took costs nothing. A claim that leaves
//!   a due execution unclaimed is retried (the storage's clock may not have reached its start
//!   time yet: see `SCHEDULED_RETRY`), and after the last retry the execution is no longer
//!   awaited (another executor took it; the polls find it otherwise).
//! - **Polls**, for work created elsewhere: the claiming and cancellation processes every
//!   `max_idle_poll_interval` (10 s), the others every `max_idle_maintenance_poll_interval`
//!   (5 min), minus up to 10 % jitter (so the bound holds). A poll that finds work (there is
//!   work from elsewhere: more may follow) polls again after the intra-batch interval, doubling
//!   back to the bound.
//! - **Errors.** After 3 consecutive errors the sleep grows ×1.25 per error up to 5× the
//!   intra-batch interval.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::executor::Inner;
use crate::processes::Progress;

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
    /// What the claiming process waits for (see the [module](self) documentation).
    awaited: Mutex<Awaited>,
}

/// The executions this executor made ready and has not claimed yet, by id, with the instant
/// they are due; and whether the claiming process was woken for work it cannot name.
#[derive(Default)]
struct Awaited {
    due: HashMap<String, Instant>,
    /// Wake-ups for unnamed work so far, and how many of them a claim has served (counts,
    /// not a flag: a wake-up that arrives while a claim is in flight is not served by it).
    unnamed_wakes: u64,
    unnamed_served: u64,
}

/// At most this many awaited executions (beyond, a new one counts as unnamed work: claimed
/// once and retried, as before the bookkeeping).
const MAX_AWAITED: usize = 100_000;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Poll,
    Wake,
    Scheduled,
}

/// At most this many pending scheduled wake-ups per process (the latest are dropped: polling
/// still finds that work).
const MAX_SCHEDULED: usize = 1024;

impl Wakers {
    /// Runs `process` soon (now, after the debounce). For the claiming process: there may be
    /// ready work this executor cannot name (use [`ready`](Self::ready) when it can).
    pub(crate) fn wake(&self, process: Process) {
        if process == Process::ClaimReady {
            self.awaited().unnamed_wakes += 1;
        }
        self.wake[process as usize].notify_one();
    }

    fn awaited(&self) -> std::sync::MutexGuard<'_, Awaited> {
        self.awaited.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `execution_id`, which this executor made ready, can be claimed once `delay` has
    /// passed: the claiming process runs then and awaits it until it claims it.
    pub(crate) fn ready(&self, execution_id: &str, delay: Duration) {
        self.ready_many([(execution_id, delay)]);
    }

    /// [`ready`](Self::ready) for several executions (one wake-up per distinct delay).
    pub(crate) fn ready_many<'a>(&self, executions: impl IntoIterator<Item = (&'a str, Duration)>) {
        let now = Instant::now();
        let mut delays = BTreeSet::new();
        {
            let mut awaited = self.awaited();
            for (execution_id, delay) in executions {
                if awaited.due.len() < MAX_AWAITED {
                    awaited.due.insert(execution_id.to_owned(), now + delay);
                } else {
                    awaited.unnamed_wakes += 1;
                }
                delays.insert(delay);
            }
        }
        for delay in delays {
            if delay.is_zero() {
                self.wake[Process::ClaimReady as usize].notify_one();
            } else {
                self.wake_after(Process::ClaimReady, delay);
            }
        }
    }

    /// This executor claimed these executions: no longer awaited.
    pub(crate) fn claimed<'a>(&self, execution_ids: impl IntoIterator<Item = &'a str>) {
        let mut awaited = self.awaited();
        if awaited.due.is_empty() {
            return;
        }
        for id in execution_ids {
            awaited.due.remove(id);
        }
    }

    /// Whether a claim now has something to find: an awaited execution is due, or a wake-up
    /// for unnamed work has not been served.
    fn claim_expects_work(&self, now: Instant) -> bool {
        let awaited = self.awaited();
        awaited.unnamed_wakes > awaited.unnamed_served
            || awaited.due.values().any(|due| *due <= now)
    }

    /// The wake-ups for unnamed work so far.
    fn unnamed_wakes(&self) -> u64 {
        self.awaited().unnamed_wakes
    }

    /// A claim that started after `seen` wake-ups for unnamed work found work: it served them.
    fn served_unnamed(&self, seen: u64) {
        let mut awaited = self.awaited();
        awaited.unnamed_served = awaited.unnamed_served.max(seen);
    }

    /// The claims found what they could: the wake-ups for unnamed work up to `seen` count as
    /// served, and the awaited executions due by `now` are forgotten (another executor took
    /// them, or the polls will find them).
    fn give_up_claims(&self, now: Instant, seen: u64) {
        let mut awaited = self.awaited();
        awaited.unnamed_served = awaited.unnamed_served.max(seen);
        awaited.due.retain(|_, due| *due > now);
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

/// How long a background process sleeps next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sleep {
    /// A retry of a wake-up whose work is not found yet (exact, and it keeps the trigger).
    Retry(Duration),
    /// Until the next poll, or the back-off after an error (to be jittered).
    Poll(Duration),
}

/// The sleeping schedule of one background process: when it polls, how the retries of a
/// wake-up grow, how it slows down after errors. Plain data, so that its decisions are
/// unit-tested apart from the clock and the storage.
#[derive(Debug)]
struct Schedule {
    /// The intra-batch interval: the poll after a poll that found work.
    base: Duration,
    /// The idle poll bound.
    bound: Duration,
    /// The interval to the next poll.
    poll: Duration,
    /// Errors in a row.
    errors: u32,
    /// What ended the last sleep.
    trigger: Trigger,
    /// The next retry of a wake-up whose work is not found yet.
    retry: Duration,
    /// Whether the current sleep is such a retry.
    retrying: bool,
}

impl Schedule {
    fn new(base: Duration, bound: Duration) -> Self {
        Self {
            base,
            bound,
            poll: bound,
            errors: 0,
            trigger: Trigger::Poll,
            retry: SCHEDULED_RETRY,
            retrying: false,
        }
    }

    /// An iteration succeeded (found work or not).
    fn succeeded(&mut self) {
        self.errors = 0;
    }

    /// After an iteration that did not fill a batch: it `found` work or not, and what the
    /// wake-up expected is `unfound` yet or not. The caller gives up on what is unfound when
    /// this returns [`Sleep::Poll`].
    fn after_iteration(&mut self, found: bool, unfound: bool) -> Sleep {
        if self.trigger == Trigger::Poll && found {
            // Work from elsewhere: more may follow soon.
            self.poll = self.base;
        }
        if unfound && self.retry <= SCHEDULED_RETRY_MAX {
            let wait = self.retry;
            self.retry *= 2;
            self.retrying = true;
            return Sleep::Retry(wait);
        }
        self.retry = SCHEDULED_RETRY;
        self.retrying = false;
        let wait = self.poll;
        self.poll = (self.poll * 2).min(self.bound);
        Sleep::Poll(wait)
    }

    /// After a failed iteration: the back-off.
    fn after_error(&mut self) -> Sleep {
        self.errors += 1;
        self.retrying = false;
        Sleep::Poll(error_sleep(self.base, self.errors))
    }

    /// What ended the sleep: a wake-up, a scheduled wake-up, or its deadline (`None`). A
    /// retry's deadline keeps its trigger; a plain deadline is a poll; a scheduled wake-up
    /// starts its retries afresh.
    fn woken(&mut self, woken: Option<Trigger>) {
        if woken == Some(Trigger::Scheduled) {
            self.retry = SCHEDULED_RETRY;
        }
        self.trigger = match woken {
            Some(woken) => woken,
            None if self.retrying => self.trigger,
            None => Trigger::Poll,
        };
    }
}

/// Runs `process` until the executor's shutdown signal fires.
pub(crate) async fn run_process(inner: Arc<Inner>, process: Process) {
    let bound = if process.is_maintenance() {
        inner.options.max_idle_maintenance_poll_interval
    } else {
        inner.options.max_idle_poll_interval
    };
    let mut schedule = Schedule::new(inner.options.intra_batch_sleep, bound);
    let wakers = &inner.wakers;
    let claims = process == Process::ClaimReady;
    loop {
        if inner.shutdown.is_fired() {
            return;
        }
        let trigger = schedule.trigger;
        // A wake-up of the claiming process with nothing awaited due and no unnamed work
        // (what it was for was claimed already) makes no call.
        let unnamed_seen = if claims { wakers.unnamed_wakes() } else { 0 };
        let skip = claims && trigger != Trigger::Poll && !wakers.claim_expects_work(Instant::now());
        let iteration = if skip {
            Ok(Progress::default())
        } else {
            inner.iterate(process).await
        };
        let sleep = match iteration {
            Ok(progress) => {
                schedule.succeeded();
                if progress.more {
                    tokio::task::yield_now().await;
                    continue;
                }
                // What a wake-up expected and did not find yet: a scheduled wake-up its work;
                // the claiming process, woken, what it awaits (or the unnamed work, unless
                // this claim found some).
                let unfound = if claims {
                    if progress.found {
                        wakers.served_unnamed(unnamed_seen);
                    }
                    trigger != Trigger::Poll && wakers.claim_expects_work(Instant::now())
                } else {
                    trigger == Trigger::Scheduled && !progress.found
                };
                let sleep = schedule.after_iteration(progress.found, unfound);
                if claims && unfound && matches!(sleep, Sleep::Poll(_)) {
                    // The last retry found nothing more.
                    wakers.give_up_claims(Instant::now(), unnamed_seen);
                }
                sleep
            }
            Err(error) => {
                let sleep = schedule.after_error();
                inner.log_error(format_args!(
                    "background process {} failed ({} in a row): {error}",
                    process.name(),
                    schedule.errors
                ));
                sleep
            }
        };
        let wait = match sleep {
            Sleep::Retry(wait) => wait,
            Sleep::Poll(wait) => jitter(wait),
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
                        break Some(Trigger::Scheduled);
                    }
                    if Instant::now() >= until {
                        break None;
                    }
                }
            }
        };
        schedule.woken(woken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_awaited_execution_is_expected_once_due_until_claimed() {
        let wakers = Wakers::default();
        let now = Instant::now();
        assert!(!wakers.claim_expects_work(now), "nothing awaited yet");
        wakers.ready("a", Duration::ZERO);
        wakers.ready("b", Duration::from_secs(60));
        assert!(wakers.claim_expects_work(Instant::now()), "a is due");
        wakers.claimed(["a"]);
        assert!(
            !wakers.claim_expects_work(Instant::now()),
            "b is not due for a minute: a wake-up now makes no call"
        );
        assert!(wakers.claim_expects_work(Instant::now() + Duration::from_secs(61)));
        wakers.claimed(["b", "never-awaited"]);
        assert!(!wakers.claim_expects_work(Instant::now() + Duration::from_secs(61)));
    }

    #[test]
    fn giving_up_forgets_the_due_executions_and_keeps_the_later_ones() {
        let wakers = Wakers::default();
        wakers.ready_many([("due", Duration::ZERO), ("later", Duration::from_secs(60))]);
        let seen = wakers.unnamed_wakes();
        wakers.give_up_claims(Instant::now(), seen);
        assert!(!wakers.claim_expects_work(Instant::now()));
        assert!(
            wakers.claim_expects_work(Instant::now() + Duration::from_secs(61)),
            "the later one is still awaited"
        );
    }

    #[test]
    fn a_wake_up_for_unnamed_work_is_served_only_by_a_claim_that_started_after_it() {
        let wakers = Wakers::default();
        wakers.wake(Process::ClaimReady);
        assert!(wakers.claim_expects_work(Instant::now()));
        // A claim starts, then another wake-up for unnamed work arrives while it is in flight.
        let seen = wakers.unnamed_wakes();
        wakers.wake(Process::ClaimReady);
        wakers.served_unnamed(seen);
        assert!(
            wakers.claim_expects_work(Instant::now()),
            "the second wake-up is not served by the claim in flight"
        );
        let seen = wakers.unnamed_wakes();
        wakers.served_unnamed(seen);
        assert!(!wakers.claim_expects_work(Instant::now()));
        // Other processes' wake-ups are not claim work.
        wakers.wake(Process::Close);
        assert!(!wakers.claim_expects_work(Instant::now()));
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn idle_polls_stay_at_the_bound_and_a_poll_that_finds_work_polls_again_soon() {
        let mut schedule = Schedule::new(ms(500), ms(10_000));
        for _ in 0..3 {
            assert_eq!(
                schedule.after_iteration(false, false),
                Sleep::Poll(ms(10_000))
            );
            schedule.woken(None);
        }
        // Work from elsewhere: the next poll after 500 ms, doubling back to the bound.
        assert_eq!(schedule.after_iteration(true, false), Sleep::Poll(ms(500)));
        let mut sleeps = Vec::new();
        for _ in 0..6 {
            schedule.woken(None);
            sleeps.push(schedule.after_iteration(false, false));
        }
        let polls = [1_000, 2_000, 4_000, 8_000, 10_000, 10_000].map(|m| Sleep::Poll(ms(m)));
        assert_eq!(sleeps, polls);
    }

    #[test]
    fn a_wake_up_that_finds_work_does_not_shorten_the_polls() {
        let mut schedule = Schedule::new(ms(500), ms(10_000));
        schedule.woken(Some(Trigger::Wake));
        assert_eq!(
            schedule.after_iteration(true, false),
            Sleep::Poll(ms(10_000))
        );
    }

    #[test]
    fn unfound_work_is_retried_after_25_to_800_ms_then_given_up_keeping_the_trigger() {
        let mut schedule = Schedule::new(ms(500), ms(10_000));
        schedule.woken(Some(Trigger::Scheduled));
        let mut sleeps = Vec::new();
        for _ in 0..7 {
            sleeps.push(schedule.after_iteration(false, true));
            assert_eq!(schedule.trigger, Trigger::Scheduled);
            schedule.woken(None);
        }
        let mut expected: Vec<Sleep> = [25, 50, 100, 200, 400, 800]
            .map(|m| Sleep::Retry(ms(m)))
            .to_vec();
        expected.push(Sleep::Poll(ms(10_000)));
        assert_eq!(sleeps, expected);
        assert_eq!(
            schedule.trigger,
            Trigger::Poll,
            "after the last retry: a poll"
        );
        // The next wake-up retries from 25 ms again.
        schedule.woken(Some(Trigger::Wake));
        assert_eq!(schedule.after_iteration(false, true), Sleep::Retry(ms(25)));
    }

    #[test]
    fn a_scheduled_wake_up_during_retries_starts_them_afresh() {
        let mut schedule = Schedule::new(ms(500), ms(10_000));
        schedule.woken(Some(Trigger::Wake));
        for _ in 0..3 {
            schedule.after_iteration(false, true);
            schedule.woken(None);
        }
        assert_eq!(schedule.after_iteration(false, true), Sleep::Retry(ms(200)));
        schedule.woken(Some(Trigger::Scheduled));
        assert_eq!(schedule.after_iteration(false, true), Sleep::Retry(ms(25)));
    }

    #[test]
    fn errors_back_off_and_a_success_resets_them() {
        let mut schedule = Schedule::new(ms(100), ms(10_000));
        let sleeps: Vec<Sleep> = (0..5).map(|_| schedule.after_error()).collect();
        let expected = [100, 100, 100, 125].map(|m| Sleep::Poll(ms(m)));
        assert_eq!(sleeps[..4], expected);
        // 100 ms × 1.25²
        assert_eq!(sleeps[4], Sleep::Poll(Duration::from_micros(156_250)));
        schedule.succeeded();
        assert_eq!(schedule.after_error(), Sleep::Poll(ms(100)));
    }

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
