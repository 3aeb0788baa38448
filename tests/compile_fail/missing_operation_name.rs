use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    pub struct Note {
        pub note_id: String,
    }

    #[convex(operation(kind = "action", returns = "()"))]
    #[convex(access(delete_all))]
    pub struct DeleteAllArgs {}
}

fn main() {}
