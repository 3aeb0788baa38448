//! `update(unset)` needs an optional field, `update(required)` one always present.

use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    pub struct Note {
        #[convex(update(unset))]
        pub title: String,
        #[convex(update(required))]
        pub updated_at: Option<u64>,
    }
}

fn main() {}
