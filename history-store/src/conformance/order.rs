//! Cases of the list's order: newest first (the latest run leads, as an
//! operator reads a list of runs) pages as soundly as oldest first, under
//! every filter, while runs start; a cursor is only good for its order.

use super::{start, start_request, Fixture};
use crate::history_store::{HistoryStore, PageRequest, ReadError, RunCursor};
use crate::ids::{RunId, Timestamp};
use crate::store::api::{IdConflictPolicy, ListOrder, RunFilter};
use crate::store::records::RunStatus;

/// Starts `id` of `workflow_type` with its start time recorded as `at`.
async fn start_typed(s: &dyn HistoryStore, id: &str, workflow_type: &str, at: u64) -> RunId {
    let mut req = start_request(id, IdConflictPolicy::Reject);
    req.workflow_type = workflow_type.into();
    req.now = Timestamp(at);
    let outcome = s.start(req).await.expect("start");
    assert!(outcome.started);
    outcome.run
}

/// Every run `filter` admits, read in `order` in pages of `limit`, each
/// page checked against its limit and the filter.
async fn list_all(
    s: &dyn HistoryStore,
    filter: &RunFilter,
    order: ListOrder,
    limit: usize,
) -> Vec<RunId> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit).in_order(order);
    loop {
        let got = s.list_runs(filter, page).await.expect("list");
        assert!(got.runs.len() <= limit, "a page longer than its limit");
        for r in &got.runs {
            assert!(
                filter.admits(&r.workflow_id, &r.workflow_type, r.status, r.started_at),
                "{r:?} does not pass {filter:?}"
            );
        }
        out.extend(got.runs.iter().map(|r| r.run));
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(cursor, limit).in_order(order),
            None => return out,
        }
    }
}

/// Newest first, paging while runs start: the pages list every run that
/// existed before the first page exactly once, latest first, and none
/// started after it (those are newer than every run still to come).
pub async fn newest_first_pages_neither_skip_nor_repeat_while_runs_start(f: &Fixture) {
    let s = &*f.store;
    let mut before = Vec::new();
    for i in 0..8 {
        before.push(start(s, &format!("newest-{i}")).await);
    }
    let all = RunFilter::default();
    let oldest_first = list_all(s, &all, ListOrder::OldestFirst, 1000).await;
    assert_eq!(oldest_first, before, "oldest first is start order");

    let mut seen = Vec::new();
    let mut late = Vec::new();
    let mut page = PageRequest::first(3).newest_first();
    loop {
        let got = s.list_runs(&all, page).await.unwrap();
        assert!(got.runs.len() <= 3);
        seen.extend(got.runs.iter().map(|r| r.run));
        // Runs keep starting between pages.
        late.push(start(s, &format!("late-{}", late.len())).await);
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(cursor, 3).newest_first(),
            None => break,
        }
    }
    let mut expected = before.clone();
    expected.reverse();
    assert_eq!(seen, expected, "not every earlier run once, latest first");
    assert!(late.len() >= 3, "the walk took several pages: {seen:?}");

    // A first page read again leads with the runs started meanwhile.
    let first = s
        .list_runs(&all, PageRequest::first(late.len()).newest_first())
        .await
        .unwrap();
    let mut newest: Vec<RunId> = late.clone();
    newest.reverse();
    assert_eq!(first.runs.iter().map(|r| r.run).collect::<Vec<_>>(), newest);
}

/// Newest first applies every filter (status, type, id prefix, start
/// window) and lists, page by page, exactly the runs oldest first lists,
/// in the opposite order.
pub async fn newest_first_applies_every_filter(f: &Fixture) {
    const T: u64 = 1_800_000_000_000;
    let s = &*f.store;
    let mut runs = Vec::new();
    for i in 0..12u64 {
        let kind = if i % 3 == 0 { "refund" } else { "invoice" };
        let id = format!("{}-{i}", if i % 2 == 0 { "eu" } else { "us" });
        runs.push(start_typed(s, &id, kind, T + i * 10).await);
    }
    for i in [1usize, 4, 7, 10] {
        let id = format!("{}-{i}", if i % 2 == 0 { "eu" } else { "us" });
        s.terminate(&id.as_str().into(), "test", None)
            .await
            .unwrap();
    }
    let filters = [
        RunFilter::default(),
        RunFilter {
            status: Some(RunStatus::Terminated),
            ..RunFilter::default()
        },
        RunFilter {
            status: Some(RunStatus::Running),
            workflow_type: Some("invoice".into()),
            ..RunFilter::default()
        },
        RunFilter {
            id_prefix: Some("eu-".into()),
            ..RunFilter::default()
        },
        RunFilter {
            started_after: Some(Timestamp(T + 20)),
            started_before: Some(Timestamp(T + 90)),
            workflow_type: Some("invoice".into()),
            ..RunFilter::default()
        },
        RunFilter {
            workflow_type: Some("no-such-type".into()),
            ..RunFilter::default()
        },
    ];
    let expected_lens = [12, 4, 4, 6, 5, 0];
    for (filter, len) in filters.iter().zip(expected_lens) {
        let oldest = list_all(s, filter, ListOrder::OldestFirst, 2).await;
        assert_eq!(oldest.len(), len, "{filter:?}: {oldest:?}");
        for limit in [1, 2, 5, 100] {
            let mut newest = list_all(s, filter, ListOrder::NewestFirst, limit).await;
            newest.reverse();
            assert_eq!(newest, oldest, "{filter:?} in pages of {limit}");
        }
    }
}

/// A cursor given out for one order is refused by the other, as is a
/// newest-first cursor that was not given out; the default order is
/// oldest first.
pub async fn a_cursor_is_good_for_its_order_only(f: &Fixture) {
    let s = &*f.store;
    for i in 0..4 {
        start(s, &format!("cursor-{i}")).await;
    }
    let all = RunFilter::default();
    assert_eq!(PageRequest::first(2).order, ListOrder::OldestFirst);
    let oldest = s.list_runs(&all, PageRequest::first(2)).await.unwrap();
    let newest = s
        .list_runs(&all, PageRequest::first(2).newest_first())
        .await
        .unwrap();
    assert!(oldest.runs[0].run < oldest.runs[1].run);
    assert!(newest.runs[0].run > newest.runs[1].run);
    let oldest_cursor = oldest.next_cursor.expect("a next page");
    let newest_cursor = newest.next_cursor.expect("a next page");
    assert_ne!(oldest_cursor, newest_cursor);

    let all = &all;
    let refused = |page: PageRequest| async move {
        let text = page.after.clone().expect("a cursor").to_string();
        match s.list_runs(all, page).await {
            Err(ReadError::BadCursor { cursor }) => assert_eq!(cursor, text),
            other => panic!("expected BadCursor for {text:?}, got {other:?}"),
        }
    };
    refused(PageRequest::after(newest_cursor.clone(), 2)).await;
    refused(PageRequest::after(oldest_cursor.clone(), 2).newest_first()).await;
    for forged in ["", "b", "bb1", "b-1", "b+1", "1b", "not a cursor"] {
        refused(PageRequest::after(RunCursor::new(forged), 2).newest_first()).await;
    }
    // Each cursor still works with its own order.
    let next = s
        .list_runs(all, PageRequest::after(newest_cursor, 2).newest_first())
        .await
        .unwrap();
    assert!(next.runs.iter().all(|r| r.run < newest.runs[1].run));
    assert_eq!(next.runs.len(), 2);
    s.list_runs(all, PageRequest::after(oldest_cursor, 2))
        .await
        .unwrap();
}
