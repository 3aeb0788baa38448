//! [`Signal`]: a one-shot flag that tasks and callers can check or wait for.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A one-shot signal: once [`fire`](Self::fire)d it stays fired. Clones share it.
///
/// A task gets two in its [`TaskContext`](crate::TaskContext): the executor's shutdown signal
/// and its own cancellation signal (fired on cancellation, timeout or abort, just before its
/// future is dropped). Callers pass one to
/// [`wait_finished`](crate::TaskExecutionHandle::wait_finished) to stop waiting.
#[derive(Clone, Default)]
pub struct Signal(Arc<Inner>);

#[derive(Default)]
struct Inner {
    fired: AtomicBool,
    notify: Notify,
}

impl Signal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal (again: no effect).
    pub fn fire(&self) {
        self.0.fired.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Whether it has fired.
    pub fn is_fired(&self) -> bool {
        self.0.fired.load(Ordering::SeqCst)
    }

    /// Waits until it fires (at once if it has).
    pub async fn fired(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a `fire` in between is not missed.
            notified.as_mut().enable();
            if self.is_fired() {
                return;
            }
            notified.await;
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("fired", &self.is_fired())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fired_signal_wakes_its_waiters_and_stays_fired() {
        let signal = Signal::new();
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.fired().await }
        });
        tokio::task::yield_now().await;
        assert!(!signal.is_fired());
        signal.fire();
        waiter.await.unwrap();
        signal.fired().await;
        assert!(signal.is_fired());
    }
}
