//! [`ClientStats`]: what a [`ConvexHttpClient`](super::ConvexHttpClient) and its clones have
//! done, for tests, benchmarks and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use super::ConvexError;

/// Counters of a client and all its clones since it was created (a snapshot: read it again for
/// newer figures). Every field only grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Calls made (each may take several attempts).
    pub calls: u64,
    /// HTTP requests sent: one per attempt.
    pub requests: u64,
    /// Attempts after the first of their call.
    pub retries: u64,
    /// Calls that ended with an error (after their last attempt).
    pub failed_calls: u64,
    /// Failed attempts, by what went wrong.
    pub failures: FailureCounts,
}

/// Failed attempts by kind (each failed attempt counts once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureCounts {
    /// No connection could be made (refused, DNS, connect timeout): nothing was sent.
    pub connect: u64,
    /// The request or the response timed out after the connection was made.
    pub timeout: u64,
    /// The connection broke after sending (reset, closed, truncated body).
    pub connection_lost: u64,
    /// HTTP 429.
    pub rate_limited: u64,
    /// HTTP 503 (Convex's overload and give-up-on-write-conflict answers among them).
    pub unavailable: u64,
    /// HTTP 502 and 504.
    pub bad_gateway: u64,
    /// Convex's write-conflict and overload errors inside a function's error.
    pub convex_transient: u64,
    /// The function threw (our refusals, bugs).
    pub function: u64,
    /// Any other HTTP status.
    pub http: u64,
    /// An answer that does not have the documented shape or type.
    pub decode: u64,
    /// Arguments that could not be encoded (nothing sent).
    pub encode: u64,
}

/// The live counters, shared by a client's clones.
#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    calls: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    failed_calls: AtomicU64,
    connect: AtomicU64,
    timeout: AtomicU64,
    connection_lost: AtomicU64,
    rate_limited: AtomicU64,
    unavailable: AtomicU64,
    bad_gateway: AtomicU64,
    convex_transient: AtomicU64,
    function: AtomicU64,
    http: AtomicU64,
    decode: AtomicU64,
    encode: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl StatsCounters {
    pub(crate) fn call(&self) {
        bump(&self.calls);
    }

    pub(crate) fn request(&self, attempt: u32) {
        bump(&self.requests);
        if attempt > 1 {
            bump(&self.retries);
        }
    }

    pub(crate) fn failed_call(&self) {
        bump(&self.failed_calls);
    }

    /// Counts one failed attempt under its kind; returns that kind's name (for logs).
    pub(crate) fn failed_attempt(&self, error: &ConvexError) -> &'static str {
        let (counter, name) = match error {
            ConvexError::Transport {
                request_sent: false,
                ..
            } => (&self.connect, "connect"),
            ConvexError::Transport { message, .. } if message.contains("timed out") => {
                (&self.timeout, "timeout")
            }
            ConvexError::Transport { .. } => (&self.connection_lost, "connection_lost"),
            ConvexError::Http { status: 429, .. } => (&self.rate_limited, "rate_limited"),
            ConvexError::Http { status: 503, .. } => (&self.unavailable, "unavailable"),
            ConvexError::Http {
                status: 502 | 504, ..
            } => (&self.bad_gateway, "bad_gateway"),
            ConvexError::Http { .. } => (&self.http, "http"),
            ConvexError::Function { .. } if error.is_transient() => {
                (&self.convex_transient, "convex_transient")
            }
            ConvexError::Function { .. } | ConvexError::Unauthorized { .. } => {
                (&self.function, "function")
            }
            ConvexError::Decode { .. } => (&self.decode, "decode"),
            ConvexError::Encode { .. } | ConvexError::InvalidUrl { .. } => (&self.encode, "encode"),
            ConvexError::Attempts { last, .. } => return self.failed_attempt(last),
        };
        bump(counter);
        name
    }

    pub(crate) fn snapshot(&self) -> ClientStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClientStats {
            calls: read(&self.calls),
            requests: read(&self.requests),
            retries: read(&self.retries),
            failed_calls: read(&self.failed_calls),
            failures: FailureCounts {
                connect: read(&self.connect),
                timeout: read(&self.timeout),
                connection_lost: read(&self.connection_lost),
                rate_limited: read(&self.rate_limited),
                unavailable: read(&self.unavailable),
                bad_gateway: read(&self.bad_gateway),
                convex_transient: read(&self.convex_transient),
                function: read(&self.function),
                http: read(&self.http),
                decode: read(&self.decode),
                encode: read(&self.encode),
            },
        }
    }
}

impl FailureCounts {
    /// All failed attempts.
    pub fn total(&self) -> u64 {
        let Self {
            connect,
            timeout,
            connection_lost,
            rate_limited,
            unavailable,
            bad_gateway,
            convex_transient,
            function,
            http,
            decode,
            encode,
        } = *self;
        connect
            + timeout
            + connection_lost
            + rate_limited
            + unavailable
            + bad_gateway
            + convex_transient
            + function
            + http
            + decode
            + encode
    }
}
