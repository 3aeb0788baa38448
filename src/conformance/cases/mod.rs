//! The cases, one file per group of operations.

use super::Case;

mod children;
mod claim;
mod decrement;
mod delete;
mod expiry;
mod insert;
mod parent;
mod sharded;
mod update_by_id;

/// A [`Case`] running `function`.
macro_rules! case {
    ($name:literal, $function:path) => {
        $crate::conformance::Case {
            name: $name,
            run: |factory| Box::pin($function(factory)),
        }
    };
}
pub(crate) use case;

pub fn all() -> Vec<Case> {
    [
        insert::cases(),
        update_by_id::cases(),
        children::cases(),
        claim::cases(),
        sharded::cases(),
        expiry::cases(),
        parent::cases(),
        decrement::cases(),
        delete::cases(),
    ]
    .concat()
}
