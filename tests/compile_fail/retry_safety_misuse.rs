use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    #[convex(index(name = "by_noteId", fields(note_id)))]
    pub struct Note {
        pub note_id: String,
    }

    #[convex(object)]
    pub struct ByNoteIdRequest {
        pub note_id: String,
    }

    // A query never writes: re-sending it is always safe.
    #[convex(operation(
        name = "getManyById",
        kind = "query",
        returns = "Vec<Option<Doc<Note>>>",
        retry = "only_unsent"
    ))]
    #[convex(access(get_each, each = requests, index = "by_noteId", eq(note_id = note_id), first))]
    pub struct GetManyByIdArgs {
        pub requests: Vec<ByNoteIdRequest>,
    }

    #[convex(operation(name = "deleteAll", kind = "action", returns = "()", retry = "sometimes"))]
    #[convex(access(delete_all))]
    pub struct DeleteAllArgs {}
}

fn main() {}
