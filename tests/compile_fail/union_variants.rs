//! A union has variants, with distinct wire names.

use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(union)]
    pub enum Nothing {}

    #[convex(union)]
    pub enum Kind {
        Plain,
        #[convex(rename = "plain")]
        Simple,
    }

    #[convex(table = "notes")]
    pub struct Note {
        pub kind: Kind,
    }
}

fn main() {}
