use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    #[convex(index(name = "by_shard_status_updatedAt", fields(shard, status, updated_at)))]
    pub struct Note {
        pub shard: u32,
        #[convex(update)]
        pub status: String,
        #[convex(update(required))]
        pub updated_at: u64,
    }

    /// Skips `status`: Convex cannot serve a range on `updated_at` after `shard` alone.
    #[convex(operation(name = "touchStale", kind = "mutation", returns = "u32"))]
    #[convex(access(
        update_range,
        index = "by_shard_status_updatedAt",
        eq(shard = shard),
        lt(updated_at = now),
        limit = limit,
        update = update
    ))]
    pub struct TouchStaleArgs {
        pub shard: u32,
        pub update: NoteUpdate,
        pub limit: u32,
    }
}

fn main() {}
