//! A query cannot write.

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

    #[convex(operation(name = "deleteById", kind = "query", returns = "()"))]
    #[convex(access(delete_one, index = "by_noteId", eq(note_id = note_id)))]
    pub struct DeleteByIdArgs {
        pub note_id: String,
    }
}

fn main() {}
