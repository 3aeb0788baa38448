//! A small declaration, used from outside the crate through the re-exported macro: the
//! generated types and client are usable without naming serde.

use durable_execution_storage_convex::convex_component;
use durable_execution_storage_convex::runtime::{AuthSecret, ConvexHttpClient, ConvexOperation};

#[convex_component(name = "notesStorage")]
pub mod notes {
    #[convex(union)]
    pub enum NoteKind {
        Plain,
        ToDo,
    }

    #[convex(table = "notes")]
    #[convex(index(name = "by_noteId", fields(note_id)))]
    pub struct Note {
        pub note_id: String,
        #[convex(update, filter)]
        pub kind: NoteKind,
        #[convex(update(unset))]
        pub due_at: Option<u64>,
        #[convex(update(required))]
        pub updated_at: u64,
    }

    #[convex(object)]
    pub struct ByNoteIdRequest {
        pub note_id: String,
        pub filters: Option<NoteFilters>,
    }

    /// One answer per request, in order.
    #[convex(operation(
        name = "getManyById",
        kind = "query",
        returns = "Vec<Option<Doc<Note>>>"
    ))]
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

fn main() {
    let http = ConvexHttpClient::new("https://example.convex.cloud").unwrap();
    let client = notes::NotesStorageClient::new(http, AuthSecret::new("secret"));
    let args = notes::GetManyByIdArgs { requests: vec![] };
    let _future = client.get_many_by_id(&args);
    assert_eq!(<notes::GetManyByIdArgs as ConvexOperation>::NAME, "getManyById");
    let _update = notes::NoteUpdate {
        kind: Some(notes::NoteKind::ToDo),
        updated_at: 1,
        unset: Some(notes::NoteUnset { due_at: true }),
        ..Default::default()
    };
}
