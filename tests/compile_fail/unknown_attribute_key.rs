use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    pub struct Note {
        #[convex(renamed = "id")]
        pub note_id: String,
    }
}

fn main() {}
