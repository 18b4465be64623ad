//! The determinism checks as a user sees them: each `tests/ui/*.rs` file is
//! compiled on its own and its diagnostics compared with the `.stderr` file
//! next to it (regenerate with `TRYBUILD=overwrite cargo test -p refrain-macros`).
//!
//! * `pass.rs`: a workflow using the replay-safe replacements compiles
//!   without a warning, look-alikes are not flagged, and an activity needs
//!   only `#[refrain::activity]`.
//! * `time.rs`: clock reads and non-durable timers are errors.
//! * `concurrency_and_randomness.rs`: spawning, `select!`, random numbers
//!   and `process::exit` are errors, in an `impl Workflow` block, a free
//!   function and a macro's arguments.
//! * `activity.rs`: `#[refrain::activity]` misplaced or on a non-async
//!   `run`, and `#[refrain::deterministic]` put on an activity, each get
//!   one error that says what to write.
//! * `derive_pass.rs`: `#[derive(Signal)]` and `#[derive(Query)]` name a
//!   type in kebab case or as their attribute says, on structs and enums.
//! * `derive.rs`: a query without `result`, a name that is not a non-empty
//!   string, an unknown key, a generic type and a union each get one error
//!   that says what to write.
//! * `warnings.rs`: iterating a `HashMap`/`HashSet` and reading the
//!   environment are warnings (made errors here by `deny(deprecated)`).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass.rs");
    cases.compile_fail("tests/ui/time.rs");
    cases.compile_fail("tests/ui/concurrency_and_randomness.rs");
    cases.compile_fail("tests/ui/warnings.rs");
    cases.compile_fail("tests/ui/activity.rs");
    cases.pass("tests/ui/derive_pass.rs");
    cases.compile_fail("tests/ui/derive.rs");
}
