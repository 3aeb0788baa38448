use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    #[convex(index(name = "by_noteId", fields(note_id)))]
    pub struct Note {
        #[convex(max = 10)]
        pub note_id: String,
        // Outside what a `u8` holds.
        #[convex(max = 300)]
        pub priority: u8,
        #[convex(min = 5, max = 2)]
        pub shard: u32,
        #[convex(max = "63")]
        pub lane: u32,
    }
}

fn main() {}
