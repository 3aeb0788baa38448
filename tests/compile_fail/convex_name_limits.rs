use durable_execution_storage_convex::convex_component;

#[convex_component(name = "notes")]
pub mod notes {
    #[convex(table = "notes")]
    #[convex(index(
        name = "by_everything",
        fields(f01, f02, f03, f04, f05, f06, f07, f08, f09, f10, f11, f12, f13, f14, f15, f16, f17)
    ))]
    #[convex(index(name = "_private", fields(f01)))]
    #[convex(index(
        name = "by_a_name_that_goes_on_and_on_well_past_the_sixty_four_characters_convex_allows",
        fields(f02)
    ))]
    pub struct Note {
        pub f01: bool,
        pub f02: bool,
        pub f03: bool,
        pub f04: bool,
        pub f05: bool,
        pub f06: bool,
        pub f07: bool,
        pub f08: bool,
        pub f09: bool,
        pub f10: bool,
        pub f11: bool,
        pub f12: bool,
        pub f13: bool,
        pub f14: bool,
        pub f15: bool,
        pub f16: bool,
        pub f17: bool,
        #[convex(rename = "$kind")]
        pub kind: String,
    }
}

fn main() {}
