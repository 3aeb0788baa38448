use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    pub struct Note {
        pub note_id: String,
    }

    #[convex(operation(name = "deleteAll", kind = "action", returns = "()"))]
    #[convex(access(delete_all))]
    pub struct DeleteAllArgs {}

    #[convex(operation(name = "deleteAll", kind = "mutation", returns = "()"))]
    #[convex(access(delete_all))]
    pub struct DeleteEverythingArgs {}
}

fn main() {}
