//! Compile-fail tests: each misuse of `#[rc::cache]` is reported on the
//! offending token with a clear message. Regenerate the expected output with
//! `TRYBUILD=overwrite cargo test -p rc-macros --test ui` and read every
//! `.stderr` before committing it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
