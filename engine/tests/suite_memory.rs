//! The engine's scenario suite on the in-memory storage, one test per scenario (so that they
//! run in parallel).

use durable_execution::suite::InMemoryStorageFactory;

durable_execution::scenario_tests!(|_name| InMemoryStorageFactory);
