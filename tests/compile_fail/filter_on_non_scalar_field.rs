//! Filters compare with `!==`: an object or array field (optional or not) cannot be one.

use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(object)]
    pub struct Author {
        pub name: String,
    }

    #[convex(table = "notes")]
    #[convex(index(name = "by_noteId", fields(note_id)))]
    pub struct Note {
        pub note_id: String,
        #[convex(filter)]
        pub author: Author,
        #[convex(filter)]
        pub tags: Vec<String>,
        #[convex(filter)]
        pub reviewer: Option<Author>,
        #[convex(filter)]
        pub pinned: Option<bool>,
    }

    #[convex(object)]
    pub struct ByNoteIdRequest {
        pub note_id: String,
        pub filters: Option<NoteFilters>,
    }

    #[convex(operation(name = "getManyById", kind = "query", returns = "Vec<Option<Doc<Note>>>"))]
    #[convex(access(
        get_each,
        each = requests,
        index = "by_noteId",
        eq(note_id = note_id),
        filters = filters,
        first
    ))]
    pub struct GetManyByIdArgs {
        pub requests: Vec<ByNoteIdRequest>,
    }
}

fn main() {}
