//! The engine's scenario suite on the Convex storage, one test per scenario, each on a fresh
//! database: an instance of the local Convex server, or, with `CONVEX_URL` set, the emptied
//! deployment (the scenarios then run one after the other; see `support`).

mod support;

use support::ConvexFactory;

durable_execution::scenario_tests!(|name| ConvexFactory { name });
