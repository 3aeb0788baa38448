use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    pub struct Note {
        pub note_id: String,
    }

    #[convex(object)]
    pub struct Summary {
        pub note_id: String,
    }

    #[convex(operation(name = "getAll", kind = "query", returns = "Vec<Doc<Summary>>"))]
    #[convex(access(delete_all))]
    pub struct GetAllArgs {}
}

fn main() {}
