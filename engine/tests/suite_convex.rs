//! The engine's scenario suite on the Convex storage over the local Convex server, one test per
//! scenario (each on a fresh database).

mod support;

use support::ConvexFactory;

durable_execution::scenario_tests!(|name| ConvexFactory { name });
