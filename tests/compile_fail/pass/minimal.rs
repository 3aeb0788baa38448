//! A small declaration, used from outside the crate through the re-exported macro: the
//! generated types and client are usable without naming serde.

use durable_execution_storage_convex::convex_component;
use durable_execution_storage_convex::runtime::{
    AuthSecret, ConvexHttpClient, ConvexOperation, RetrySafety,
};

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
        #[convex(update(unset), server_time = "expiry")]
        pub due_at: Option<u64>,
        #[convex(max = 9)]
        pub priority: u8,
        #[convex(update(required), server_time = "now")]
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

    /// Inserts notes; a re-sent insert may meet its own first attempt.
    #[convex(operation(
        name = "insertMany",
        kind = "mutation",
        returns = "()",
        retry = "verify_duplicates"
    ))]
    #[convex(access(insert, each = notes, unique("by_noteId")))]
    pub struct InsertManyArgs {
        pub notes: Vec<Note>,
    }

    /// Deletes every note due before a bound (never after the server's time).
    #[convex(operation(name = "deleteAll", kind = "action", returns = "()"))]
    #[convex(access(delete_all))]
    pub struct DeleteAllArgs {
        #[convex(server_time = "at_most_now")]
        pub due_before: u64,
    }
}

fn main() {
    let http = ConvexHttpClient::new("https://example.convex.cloud").unwrap();
    let client = notes::NotesStorageClient::new(http, AuthSecret::new("secret"));
    let args = notes::GetManyByIdArgs { requests: vec![] };
    let _future = client.get_many_by_id(&args);
    assert_eq!(<notes::GetManyByIdArgs as ConvexOperation>::NAME, "getManyById");
    // Declared, and the defaults: idempotent for a query, only unsent otherwise.
    assert_eq!(
        <notes::InsertManyArgs as ConvexOperation>::RETRY_SAFETY,
        RetrySafety::VerifyDuplicates
    );
    assert_eq!(
        <notes::GetManyByIdArgs as ConvexOperation>::RETRY_SAFETY,
        RetrySafety::Idempotent
    );
    assert_eq!(
        <notes::DeleteAllArgs as ConvexOperation>::RETRY_SAFETY,
        RetrySafety::OnlyUnsent
    );
    assert_eq!(notes::limits::EXPIRY_GRACE_MS, 1_000);
    assert_eq!(notes::limits::DOCUMENT_BYTES_MAX, 1 << 20);
    let _note = notes::Note {
        note_id: "n".into(),
        kind: notes::NoteKind::Plain,
        due_at: None,
        priority: 9,
        updated_at: 1,
    };
    let _update = notes::NoteUpdate {
        kind: Some(notes::NoteKind::ToDo),
        updated_at: 1,
        unset: Some(notes::NoteUnset { due_at: true }),
        ..Default::default()
    };
}
