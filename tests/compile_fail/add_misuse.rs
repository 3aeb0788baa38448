//! `add` sums an integer argument and an integer field always present into an integer field.

use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(union)]
    pub enum Status {
        Open,
        Done,
    }

    #[convex(table = "notes")]
    #[convex(index(name = "by_noteId", fields(note_id)))]
    #[convex(index(name = "by_status_dueAt", fields(status, due_at)))]
    #[convex(index(name = "by_shard_status", fields(shard, status)))]
    pub struct Note {
        pub note_id: String,
        pub shard: u32,
        #[convex(update)]
        pub status: Status,
        #[convex(update(unset))]
        pub due_at: Option<u64>,
        #[convex(update)]
        pub tries: u32,
        pub title: String,
        pub parent_id: Option<String>,
        #[convex(update)]
        pub children_count: u32,
        pub is_last: Option<bool>,
        #[convex(update(required))]
        pub updated_at: u64,
    }

    #[convex(operation(name = "touch", kind = "mutation", returns = "u32"))]
    #[convex(access(
        update_range,
        index = "by_shard_status",
        eq(shard = shard),
        limit = limit,
        update = update,
        add(tries = (label, shard), title = (extra, shard), tries = (extra, due_at))
    ))]
    pub struct TouchArgs {
        pub shard: u32,
        pub update: NoteUpdate,
        pub limit: u32,
        pub extra: u32,
        pub label: String,
    }
}

fn main() {}
