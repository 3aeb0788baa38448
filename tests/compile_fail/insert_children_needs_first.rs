//! Children have one parent: `insert_children` goes with `first`.

use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    #[convex(index(name = "by_noteId", fields(note_id)))]
    pub struct Note {
        pub note_id: String,
        pub parent: Option<Id<Note>>,
        #[convex(update(required))]
        pub updated_at: u64,
    }

    #[convex(object)]
    pub struct UpdateRequest {
        pub note_id: String,
        pub update: NoteUpdate,
        pub children: Vec<Note>,
    }

    #[convex(operation(name = "updateManyById", kind = "mutation", returns = "()"))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_noteId",
        eq(note_id = note_id),
        update = update,
        insert_children = children,
        parent_link = parent
    ))]
    pub struct UpdateManyByIdArgs {
        pub requests: Vec<UpdateRequest>,
    }
}

fn main() {}
