//! What a caller inside this crate tells [`ConvexHttpClient`](super::ConvexHttpClient) about
//! the calls made while a future runs, without changing the signature those calls go through.
//!
//! The storage layer calls Convex through the generated typed client, whose methods end in
//! `ConvexHttpClient::call_authenticated(kind, path, secret, args)`. That signature carries the
//! function's kind but neither the operation's declared [`RetrySafety`] nor a way to see the
//! responses' `Date` headers. [`scope`] runs a future with a [`CallContext`] that every call
//! made while the future is polled (on the same task) reads when it starts:
//!
//! - `retry_safety`: the operation's declared safety, used instead of the default for the kind
//!   ([`RetrySafety::default_for`]);
//! - `clock`: told the local send and receive times and the server's `Date` of every response,
//!   so the storage can estimate the server's clock.
//!
//! A call that names its operation ([`ConvexHttpClient::call_operation`]) uses that
//! operation's safety whatever the context says.
//!
//! [`ConvexHttpClient::call_operation`]: super::ConvexHttpClient::call_operation

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::RetrySafety;

/// Told about every HTTP response of the calls made in a [`scope`].
pub(crate) trait ResponseClock: Send + Sync {
    /// The local clock (epoch ms) the send and receive times are read from.
    fn local_now(&self) -> u64;
    /// A response whose `Date` header says `server_date` (epoch ms, whole seconds) arrived at
    /// `received` for a request sent at `sent` (both local).
    fn observe(&self, sent: u64, received: u64, server_date: u64);
}

/// See the [module](self) documentation.
#[derive(Clone, Default)]
pub(crate) struct CallContext {
    pub retry_safety: Option<RetrySafety>,
    pub clock: Option<Arc<dyn ResponseClock>>,
}

thread_local! {
    static CURRENT: RefCell<Option<CallContext>> = const { RefCell::new(None) };
}

/// The context of the scope being polled on this thread, if any.
pub(crate) fn current() -> CallContext {
    CURRENT.with(|current| current.borrow().clone().unwrap_or_default())
}

/// Runs `future` with `context` as the [`current`] context during each of its polls.
pub(crate) fn scope<F: Future>(context: CallContext, future: F) -> Scoped<F> {
    Scoped {
        context,
        future: Box::pin(future),
    }
}

/// The future of [`scope`].
pub(crate) struct Scoped<F> {
    context: CallContext,
    future: Pin<Box<F>>,
}

/// Puts the previous context back, even if the inner poll panics.
struct Restore(Option<CallContext>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // `Scoped` is `Unpin`: the inner future is boxed.
        let this = self.get_mut();
        let previous = CURRENT.with(|current| current.replace(Some(this.context.clone())));
        let _restore = Restore(previous);
        this.future.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_context_is_seen_inside_the_scope_only_and_nests() {
        assert_eq!(current().retry_safety, None);
        let outer = CallContext {
            retry_safety: Some(RetrySafety::OnlyUnsent),
            clock: None,
        };
        let seen = scope(outer, async {
            let before = current().retry_safety;
            tokio::task::yield_now().await;
            let inner = CallContext {
                retry_safety: Some(RetrySafety::Idempotent),
                clock: None,
            };
            let nested = scope(inner, async { current().retry_safety }).await;
            (before, nested, current().retry_safety)
        })
        .await;
        assert_eq!(
            seen,
            (
                Some(RetrySafety::OnlyUnsent),
                Some(RetrySafety::Idempotent),
                Some(RetrySafety::OnlyUnsent)
            )
        );
        assert_eq!(current().retry_safety, None, "restored after the scope");
    }
}
