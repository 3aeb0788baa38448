//! Convex allows at most 32 indexes per table.

use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    #[convex(index(name = "by_noteId_0", fields(note_id)))]
    #[convex(index(name = "by_noteId_1", fields(note_id)))]
    #[convex(index(name = "by_noteId_2", fields(note_id)))]
    #[convex(index(name = "by_noteId_3", fields(note_id)))]
    #[convex(index(name = "by_noteId_4", fields(note_id)))]
    #[convex(index(name = "by_noteId_5", fields(note_id)))]
    #[convex(index(name = "by_noteId_6", fields(note_id)))]
    #[convex(index(name = "by_noteId_7", fields(note_id)))]
    #[convex(index(name = "by_noteId_8", fields(note_id)))]
    #[convex(index(name = "by_noteId_9", fields(note_id)))]
    #[convex(index(name = "by_noteId_10", fields(note_id)))]
    #[convex(index(name = "by_noteId_11", fields(note_id)))]
    #[convex(index(name = "by_noteId_12", fields(note_id)))]
    #[convex(index(name = "by_noteId_13", fields(note_id)))]
    #[convex(index(name = "by_noteId_14", fields(note_id)))]
    #[convex(index(name = "by_noteId_15", fields(note_id)))]
    #[convex(index(name = "by_noteId_16", fields(note_id)))]
    #[convex(index(name = "by_noteId_17", fields(note_id)))]
    #[convex(index(name = "by_noteId_18", fields(note_id)))]
    #[convex(index(name = "by_noteId_19", fields(note_id)))]
    #[convex(index(name = "by_noteId_20", fields(note_id)))]
    #[convex(index(name = "by_noteId_21", fields(note_id)))]
    #[convex(index(name = "by_noteId_22", fields(note_id)))]
    #[convex(index(name = "by_noteId_23", fields(note_id)))]
    #[convex(index(name = "by_noteId_24", fields(note_id)))]
    #[convex(index(name = "by_noteId_25", fields(note_id)))]
    #[convex(index(name = "by_noteId_26", fields(note_id)))]
    #[convex(index(name = "by_noteId_27", fields(note_id)))]
    #[convex(index(name = "by_noteId_28", fields(note_id)))]
    #[convex(index(name = "by_noteId_29", fields(note_id)))]
    #[convex(index(name = "by_noteId_30", fields(note_id)))]
    #[convex(index(name = "by_noteId_31", fields(note_id)))]
    #[convex(index(name = "by_noteId_32", fields(note_id)))]
    pub struct Note {
        pub note_id: String,
    }
}

fn main() {}
