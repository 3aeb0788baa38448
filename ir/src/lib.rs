//! The declaration of a Convex component, as plain data.
//!
//! One parser ([`parse_component`]) serves both the proc-macro, which turns the declaration into
//! the typed Rust client, and the generator, which turns the same declaration (read from the
//! source file with [`parse_declaration_file`]) into the Convex TypeScript. So both refuse the
//! same declarations with the same messages.

mod check;
mod errors;
pub mod limits;
mod meta;
pub mod model;
pub mod names;
mod parse;
mod spans;

pub use check::{Rule, RULES};
pub use limits::{operation_limits, OperationLimits};
pub use model::*;
pub use parse::{find_component_module, parse_component, parse_declaration_file, FileError};
