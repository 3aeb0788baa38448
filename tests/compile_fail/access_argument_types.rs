//! The arguments an access pattern names have the types it needs.

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

    #[convex(operation(name = "insertMany", kind = "mutation", returns = "()"))]
    #[convex(access(insert, each = notes))]
    pub struct InsertManyArgs {
        pub notes: Vec<String>,
    }

    #[convex(object)]
    pub struct UpdateRequest {
        pub note_id: String,
        pub filters: Option<NoteUpdate>,
        pub update: NoteFilters,
    }

    #[convex(operation(name = "updateManyById", kind = "mutation", returns = "()"))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_noteId",
        eq(note_id = note_id),
        filters = filters,
        update = update,
        first
    ))]
    pub struct UpdateManyByIdArgs {
        pub requests: Vec<UpdateRequest>,
    }

    #[convex(operation(name = "touchDue", kind = "mutation", returns = "u32"))]
    #[convex(access(
        update_range,
        index = "by_status_dueAt",
        eq(status = status),
        gte(due_at = 0),
        lt(due_at = now),
        limit = limit,
        update = update
    ))]
    pub struct TouchDueArgs {
        pub status: Status,
        pub update: Option<NoteUpdate>,
        pub limit: Option<u32>,
    }
}

fn main() {}
