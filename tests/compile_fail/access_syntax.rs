//! What parsing itself refuses in an access pattern and among the declared names: a field
//! bound twice, `unique(...)` without `insert_children`, `insert_children` without
//! `parent_link`, and an item named like a type generated for a table.

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

    /// Clashes with the `NoteFilters` generated for table `Note`.
    #[convex(object)]
    pub struct NoteFilters {
        pub note_id: String,
    }

    #[convex(object)]
    pub struct UpdateRequest {
        pub note_id: String,
        pub other_id: String,
        pub update: NoteUpdate,
        pub children: Vec<Note>,
    }

    #[convex(operation(name = "updateTwice", kind = "mutation", returns = "()"))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_noteId",
        eq(note_id = note_id, note_id = other_id),
        update = update
    ))]
    pub struct UpdateTwiceArgs {
        pub requests: Vec<UpdateRequest>,
    }

    #[convex(operation(name = "updateUnique", kind = "mutation", returns = "()"))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_noteId",
        eq(note_id = note_id),
        update = update,
        unique("by_noteId")
    ))]
    pub struct UpdateUniqueArgs {
        pub requests: Vec<UpdateRequest>,
    }

    #[convex(operation(name = "updateChildren", kind = "mutation", returns = "()"))]
    #[convex(access(
        update_each,
        each = requests,
        index = "by_noteId",
        eq(note_id = note_id),
        update = update,
        first,
        insert_children = children
    ))]
    pub struct UpdateChildrenArgs {
        pub requests: Vec<UpdateRequest>,
    }
}

fn main() {}
