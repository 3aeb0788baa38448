//! A bound's value fits its field: an argument of its type, `now` for a number in a range, a
//! literal of its type.

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
    #[convex(index(name = "by_title", fields(title)))]
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

    #[convex(operation(name = "touchDue", kind = "mutation", returns = "u32"))]
    #[convex(access(
        update_range,
        index = "by_shard_status",
        eq(shard = shard, status = "archived"),
        limit = limit,
        update = update
    ))]
    pub struct TouchDueArgs {
        pub shard: Option<u32>,
        pub update: NoteUpdate,
        pub limit: u32,
    }

    #[convex(operation(name = "touchByTitle", kind = "mutation", returns = "u32"))]
    #[convex(access(update_range, index = "by_title", lt(title = now), limit = limit, update = update))]
    pub struct TouchByTitleArgs {
        pub update: NoteUpdate,
        pub limit: u32,
    }

    #[convex(operation(name = "deleteById", kind = "mutation", returns = "()"))]
    #[convex(access(delete_one, index = "by_noteId", eq(note_id = now)))]
    pub struct DeleteByIdArgs {}

    #[convex(operation(name = "deleteByShard", kind = "mutation", returns = "()"))]
    #[convex(access(delete_one, index = "by_shard_status", eq(shard = true)))]
    pub struct DeleteByShardArgs {}
}

fn main() {}
