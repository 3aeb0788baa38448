//! Many executors at once, against both storages: the scenarios of
//! `conformance::concurrency`, each client its own storage (its own HTTP client for Convex),
//! each running in its own tokio task on a multi-threaded runtime.
//!
//! - **Claims**: 8 claimers repeatedly claim (by status and `startAt`, 4 per shard per call)
//!   from 2,000 ready executions spread over 4 shards, until a call finds none: each execution
//!   must be claimed by exactly one claimer (none twice, none lost) and stored as running by
//!   that claimer.
//! - **Parent counters**: 8 closers close the finished children of 50 parents (12 children and
//!   a finalize child each) and decrement their parents concurrently: every parent must end
//!   with exactly its still-active children.
//!
//! What this proves depends on the backend. On the local server, convex-test runs one
//! transaction at a time (no write conflicts, no optimistic concurrency control), so these
//! tests prove the client side: the per-shard fan-out of 8 concurrent clients, and that
//! serialised transactions never hand an execution out twice nor lose a decrement. They do NOT
//! exercise Convex's OCC. With `CONVEX_URL` set, the same tests run against a real
//! deployment, where the transactions do conflict and are retried: that is the real thing.
//!
//! Sizes: convex-test answers index lookups by scanning, so 2,000 executions (each claim call
//! scans its shard's index) is about the most that keeps these tests to a few seconds locally.
//!
//! ```sh
//! cargo test --test concurrency -- --nocapture   # prints the figures
//! ```

mod support;

use durable_execution_storage_convex::conformance::concurrency::{
    self, ClaimReport, ParentCounterReport,
};
use durable_execution_storage_convex::conformance::{InMemoryStorageFactory, StorageFactory};
use support::ConvexStorageFactory;

const EXECUTIONS: usize = 2_000;
const CLAIMERS: usize = 8;
const TOTAL_SHARDS: u32 = 4;

const PARENTS: usize = 50;
const CHILDREN_PER_PARENT: usize = 12;
const CLOSERS: usize = 8;

async fn claims(storage: &str, factory: &dyn StorageFactory) {
    let report = concurrency::claims_exactly_once(factory, EXECUTIONS, CLAIMERS, TOTAL_SHARDS)
        .await
        .expect("the claim scenario runs");
    print_claims(storage, &report);
    assert!(report.is_exact(), "{storage}: {report:?}");
    assert_eq!(report.per_claimer.iter().sum::<usize>(), EXECUTIONS);
}

fn print_claims(storage: &str, report: &ClaimReport) {
    println!(
        "{storage}: {} executions over {} shards, {} claimers, {:.2?}: {} duplicates, {} lost; \
         claimed per claimer {:?}",
        report.executions,
        report.total_shards,
        report.claimers,
        report.elapsed,
        report.duplicates.len(),
        report.lost.len(),
        report.per_claimer,
    );
}

async fn parent_counters(storage: &str, factory: &dyn StorageFactory) {
    let report = concurrency::parent_counters_exact(
        factory,
        PARENTS,
        CHILDREN_PER_PARENT,
        CLOSERS,
        TOTAL_SHARDS,
    )
    .await
    .expect("the parent counter scenario runs");
    print_counters(storage, &report);
    assert!(report.is_exact(), "{storage}: {report:?}");
}

fn print_counters(storage: &str, report: &ParentCounterReport) {
    println!(
        "{storage}: {} parents x ({} finished children + finalize), {} closers over {} shards, \
         {:.2?}: {} patched, {} wrong counters, {} unclosed children",
        report.parents,
        report.children_per_parent,
        report.closers,
        report.total_shards,
        report.elapsed,
        report.patched,
        report.wrong_counters.len(),
        report.unclosed.len(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn in_memory_claimers_claim_each_execution_exactly_once() {
    claims("in memory", &InMemoryStorageFactory::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn convex_claimers_claim_each_execution_exactly_once() {
    let factory = ConvexStorageFactory::new("concurrent-claims").await;
    claims("convex", &factory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn in_memory_closers_leave_every_parent_counter_exact() {
    parent_counters("in memory", &InMemoryStorageFactory::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn convex_closers_leave_every_parent_counter_exact() {
    let factory = ConvexStorageFactory::new("concurrent-counters").await;
    parent_counters("convex", &factory).await;
}
