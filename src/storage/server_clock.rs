//! [`ServerClock`]: this process's estimate of the deployment's clock, from the `Date` header of
//! its HTTP responses.
//!
//! A `Date` header has a resolution of one second: a response dated `D` was generated when the
//! server's clock read some `s` in `[D, D + 1000)` ms, at some local instant `t` between the
//! request's send time `a` and the response's arrival `b` (local clock). So the offset
//! `server − local` lies in `[D − b, D + 1000 − a]`: an interval of width `1000 + (b − a)`
//! whose midpoint is `D + 500 − (a + b)/2` (the single-sample estimate). Responses arrive at
//! every phase of the server's second, so intersecting the intervals of many responses narrows
//! the estimate well below one second: after `n` responses at random phases it is within about
//! ±(round trip / 2 + 1000 / n) ms (±20 ms after 64 responses with 10 ms round trips), never
//! narrower than the round trip.
//!
//! Robustness: only the last [`MAX_SAMPLES`] responses count, newest first; an older interval
//! that does not overlap what the newer ones say (a clock was stepped, a proxy rewrote the
//! header) is dropped with everything older, so a jump is followed after one response.
//!
//! Precision: [`ClockEstimate::uncertainty_ms`] is half the interval's width, at most
//! `500 + round trip / 2` ms after one response, if the server's `Date` headers are right.
//! Before any response, the estimate is the local clock itself (offset 0).
//!
//! Reads never go back by a small correction: when a new response moves the estimate back by
//! at most [`MAX_HELD_BACK_MS`], [`ServerClock::now_millis`] holds its last reading until the
//! estimate catches up. A time the engine computed from an earlier reading (a retry's
//! `startAt` = a run's start + its delay) then never lands before a later reading of the same
//! instant, so a delay measured on this clock is never shorter than asked. A larger step back
//! (a clock was stepped) is followed at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::Clock;
use crate::runtime::response_clock::ResponseClock;

/// Responses the estimate is made from.
pub const MAX_SAMPLES: usize = 64;

/// The largest step back of the estimate that [`ServerClock::now_millis`] holds its reading
/// through rather than follow: about the widest a one-response estimate can be corrected by
/// (half a second plus half a round trip), rounded up.
pub const MAX_HELD_BACK_MS: u64 = 1_000;

/// The estimated offset of the server's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockEstimate {
    /// Server clock minus local clock, in ms (positive: the server is ahead).
    pub offset_ms: i64,
    /// The true offset is within `offset_ms ± uncertainty_ms`, if the server's `Date` headers
    /// are right.
    pub uncertainty_ms: u64,
    /// How many responses the estimate rests on.
    pub samples: usize,
}

/// See the [module](self) documentation.
pub struct ServerClock {
    local: Clock,
    /// Offset intervals `[low, high]` (ms), newest last.
    samples: Mutex<VecDeque<(i64, i64)>>,
    /// The latest reading [`ServerClock::now_millis`] returned (0 before the first).
    last_reading: AtomicU64,
}

impl std::fmt::Debug for ServerClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClock")
            .field("estimate", &self.estimate())
            .finish_non_exhaustive()
    }
}

fn signed(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

impl ServerClock {
    /// A clock that knows nothing yet of the server, reading the local time from `local`.
    pub fn new(local: Clock) -> Self {
        Self {
            local,
            samples: Mutex::new(VecDeque::with_capacity(MAX_SAMPLES)),
            last_reading: AtomicU64::new(0),
        }
    }

    /// The local clock, in epoch ms.
    pub fn local_millis(&self) -> u64 {
        (self.local)()
    }

    /// The server's clock as estimated now, in epoch ms: the local clock plus the estimated
    /// offset (the local clock alone before any response), held at the previous reading
    /// through a step back of at most [`MAX_HELD_BACK_MS`] (see the [module](self)).
    pub fn now_millis(&self) -> u64 {
        let local = self.local_millis();
        let estimated = match self.estimate() {
            Some(estimate) => local.saturating_add_signed(estimate.offset_ms),
            None => local,
        };
        let mut reading = estimated;
        // `fetch_update` retries when another thread read in between, so concurrent readers
        // agree on one non-decreasing sequence.
        let _ = self
            .last_reading
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                reading = if estimated < last && last - estimated <= MAX_HELD_BACK_MS {
                    last
                } else {
                    estimated
                };
                Some(reading)
            });
        reading
    }

    /// The current estimate; `None` before any response with a `Date` header.
    pub fn estimate(&self) -> Option<ClockEstimate> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let mut newest = samples.iter().rev();
        let &(mut low, mut high) = newest.next()?;
        let mut used = 1;
        for &(l, h) in newest {
            let (l, h) = (low.max(l), high.min(h));
            if l > h {
                break;
            }
            (low, high) = (l, h);
            used += 1;
        }
        // Midpoint rounded towards negative infinity, and the half-width rounded up.
        let offset_ms = low + (high - low).div_euclid(2);
        Some(ClockEstimate {
            offset_ms,
            uncertainty_ms: u64::try_from(high - offset_ms).unwrap_or(0),
            samples: used,
        })
    }

    /// Records a response dated `server_date` (epoch ms of a whole second) that arrived at
    /// local `received` for a request sent at local `sent`.
    pub fn observe(&self, sent: u64, received: u64, server_date: u64) {
        let (sent, received) = (sent.min(received), sent.max(received));
        let low = signed(server_date) - signed(received);
        let high = signed(server_date).saturating_add(1_000) - signed(sent);
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back((low, high));
    }
}

