use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod no_table {
    #[convex(object)]
    pub struct Note {
        pub note_id: String,
    }
}

#[convex_component(name = "twice")]
pub mod twice {
    #[convex(table = "notes")]
    pub struct Note {
        pub note_id: String,
    }

    #[convex(table = "notes")]
    pub struct OtherNote {
        pub note_id: String,
    }

    #[convex(operation(name = "deleteAll", kind = "action", returns = "()", table = "Note"))]
    #[convex(access(delete_all))]
    pub struct DeleteAllArgs {}
}

fn main() {}
