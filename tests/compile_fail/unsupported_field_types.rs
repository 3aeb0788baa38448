use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    pub struct Note {
        pub note_id: String,
        pub score: f32,
        pub tags: std::collections::HashMap<String, String>,
        pub ids: Vec<u64>,
    }
}

fn main() {}