impl ResponseClock for ServerClock {
    fn local_now(&self) -> u64 {
        self.local_millis()
    }

    fn observe(&self, sent: u64, received: u64, server_date: u64) {
        ServerClock::observe(self, sent, received, server_date);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    fn fixed(now: Arc<AtomicU64>) -> Clock {
        Arc::new(move || now.load(Ordering::SeqCst))
    }

    /// What the `Date` header of a server `offset` ms ahead of local says at local time
    /// `local_at_server`.
    fn date_of(local_at_server: u64, offset: i64) -> u64 {
        let server = local_at_server.saturating_add_signed(offset);
        server / 1_000 * 1_000
    }

    #[test]
    fn before_any_response_it_is_the_local_clock() {
        let now = Arc::new(AtomicU64::new(1_700_000_000_000));
        let clock = ServerClock::new(fixed(Arc::clone(&now)));
        assert_eq!(clock.estimate(), None);
        assert_eq!(clock.now_millis(), 1_700_000_000_000);
    }

    #[test]
    fn one_response_gives_the_midpoint_within_half_a_second_plus_half_the_round_trip() {
        let now = Arc::new(AtomicU64::new(1_700_000_000_300));
        let clock = ServerClock::new(fixed(Arc::clone(&now)));
        // Sent at ...300, answered at ...340, dated ...000 + 600_000 (server 10 min ahead).
        clock.observe(1_700_000_000_300, 1_700_000_000_340, 1_700_000_600_000);
        let estimate = clock.estimate().unwrap();
        // Interval [600_000 - 340, 601_000 - 300] = [599_660, 600_700].
        assert_eq!(estimate.offset_ms, 600_180);
        assert_eq!(estimate.uncertainty_ms, 520);
        assert_eq!(estimate.samples, 1);
        assert_eq!(clock.now_millis(), 1_700_000_000_300 + 600_180);
    }

    /// Feeds `n` responses of a server `offset` ms ahead, sent at random phases of the
    /// server's second with `rtt` ms round trips; returns the last local time.
    fn feed(
        clock: &ServerClock,
        rng: &mut fastrand::Rng,
        mut local: u64,
        n: usize,
        offset: i64,
        rtt: u64,
    ) -> u64 {
        for _ in 0..n {
            local += 1_000 + rng.u64(0..1_000);
            clock.observe(local, local + rtt, date_of(local + rtt / 2, offset));
        }
        local
    }

    fn assert_within(clock: &ServerClock, true_offset: i64, max_uncertainty: u64) {
        let estimate = clock.estimate().unwrap();
        let uncertainty = i64::try_from(estimate.uncertainty_ms).unwrap();
        assert!(
            (estimate.offset_ms - true_offset).abs() <= uncertainty,
            "{true_offset}: {estimate:?}"
        );
        assert!(
            estimate.uncertainty_ms <= max_uncertainty,
            "{true_offset}: {estimate:?}"
        );
    }

    #[test]
    fn many_responses_at_random_phases_narrow_it_well_below_a_second() {
        let mut rng = fastrand::Rng::with_seed(11);
        for true_offset in [-600_000_i64, -1_234, 0, 777, 600_000] {
            let now = Arc::new(AtomicU64::new(0));
            let clock = ServerClock::new(fixed(Arc::clone(&now)));
            let local = feed(&clock, &mut rng, 1_700_000_000_000, 64, true_offset, 10);
            // ± (half the round trip + about a thousandth of a second per response short of
            // 1,000): ~±20 ms after 64 responses.
            assert_within(&clock, true_offset, 60);
            now.store(local, Ordering::SeqCst);
            let expected_now = local.saturating_add_signed(true_offset);
            assert!(clock.now_millis().abs_diff(expected_now) <= 60);
        }
    }

    #[test]
    fn a_clock_jump_is_followed_after_one_response_and_old_samples_age_out() {
        let mut rng = fastrand::Rng::with_seed(5);
        let clock = ServerClock::new(Arc::new(|| 0));
        let local = feed(&clock, &mut rng, 1_700_000_000_000, 40, 0, 4);
        assert_within(&clock, 0, 100);
        // The server's clock is stepped 30 s ahead: one response moves the estimate there.
        let local = feed(&clock, &mut rng, local, 1, 30_000, 4);
        assert_within(&clock, 30_000, 502);
        assert_eq!(
            clock.estimate().unwrap().samples,
            1,
            "the older, contradicting samples are ignored"
        );
        feed(&clock, &mut rng, local, MAX_SAMPLES + 5, 30_000, 4);
        assert_within(&clock, 30_000, 60);
        assert_eq!(clock.estimate().unwrap().samples, MAX_SAMPLES);
    }

    #[test]
    fn a_small_correction_back_holds_the_reading_and_a_large_step_back_is_followed() {
        let now = Arc::new(AtomicU64::new(1_700_000_000_300));
        let clock = ServerClock::new(fixed(Arc::clone(&now)));
        // One response: offset interval [-340, 700], midpoint 180.
        clock.observe(1_700_000_000_300, 1_700_000_000_340, 1_700_000_000_000);
        assert_eq!(clock.now_millis(), 1_700_000_000_480);
        // A second response, dated a second earlier, narrows the interval to [-340, -300]:
        // midpoint -320, 500 ms back.
        clock.observe(1_700_000_000_300, 1_700_000_000_340, 1_699_999_999_000);
        assert_eq!(clock.estimate().unwrap().offset_ms, -320);
        assert_eq!(
            clock.now_millis(),
            1_700_000_000_480,
            "held, not 500 ms back"
        );
        // The local clock moves on 300 ms: still behind the held reading, so still held.
        now.store(1_700_000_000_600, Ordering::SeqCst);
        assert_eq!(clock.now_millis(), 1_700_000_000_480);
        // 500 ms further, the estimate has caught up and is followed again.
        now.store(1_700_000_001_100, Ordering::SeqCst);
        assert_eq!(clock.now_millis(), 1_700_000_000_780);
        // The local clock is stepped back 10 minutes: followed at once.
        now.store(1_699_999_401_100, Ordering::SeqCst);
        assert_eq!(clock.now_millis(), 1_699_999_400_780);
    }

    #[test]
    fn readings_from_many_threads_never_go_back_through_corrections() {
        let clock = Arc::new(ServerClock::new(Arc::new(
            crate::storage::memory::now_millis,
        )));
        let mut rng = fastrand::Rng::with_seed(3);
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let clock = Arc::clone(&clock);
                std::thread::spawn(move || {
                    let mut last = 0;
                    for _ in 0..20_000 {
                        let reading = clock.now_millis();
                        assert!(reading >= last, "{reading} after {last}");
                        last = reading;
                    }
                })
            })
            .collect();
        // Meanwhile responses of a server 300 ms ahead, with round trips of up to 20 ms,
        // keep narrowing and (as old samples age out) widening the estimate: its midpoint
        // moves both ways.
        for _ in 0..2_000 {
            let sent = crate::storage::memory::now_millis();
            let round_trip = rng.u64(0..20);
            let date = (sent + rng.u64(0..=round_trip) + 300) / 1_000 * 1_000;
            clock.observe(sent, sent + round_trip, date);
        }
        for reader in readers {
            reader.join().unwrap();
        }
    }

    #[test]
    fn swapped_times_and_a_clock_behind_the_epoch_do_not_panic() {
        let clock = ServerClock::new(Arc::new(|| 0));
        clock.observe(50, 10, 1_000);
        let estimate = clock.estimate().unwrap();
        assert_eq!(estimate.offset_ms, 1_000 - 50 + (1_040 / 2));
        assert!(clock.now_millis() > 0);
        let behind = ServerClock::new(Arc::new(|| 10_000));
        behind.observe(10_000, 10_000, 0);
        assert_eq!(
            behind.now_millis(),
            500,
            "never below zero, midpoint of [0, 1000)"
        );
    }
}
