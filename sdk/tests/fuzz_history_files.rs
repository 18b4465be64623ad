//! Both history-file forms, fuzzed: mutants of valid files (bit flips,
//! truncations, insertions, huge length prefixes, random bytes, JSON
//! tokens) give a [`HistoryFileError`](refrain::history_file::HistoryFileError)
//! or a history, never a panic or an outsized allocation. Deterministic
//! and budgeted; see `refrain_history::fuzz` for `REFRAIN_FUZZ_ITERS` and
//! `REFRAIN_FUZZ_SEED`.

use refrain::history_file::HistoryExport;
use refrain_history::codec::MAX_VALUE_BYTES;
use refrain_history::fuzz::{CountingAlloc, Fuzz};
use refrain_history::samples::every_event;
use refrain_history::{RunId, WorkflowId};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Exports of every event variant: all of them in one file, and each
/// alone.
fn exports() -> Vec<HistoryExport> {
    let export = |events| HistoryExport {
        workflow_id: WorkflowId::new("order-1"),
        run: RunId(7),
        workflow_type: "order-to-cash".into(),
        events,
    };
    let mut all = vec![export(every_event())];
    all.extend(every_event().into_iter().map(|e| export(vec![e])));
    all
}

#[test]
fn fuzzed_binary_files_give_named_errors() {
    let corpus: Vec<Vec<u8>> = exports().iter().map(|e| e.to_bytes().unwrap()).collect();
    Fuzz::from_env("binary history file", 40_000)
        .resealing()
        .max_allocation(MAX_VALUE_BYTES)
        .run(&corpus, HistoryExport::parse);
}

#[test]
fn fuzzed_json_files_give_named_errors_and_allocate_by_their_size() {
    let corpus: Vec<Vec<u8>> = exports().iter().map(|e| e.to_json().into_bytes()).collect();
    let largest = corpus.iter().map(Vec::len).max().unwrap_or(0);
    // Nothing in the JSON form declares a length: what the reader builds
    // is at most a few times the text it reads.
    Fuzz::from_env("JSON history file", 20_000)
        .max_allocation(16 * largest)
        .run(&corpus, HistoryExport::parse);
}
