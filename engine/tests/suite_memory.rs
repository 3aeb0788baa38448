//! The engine's scenario suite on the in-memory storage, one test per scenario (so that they
//! run in parallel), without and with storage batching.

use durable_execution::suite::InMemoryStorageFactory;

durable_execution::scenario_tests!(|_name| InMemoryStorageFactory);

/// With storage batching, every 1 ms: concurrent calls are combined, and the scenarios that
/// make many calls in turn (each waits for its batch) stay fast.
mod storage_batching {
    use std::time::Duration;

    use durable_execution::suite::{InMemoryStorageFactory, WithStorageBatching};

    durable_execution::scenario_tests!(|_name| WithStorageBatching::new(InMemoryStorageFactory)
        .with_interval(Duration::from_millis(1)));
}
