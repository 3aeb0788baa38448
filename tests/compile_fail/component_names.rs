//! The component's declared names: `name` and `app_module` are Convex names, `client` a Rust
//! type, `compat_factory` a TypeScript identifier.

use durable_execution_storage_convex::convex_component;

#[convex_component(
    name = "notes-storage",
    app_module = "_notes",
    client = "Notes Client",
    compat_factory = "make-notes"
)]
pub mod notes {
    #[convex(table = "notes")]
    pub struct Note {
        pub note_id: String,
    }
}

fn main() {}
