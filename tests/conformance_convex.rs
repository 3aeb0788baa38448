//! The conformance suite against the Convex storage: `ConvexTaskExecutionsStorage` over the
//! generated component, on the local server (convex-test behind Convex's HTTP API), held to
//! the same cases as the in-memory storage (`tests/conformance_memory.rs`).
//!
//! Every case gets a fresh, empty database from [`ConvexStorageFactory`]: locally an instance
//! of this binary's shared test-mode-ON server; with `CONVEX_URL` the real deployment, emptied
//! with `deleteAll` before each case, the cases then running one after the other (as they do
//! locally too: `run_all` is sequential).
//!
//! The times the server stamps (spec §A) are checked against the storage's `now_millis`, its
//! estimate of the server's clock, around each call, within the factory's default tolerance
//! of 2 s (`StorageFactory::clock_tolerance_ms`).
//!
//! ```sh
//! cargo test --test conformance_convex -- --nocapture   # prints the cases per operation
//! ```

mod support;

use durable_execution_storage_convex::conformance::{self, OPERATIONS};
use support::ConvexStorageFactory;

#[tokio::test]
async fn the_convex_storage_passes_every_conformance_case() {
    let factory = ConvexStorageFactory::new("conformance").await;
    let report = conformance::run_all(&factory).await;
    // In the test's captured output too (shown on failure, or with --nocapture).
    println!("{report}");
    let per_operation = report.per_operation();
    assert_eq!(
        per_operation.len(),
        OPERATIONS.len(),
        "every operation has cases: {per_operation:?}"
    );
    assert_eq!(
        report.outcomes.len(),
        conformance::cases().len(),
        "every case ran"
    );
    report.assert_all_passed();
}
