use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes", app_modul = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    #[convex(index(name = "by_noteId", fields(note_id, missing)))]
    pub struct Note {
        pub note_id: String,
        pub weight: f32,
        #[convex(update(unset))]
        pub title: String,
    }

    #[convex(union)]
    pub enum Kind {
        Plain,
        Plain2(u32),
    }

    #[convex(operation(name = "getMany", kind = "querry", returns = "()"))]
    #[convex(access(delete_all))]
    pub struct GetManyArgs {}
}

fn main() {}
