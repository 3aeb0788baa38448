//! Unit tests of the storage layer; `fake_convex` stands in for a deployment where calls must
//! be observed.

mod chunking_tests;
mod convex_tests;
mod error_tests;
mod fake_convex;
mod fixtures;
mod options_tests;
mod resilience_tests;
mod update_json_tests;
mod value_tests;
