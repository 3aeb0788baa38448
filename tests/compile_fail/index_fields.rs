//! An index has at least one field, each once.

use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    #[convex(index(name = "by_nothing", fields()))]
    #[convex(index(name = "by_noteId_twice", fields(note_id, note_id)))]
    pub struct Note {
        pub note_id: String,
    }
}

fn main() {}
