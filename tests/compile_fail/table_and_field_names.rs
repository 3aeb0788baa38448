//! Table, field and argument names on the wire are Convex names, distinct within their struct; `by_id` is Convex's own index.

use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "_notes")]
    #[convex(index(name = "by_id", fields(note_id)))]
    pub struct Note {
        pub note_id: String,
        #[convex(rename = "noteId")]
        pub other_id: String,
    }

    #[convex(operation(name = "deleteAll", kind = "mutation", returns = "()"))]
    #[convex(access(delete_all))]
    pub struct DeleteAllArgs {
        #[convex(rename = "bad name")]
        pub reason: String,
    }
}

fn main() {}
