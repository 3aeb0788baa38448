//! Declarations `#[convex_component]` must refuse, each with its message at the offending
//! attribute, name or type (the `.stderr` files are reviewed expectations), and one it accepts.

#[test]
fn bad_declarations_fail_to_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
    cases.pass("tests/compile_fail/pass/*.rs");
}
