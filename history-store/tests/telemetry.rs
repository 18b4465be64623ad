//! The store's gauges (`refrain_history::telemetry`), sampled into a
//! Prometheus recorder local to the test's thread, so that no other test
//! shares it.

use metrics_exporter_prometheus::PrometheusBuilder;
use refrain_history::conformance::{activate, callsite, p, start};
use refrain_history::{CommandSeq, Event, HistoryStore, Store, StoreConfig, Timestamp};

const HOUR: u64 = 3_600_000;

/// The value of the unlabelled sample `name` in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn assigned(cmd: u32, assignee: &str, deadline: Option<Timestamp>) -> Event {
    Event::HumanTaskAssigned {
        cmd: CommandSeq(cmd),
        task: "underwriting-review".into(),
        assignee: assignee.into(),
        form: Some(p("{}")),
        deadline,
        level: 0,
        callsite: callsite(),
        escalations: Vec::new(),
    }
}

/// One timer, three open human tasks of which one is past its deadline,
/// one run waiting for an activation, and a decided task that no longer
/// counts.
#[tokio::test(flavor = "current_thread")]
async fn gauges_count_ready_runs_timers_and_open_and_overdue_human_tasks() {
    let store = Store::in_memory(StoreConfig::default());
    let s: &dyn HistoryStore = &store;
    let now = Timestamp::now();
    let run = start(s, "loan-1").await;
    activate(
        s,
        run,
        vec![
            Event::TimerStarted {
                cmd: CommandSeq(1),
                fire_at: Timestamp(now.0 + HOUR),
                callsite: callsite(),
            },
            assigned(2, "ann", Some(Timestamp(now.0 - HOUR))),
            assigned(3, "bob", Some(Timestamp(now.0 + HOUR))),
            assigned(4, "cid", None),
            assigned(5, "dee", Some(Timestamp(now.0 - HOUR))),
        ],
    )
    .await;
    s.decide_human_task(refrain_history::HumanTaskDecision {
        run,
        cmd: CommandSeq(5),
        decision: p("true"),
        decided_by: "dee".into(),
        comment: None,
        expected_assignee: None,
    })
    .await
    .unwrap();
    // The decision gave `loan-1` work; so does the start of `loan-2`.
    start(s, "loan-2").await;

    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || store.record_gauges(now)).unwrap();
    let text = handle.render();
    assert_eq!(
        sample(&text, "refrain_ready_queue_depth"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(sample(&text, "refrain_pending_timers"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "refrain_human_tasks_open"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "refrain_human_tasks_overdue"),
        Some(1.0),
        "{text}"
    );
}
