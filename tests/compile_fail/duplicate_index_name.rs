use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    #[convex(index(name = "by_noteId", fields(note_id)))]
    #[convex(index(name = "by_noteId", fields(title)))]
    pub struct Note {
        pub note_id: String,
        pub title: String,
    }
}

fn main() {}
