//! The runs list over enough runs that the store's tables span many
//! nodes: newest first is oldest first reversed, page by page, under a
//! filter, and a cursor still continues its walk after a restart.

mod common;

use common::*;
use refrain_history::{HistoryStore, ListOrder, PageRequest, RunCursor, RunFilter, RunId};

const RUNS: u64 = 2_000;

/// Every run `filter` admits, in `order`, read in pages of `limit` from
/// `cursor` on; and how many pages that took.
async fn walk(
    store: &dyn HistoryStore,
    filter: &RunFilter,
    order: ListOrder,
    limit: usize,
    mut cursor: Option<RunCursor>,
) -> (Vec<RunId>, usize) {
    let (mut runs, mut pages) = (Vec::new(), 0);
    loop {
        let page = PageRequest {
            after: cursor,
            ..PageRequest::first(limit).in_order(order)
        };
        let got = store.list_runs(filter, page).await.expect("list");
        runs.extend(got.runs.iter().map(|r| r.run));
        pages += 1;
        match got.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (runs, pages),
        }
    }
}

async fn newest_first_reverses_oldest_first_over_many_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..RUNS {
        let id = if i % 7 == 0 {
            format!("eu-{i}")
        } else {
            format!("us-{i}")
        };
        start(&store, &id, at(i));
    }
    let eu = RunFilter {
        id_prefix: Some("eu-".into()),
        ..RunFilter::default()
    };
    for filter in [RunFilter::default(), eu] {
        let (oldest, _) = walk(&store, &filter, ListOrder::OldestFirst, 1000, None).await;
        let (mut newest, pages) = walk(&store, &filter, ListOrder::NewestFirst, 97, None).await;
        assert!(pages > 2, "{pages} pages");
        newest.reverse();
        assert_eq!(newest, oldest, "{filter:?}");
    }

    // A cursor is a position, not a handle on the open store: after a
    // restart it continues the same walk.
    let all = RunFilter::default();
    let first = HistoryStore::list_runs(&store, &all, PageRequest::first(500).newest_first())
        .await
        .unwrap();
    let cursor = first.next_cursor.expect("more pages");
    drop(store);
    let store = open(dir.path());
    let (rest, _) = walk(&store, &all, ListOrder::NewestFirst, 500, Some(cursor)).await;
    let whole: Vec<RunId> = first.runs.iter().map(|r| r.run).chain(rest).collect();
    let (mut oldest, _) = walk(&store, &all, ListOrder::OldestFirst, 5000, None).await;
    oldest.reverse();
    assert_eq!(whole, oldest);
    assert_eq!(whole.len() as u64, RUNS);
}

on_both_engines! {
    async fn newest_first_reverses_oldest_first_over_many_runs;
}
