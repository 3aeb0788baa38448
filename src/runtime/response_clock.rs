//! [`ResponseClock`]: how [`ConvexHttpClient`](super::ConvexHttpClient) reports the server's
//! `Date` header of every response, so that the Convex storage can estimate the deployment's
//! clock (`storage::ServerClock`). Installed on the client by its owner
//! (`ConvexHttpClient::with_response_clock`), so every call through that client — however it
//! is made — feeds the estimate.

/// Told about every HTTP response of the client it is installed on.
pub(crate) trait ResponseClock: Send + Sync {
    /// The local clock (epoch ms) the send and receive times are read from.
    fn local_now(&self) -> u64;
    /// A response whose `Date` header says `server_date` (epoch ms, whole seconds) arrived at
    /// `received` for a request sent at `sent` (both local).
    fn observe(&self, sent: u64, received: u64, server_date: u64);
}
