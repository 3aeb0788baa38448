use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(object)]
    pub struct Window {
        // Objects are stored inside documents: their fields take no server time.
        #[convex(server_time = "now")]
        pub opens_at: u64,
    }

    #[convex(table = "notes")]
    #[convex(index(name = "by_noteId", fields(note_id)))]
    pub struct Note {
        // Only integer times in epoch milliseconds: `u64` or `Option<u64>`.
        #[convex(server_time = "now")]
        pub note_id: String,
        #[convex(server_time = "now")]
        pub revision: u32,
        // `at_most_now` lowers argument bounds; a stored field takes now/at_least_now/expiry.
        #[convex(update, server_time = "at_most_now")]
        pub due_at: u64,
        #[convex(update, server_time = "later")]
        pub seen_at: Option<u64>,
        #[convex(update(required), server_time = "now")]
        pub updated_at: u64,
    }

    #[convex(operation(name = "deleteDue", kind = "mutation", returns = "()"))]
    #[convex(access(delete_all))]
    pub struct DeleteDueArgs {
        // An argument takes `now` or `at_most_now`.
        #[convex(server_time = "expiry")]
        pub due_before: u64,
    }
}

fn main() {}
