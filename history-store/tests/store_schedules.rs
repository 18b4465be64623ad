//! Schedules in the store: triggers, overlap policies, catch-up windows,
//! pause/resume, ids, and persistence. Every time is explicit; nothing
//! sleeps.

mod common;

use common::*;
use refrain_history::codec::{decode, encode};
use refrain_history::{
    OverlapPolicy, RunId, ScheduleRecord, ScheduleSpec, ScheduledRun, Store, StoreError, Timestamp,
    Trigger, WorkflowId,
};
use std::path::PathBuf;
use std::time::Duration;

const HOUR: u64 = 3_600_000;
const MINUTE: u64 = 60_000;

/// The first whole hour after `T0`: `Every(1 h)` fires on whole hours.
fn base() -> Timestamp {
    Timestamp((T0.0 / HOUR + 1) * HOUR)
}

/// `base()` plus `n` hours.
fn h(n: u64) -> Timestamp {
    Timestamp(base().0 + n * HOUR)
}

fn plus(t: Timestamp, ms: u64) -> Timestamp {
    Timestamp(t.0 + ms)
}

fn hourly(id: &str, overlap: OverlapPolicy, window: Duration) -> ScheduleSpec {
    ScheduleSpec::new(
        id,
        "reconcile",
        payload("{\"ledger\":\"eu\"}"),
        Trigger::Every(Duration::from_secs(3600)),
    )
    .overlap(overlap)
    .catchup_window(window)
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Creates an hourly schedule at `base()`: its first fire is `h(1)`.
fn create_hourly(store: &Store, id: &str, overlap: OverlapPolicy, window: Duration) {
    store
        .create_schedule(hourly(id, overlap, window), base())
        .unwrap();
}

fn wid(schedule: &str, t: Timestamp) -> WorkflowId {
    refrain_history::store::schedules::scheduled_workflow_id(schedule, t)
}

/// Workflow ids of the runs a pass started, in order.
fn started_ids(store: &Store, now: Timestamp) -> Vec<WorkflowId> {
    store
        .fire_due_schedules(now)
        .unwrap()
        .started
        .into_iter()
        .map(|(_, r)| r.workflow_id)
        .collect()
}

fn close(store: &Store, workflow_id: &WorkflowId, now: Timestamp) {
    store.terminate(workflow_id, "done", now).unwrap();
}

fn describe(store: &Store, id: &str) -> ScheduleRecord {
    store.describe_schedule(id).unwrap()
}

/// (runs_started, skipped, missed)
fn counters(store: &Store, id: &str) -> (u64, u64, u64) {
    let d = describe(store, id);
    (d.runs_started, d.skipped, d.missed)
}

fn an_interval_fires_on_its_multiples_and_names_runs_by_fire_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let created = store
        .create_schedule(
            hourly("ledger", OverlapPolicy::Skip, DAY),
            plus(base(), 10 * MINUTE),
        )
        .unwrap();
    assert_eq!(created.next_fire, Some(h(1)));
    assert_eq!(store.next_schedule_due().unwrap(), Some(h(1)));

    assert!(store
        .fire_due_schedules(Timestamp(h(1).0 - 1))
        .unwrap()
        .is_empty());
    let fires = store.fire_due_schedules(h(1)).unwrap();
    assert_eq!(fires.started.len(), 1);
    let (schedule, run) = &fires.started[0];
    assert_eq!(schedule, "ledger");
    assert_eq!(run.fire_time, h(1));
    assert_eq!(run.workflow_id, wid("ledger", h(1)));
    assert_eq!(run.workflow_id.as_str(), "ledger@2023-11-15T00:00:00Z");
    assert_eq!(store.take_ready(10), vec![run.run]);

    let history = store.read_history(run.run).unwrap();
    match &history[0] {
        refrain_history::Event::WorkflowStarted {
            workflow_type,
            input,
            start_time,
            ..
        } => {
            assert_eq!(workflow_type, "reconcile");
            assert_eq!(input, &payload("{\"ledger\":\"eu\"}"));
            assert_eq!(*start_time, h(1));
        }
        other => panic!("expected WorkflowStarted, found {other:?}"),
    }

    // The same instant again, or a little later: nothing new.
    assert!(store.fire_due_schedules(h(1)).unwrap().is_empty());
    assert!(store
        .fire_due_schedules(plus(h(1), MINUTE))
        .unwrap()
        .is_empty());
    let d = describe(&store, "ledger");
    assert_eq!(d.next_fire, Some(h(2)));
    assert_eq!(d.last_fire, Some(h(1)));
    assert_eq!(d.last_run, Some(run.clone()));
    assert_eq!(counters(&store, "ledger"), (1, 0, 0));
    assert_eq!(store.next_schedule_due().unwrap(), Some(h(2)));
}

#[test]
fn fire_times_print_as_rfc3339_utc() {
    use refrain_history::store::schedules::fire_time_rfc3339;
    assert_eq!(fire_time_rfc3339(Timestamp(0)), "1970-01-01T00:00:00Z");
    assert_eq!(
        fire_time_rfc3339(Timestamp(1_704_076_200_000)),
        "2024-01-01T02:30:00Z"
    );
    assert_eq!(
        fire_time_rfc3339(Timestamp(1_704_076_200_250)),
        "2024-01-01T02:30:00.250Z"
    );
}

fn a_cron_trigger_fires_at_its_matches_in_utc() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let new_year = Timestamp(1_704_067_200_000); // 2024-01-01T00:00:00Z
    let spec = ScheduleSpec::new(
        "nightly",
        "reconcile",
        payload("{}"),
        Trigger::Cron("30 2 * * *".into()),
    );
    let created = store.create_schedule(spec, new_year).unwrap();
    let first = Timestamp(new_year.0 + 2 * HOUR + 30 * MINUTE);
    assert_eq!(created.next_fire, Some(first));
    assert!(store
        .fire_due_schedules(Timestamp(first.0 - 1))
        .unwrap()
        .is_empty());
    assert_eq!(
        started_ids(&store, first),
        vec![WorkflowId::new("nightly@2024-01-01T02:30:00Z")]
    );
    assert_eq!(
        describe(&store, "nightly").next_fire,
        Some(Timestamp(first.0 + 24 * HOUR))
    );

    // Six fields: seconds first.
    let spec = ScheduleSpec::new(
        "every-10s",
        "reconcile",
        payload("{}"),
        Trigger::Cron("*/10 * * * * *".into()),
    );
    let created = store
        .create_schedule(spec, Timestamp(new_year.0 + 1))
        .unwrap();
    assert_eq!(created.next_fire, Some(Timestamp(new_year.0 + 10_000)));
}

fn bad_cron_expressions_and_unusable_specs_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for expr in ["61 * * * *", "not cron at all", "* * *", ""] {
        let spec = ScheduleSpec::new("s", "w", payload("{}"), Trigger::Cron(expr.into()));
        match store.create_schedule(spec, base()) {
            Err(StoreError::BadCronExpression { expression, .. }) => assert_eq!(expression, expr),
            other => panic!("{expr:?}: expected BadCronExpression, got {other:?}"),
        }
    }
    let zero = ScheduleSpec::new("s", "w", payload("{}"), Trigger::Every(Duration::ZERO));
    assert!(matches!(
        store.create_schedule(zero, base()),
        Err(StoreError::InvalidSchedule { .. })
    ));
    let no_id = hourly("", OverlapPolicy::Skip, DAY);
    assert!(matches!(
        store.create_schedule(no_id, base()),
        Err(StoreError::InvalidSchedule { .. })
    ));
    // February 30th never comes.
    let never = ScheduleSpec::new("s", "w", payload("{}"), Trigger::Cron("0 0 30 2 *".into()));
    assert!(matches!(
        store.create_schedule(never, base()),
        Err(StoreError::InvalidSchedule { .. } | StoreError::BadCronExpression { .. })
    ));
    // Nothing was written by any of them.
    assert!(store.list_schedules().unwrap().is_empty());
    assert_eq!(store.next_schedule_due().unwrap(), None);
}

fn duplicate_and_unknown_ids_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create_hourly(&store, "ledger", OverlapPolicy::Skip, DAY);
    match store.create_schedule(hourly("ledger", OverlapPolicy::AllowAll, DAY), base()) {
        Err(StoreError::ScheduleExists { id }) => assert_eq!(id, "ledger"),
        other => panic!("expected ScheduleExists, got {other:?}"),
    }
    // The original is untouched.
    assert_eq!(describe(&store, "ledger").spec.overlap, OverlapPolicy::Skip);

    let not_found = |r: Result<(), StoreError>| match r {
        Err(StoreError::ScheduleNotFound { id }) => assert_eq!(id, "nope"),
        other => panic!("expected ScheduleNotFound, got {other:?}"),
    };
    not_found(store.pause_schedule("nope").map(drop));
    not_found(store.resume_schedule("nope").map(drop));
    not_found(store.delete_schedule("nope"));
    not_found(store.describe_schedule("nope").map(drop));

    // Deleted, the id is free again, and the old index entry is gone.
    store.delete_schedule("ledger").unwrap();
    not_found(store.delete_schedule("nope"));
    assert!(matches!(
        store.describe_schedule("ledger"),
        Err(StoreError::ScheduleNotFound { .. })
    ));
    assert_eq!(store.next_schedule_due().unwrap(), None);
    assert!(store.fire_due_schedules(h(5)).unwrap().is_empty());
    create_hourly(&store, "ledger", OverlapPolicy::AllowAll, DAY);
    assert_eq!(store.list_schedules().unwrap().len(), 1);
}

fn skip_drops_a_fire_while_the_previous_run_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create_hourly(&store, "s", OverlapPolicy::Skip, DAY);
    assert_eq!(started_ids(&store, h(1)), vec![wid("s", h(1))]);
    let fires = store.fire_due_schedules(h(2)).unwrap();
    assert!(fires.started.is_empty());
    assert_eq!(fires.skipped, 1);
    let d = describe(&store, "s");
    assert_eq!(d.last_fire, Some(h(2)));
    assert_eq!(d.last_run.unwrap().workflow_id, wid("s", h(1)));
    assert_eq!(d.next_fire, Some(h(3)));

    close(&store, &wid("s", h(1)), plus(h(2), MINUTE));
    // Closing does not bring the skipped fire back.
    assert!(store
        .fire_due_schedules(plus(h(2), 2 * MINUTE))
        .unwrap()
        .is_empty());
    assert_eq!(started_ids(&store, h(3)), vec![wid("s", h(3))]);
    assert_eq!(counters(&store, "s"), (2, 1, 0));
    assert!(store.schedule_blockers().unwrap().is_empty());
}

fn buffer_one_starts_the_buffered_fire_once_the_previous_run_closes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create_hourly(&store, "s", OverlapPolicy::BufferOne, DAY);
    assert_eq!(started_ids(&store, h(1)), vec![wid("s", h(1))]);
    let first = describe(&store, "s").last_run.unwrap().run;

    let fires = store.fire_due_schedules(h(2)).unwrap();
    assert_eq!((fires.started.len(), fires.buffered), (0, 1));
    assert_eq!(describe(&store, "s").buffered_fire, Some(h(2)));
    assert_eq!(store.schedule_blockers().unwrap(), vec![first]);
    // A second fire while one is buffered is dropped.
    let fires = store.fire_due_schedules(h(3)).unwrap();
    assert_eq!(
        (fires.started.len(), fires.buffered, fires.skipped),
        (0, 0, 1)
    );
    assert_eq!(describe(&store, "s").buffered_fire, Some(h(2)));
    // Still open: nothing to start.
    assert!(store
        .fire_due_schedules(plus(h(3), MINUTE))
        .unwrap()
        .is_empty());

    close(&store, &wid("s", h(1)), plus(h(3), 2 * MINUTE));
    let fires = store.fire_due_schedules(plus(h(3), 3 * MINUTE)).unwrap();
    assert_eq!(fires.started.len(), 1);
    let (_, run) = &fires.started[0];
    assert_eq!(run.workflow_id, wid("s", h(2)), "named after its fire time");
    assert_eq!(run.fire_time, h(2));
    let started_at = store.run_record(run.run).unwrap().unwrap().started_at;
    assert_eq!(started_at, plus(h(3), 3 * MINUTE), "started when handled");
    let d = describe(&store, "s");
    assert_eq!(d.buffered_fire, None);
    assert_eq!(d.last_run.as_ref(), Some(run));
    assert!(
        store.schedule_blockers().unwrap().is_empty(),
        "nothing buffered"
    );

    // The buffered run is now the previous one: the next fire buffers.
    let fires = store.fire_due_schedules(h(4)).unwrap();
    assert_eq!((fires.started.len(), fires.buffered), (0, 1));
    assert_eq!(counters(&store, "s"), (2, 1, 0));
}

fn allow_all_starts_a_run_for_every_fire() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create_hourly(&store, "s", OverlapPolicy::AllowAll, DAY);
    assert_eq!(started_ids(&store, h(1)), vec![wid("s", h(1))]);
    assert_eq!(started_ids(&store, h(2)), vec![wid("s", h(2))]);
    for t in [h(1), h(2)] {
        let (_, record) = store.latest_run(&wid("s", t)).unwrap().unwrap();
        assert!(record.status.is_open());
    }
    assert_eq!(counters(&store, "s"), (2, 0, 0));
    assert!(store.schedule_blockers().unwrap().is_empty());
}

fn catch_up_includes_a_fire_exactly_one_window_old() {
    let window = Duration::from_secs(2 * 3600);
    let now = plus(h(1), 2 * HOUR); // h(3): h(1) is exactly one window old
    for (policy, expected, skipped) in [
        (OverlapPolicy::Skip, vec![h(3)], 2),
        (OverlapPolicy::BufferOne, vec![h(3)], 2),
        (OverlapPolicy::AllowAll, vec![h(1), h(2), h(3)], 0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        create_hourly(&store, "s", policy, window);
        let fires = store.fire_due_schedules(now).unwrap();
        let ids: Vec<_> = fires
            .started
            .iter()
            .map(|(_, r)| r.workflow_id.clone())
            .collect();
        let want: Vec<_> = expected.iter().map(|&t| wid("s", t)).collect();
        assert_eq!(ids, want, "{policy:?}");
        assert_eq!(fires.missed, 0, "{policy:?}");
        assert_eq!(
            counters(&store, "s"),
            (expected.len() as u64, skipped, 0),
            "{policy:?}"
        );
        assert_eq!(describe(&store, "s").next_fire, Some(h(4)));
    }
}

fn catch_up_skips_and_counts_a_fire_one_millisecond_older_than_the_window() {
    let window = Duration::from_secs(2 * 3600);
    let now = plus(h(3), 1); // h(1) is one window and 1 ms old
    for (policy, expected, skipped) in [
        (OverlapPolicy::Skip, vec![h(3)], 1),
        (OverlapPolicy::BufferOne, vec![h(3)], 1),
        (OverlapPolicy::AllowAll, vec![h(2), h(3)], 0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        create_hourly(&store, "s", policy, window);
        let fires = store.fire_due_schedules(now).unwrap();
        let ids: Vec<_> = fires
            .started
            .iter()
            .map(|(_, r)| r.workflow_id.clone())
            .collect();
        let want: Vec<_> = expected.iter().map(|&t| wid("s", t)).collect();
        assert_eq!(ids, want, "{policy:?}");
        assert_eq!(fires.missed, 1, "{policy:?}");
        assert_eq!(
            counters(&store, "s"),
            (expected.len() as u64, skipped, 1),
            "{policy:?}"
        );
    }
}

fn a_long_outage_skips_everything_older_than_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create_hourly(
        &store,
        "s",
        OverlapPolicy::AllowAll,
        Duration::from_secs(2 * 3600),
    );
    // Down from before h(1) until h(10): h(1)..h(7) are older than h(8).
    let fires = store.fire_due_schedules(h(10)).unwrap();
    let ids: Vec<_> = fires
        .started
        .iter()
        .map(|(_, r)| r.workflow_id.clone())
        .collect();
    assert_eq!(ids, vec![wid("s", h(8)), wid("s", h(9)), wid("s", h(10))]);
    assert_eq!(counters(&store, "s"), (3, 0, 7));

    // A minimal window and a wake-up half an hour after the last fire:
    // everything is missed, nothing starts.
    create_hourly(&store, "late", OverlapPolicy::Skip, Duration::ZERO);
    let fires = store.fire_due_schedules(plus(h(3), 30 * MINUTE)).unwrap();
    assert!(fires.started.is_empty());
    assert_eq!(fires.missed, 3);
    assert_eq!(describe(&store, "late").next_fire, Some(h(4)));
    assert_eq!(describe(&store, "late").last_fire, None);
}

fn catch_up_behind_an_open_run_follows_the_policy() {
    for (policy, started, buffered, skipped) in [
        (OverlapPolicy::Skip, 0, None, 3),
        (OverlapPolicy::BufferOne, 0, Some(h(4)), 2),
        (OverlapPolicy::AllowAll, 3, None, 0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        create_hourly(&store, "s", policy, DAY);
        assert_eq!(started_ids(&store, h(1)), vec![wid("s", h(1))]);
        // The run of h(1) is still open when the process comes back at h(4).
        let fires = store.fire_due_schedules(h(4)).unwrap();
        assert_eq!(fires.started.len(), started, "{policy:?}");
        let d = describe(&store, "s");
        assert_eq!(d.buffered_fire, buffered, "{policy:?}");
        assert_eq!(d.skipped, skipped, "{policy:?}");
        assert_eq!(d.last_fire, Some(h(4)), "{policy:?}");
    }
}

fn a_paused_schedule_does_not_fire_and_resuming_catches_up_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create_hourly(
        &store,
        "s",
        OverlapPolicy::AllowAll,
        Duration::from_secs(90 * 60),
    );
    let paused = store.pause_schedule("s").unwrap();
    assert!(paused.paused);
    assert!(store.pause_schedule("s").unwrap().paused, "idempotent");
    assert_eq!(store.next_schedule_due().unwrap(), None);
    assert!(store.fire_due_schedules(h(3)).unwrap().is_empty());
    assert!(store
        .fire_due_schedules(plus(h(3), 10 * MINUTE))
        .unwrap()
        .is_empty());
    assert_eq!(counters(&store, "s"), (0, 0, 0));

    let resumed = store.resume_schedule("s").unwrap();
    assert!(!resumed.paused);
    assert_eq!(resumed.next_fire, Some(h(1)));
    assert_eq!(store.next_schedule_due().unwrap(), Some(h(1)));
    // At h(3)+10 min the window reaches back to h(1)+40 min: h(1) is not
    // back-fired, h(2) and h(3) are.
    let ids = started_ids(&store, plus(h(3), 10 * MINUTE));
    assert_eq!(ids, vec![wid("s", h(2)), wid("s", h(3))]);
    assert_eq!(counters(&store, "s"), (2, 0, 1));
    assert_eq!(started_ids(&store, h(4)), vec![wid("s", h(4))]);
}

fn a_paused_schedule_keeps_its_buffered_fire_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create_hourly(&store, "s", OverlapPolicy::BufferOne, DAY);
    started_ids(&store, h(1));
    assert_eq!(store.fire_due_schedules(h(2)).unwrap().buffered, 1);
    store.pause_schedule("s").unwrap();
    assert!(store.schedule_blockers().unwrap().is_empty());
    close(&store, &wid("s", h(1)), plus(h(2), MINUTE));
    assert!(store
        .fire_due_schedules(plus(h(2), 2 * MINUTE))
        .unwrap()
        .is_empty());
    assert_eq!(describe(&store, "s").buffered_fire, Some(h(2)));

    store.resume_schedule("s").unwrap();
    assert_eq!(
        started_ids(&store, plus(h(2), 3 * MINUTE)),
        vec![wid("s", h(2))]
    );
}

fn an_existing_run_of_a_fires_id_is_never_started_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create_hourly(&store, "s", OverlapPolicy::AllowAll, DAY);
    // Somebody started the id a fire would use; the fire adopts that run.
    let mut req = start_request(wid("s", h(1)).as_str(), h(0));
    req.workflow_type = "reconcile".into();
    let existing = store.start_workflow(req).unwrap().run;
    let fires = store.fire_due_schedules(h(1)).unwrap();
    assert!(fires.started.is_empty());
    let d = describe(&store, "s");
    assert_eq!(
        d.last_run,
        Some(ScheduledRun {
            fire_time: h(1),
            workflow_id: wid("s", h(1)),
            run: existing
        })
    );
    assert_eq!(d.runs_started, 0);
    assert_eq!(d.next_fire, Some(h(2)));
}

fn schedules_are_listed_in_creation_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for id in ["b", "a", "c"] {
        create_hourly(&store, id, OverlapPolicy::Skip, DAY);
    }
    store.pause_schedule("a").unwrap();
    started_ids(&store, h(1));
    let list = store.list_schedules().unwrap();
    let ids: Vec<_> = list.iter().map(|s| s.spec.id.as_str()).collect();
    assert_eq!(ids, vec!["b", "a", "c"]);
    let started: Vec<_> = list.iter().map(|s| s.runs_started).collect();
    assert_eq!(started, vec![1, 0, 1]);
}

fn schedules_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (before, first) = {
        let store = open(dir.path());
        create_hourly(&store, "buffered", OverlapPolicy::BufferOne, DAY);
        create_hourly(&store, "paused", OverlapPolicy::Skip, DAY);
        store.pause_schedule("paused").unwrap();
        started_ids(&store, h(1));
        store.fire_due_schedules(h(2)).unwrap();
        store.durable_blocking().unwrap();
        (
            store.list_schedules().unwrap(),
            describe(&store, "buffered").last_run.unwrap().run,
        )
    };
    let store = open(dir.path());
    assert_eq!(store.list_schedules().unwrap(), before);
    assert_eq!(describe(&store, "buffered").buffered_fire, Some(h(2)));
    assert_eq!(store.schedule_blockers().unwrap(), vec![first]);
    assert_eq!(store.next_schedule_due().unwrap(), Some(h(3)));
    assert!(matches!(
        store.create_schedule(hourly("paused", OverlapPolicy::Skip, DAY), h(2)),
        Err(StoreError::ScheduleExists { .. })
    ));

    // It carries on where it was.
    close(&store, &wid("buffered", h(1)), plus(h(2), MINUTE));
    assert_eq!(
        started_ids(&store, plus(h(2), 2 * MINUTE)),
        vec![wid("buffered", h(2))]
    );
    // New schedules get new numbers (listing stays in creation order).
    create_hourly(&store, "third", OverlapPolicy::Skip, DAY);
    let ids: Vec<_> = store
        .list_schedules()
        .unwrap()
        .into_iter()
        .map(|s| s.spec.id)
        .collect();
    assert_eq!(ids, vec!["buffered", "paused", "third"]);
}

fn blockers_follow_the_previous_workflow_to_its_latest_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create_hourly(&store, "s", OverlapPolicy::BufferOne, DAY);
    started_ids(&store, h(1));
    store.fire_due_schedules(h(2)).unwrap();
    let (run, _) = store.latest_run(&wid("s", h(1))).unwrap().unwrap();
    assert_eq!(store.schedule_blockers().unwrap(), vec![run]);
    assert_ne!(run, RunId(0));
}

// ----- golden bytes of the persisted record -----

fn fixture_path(version: u16, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/golden/v{version}"))
        .join(format!("{name}.bin"))
}

fn golden_record() -> ScheduleRecord {
    ScheduleRecord {
        spec: ScheduleSpec::new(
            "nightly-reconciliation",
            "reconcile-ledger",
            payload("{\"ledger\":\"eu\"}"),
            Trigger::Cron("0 2 * * *".into()),
        )
        .overlap(OverlapPolicy::BufferOne)
        .catchup_window(Duration::from_millis(3_600_250)),
        created_at: Timestamp(1_700_000_000_000),
        paused: false,
        next_fire: Some(Timestamp(1_700_092_800_000)),
        last_fire: Some(Timestamp(1_700_006_400_000)),
        last_run: Some(ScheduledRun {
            fire_time: Timestamp(1_700_006_400_000),
            workflow_id: WorkflowId::new("nightly-reconciliation@2023-11-15T00:00:00Z"),
            run: RunId(42),
        }),
        buffered_fire: None,
        runs_started: 3,
        skipped: 1,
        missed: 2,
    }
}

fn golden_record_every() -> ScheduleRecord {
    ScheduleRecord {
        spec: ScheduleSpec::new(
            "heartbeat",
            "ping",
            payload("null"),
            Trigger::Every(Duration::from_secs(30)),
        )
        .overlap(OverlapPolicy::AllowAll),
        created_at: Timestamp(1_700_000_000_000),
        paused: true,
        next_fire: None,
        last_fire: None,
        last_run: None,
        buffered_fire: Some(Timestamp(1_700_000_030_000)),
        runs_started: 0,
        skipped: 0,
        missed: 0,
    }
}

/// Same contract as `tests/golden.rs`: bless new fixtures with
/// `REFRAIN_BLESS=1`, never rewrite an existing one.
#[test]
fn schedule_records_match_their_fixtures() {
    for (name, record) in [
        ("schedule_record_cron", golden_record()),
        ("schedule_record_every", golden_record_every()),
    ] {
        // Schema version 1 wrote these too: its frozen bytes still decode.
        let v1 = std::fs::read(fixture_path(1, name)).unwrap();
        assert_eq!(
            decode::<ScheduleRecord>(&v1).unwrap(),
            record,
            "{name} (v1)"
        );
        let path = fixture_path(refrain_history::codec::SCHEMA_VERSION, name);
        let bytes = encode(&record).unwrap();
        if std::env::var_os("REFRAIN_BLESS").is_some() && !path.exists() {
            std::fs::write(&path, &bytes).unwrap();
        }
        let stored = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "missing fixture {} ({e}); create it with REFRAIN_BLESS=1",
                path.display()
            )
        });
        assert_eq!(bytes, stored, "{name}: encoding changed");
        let decoded: ScheduleRecord = decode(&stored).unwrap();
        assert_eq!(decoded, record, "{name}: fixture no longer decodes");
    }
}

on_both_engines! {
    fn an_interval_fires_on_its_multiples_and_names_runs_by_fire_time;
    fn a_cron_trigger_fires_at_its_matches_in_utc;
    fn bad_cron_expressions_and_unusable_specs_are_refused_by_name;
    fn duplicate_and_unknown_ids_are_named_errors;
    fn skip_drops_a_fire_while_the_previous_run_is_open;
    fn buffer_one_starts_the_buffered_fire_once_the_previous_run_closes;
    fn allow_all_starts_a_run_for_every_fire;
    fn catch_up_includes_a_fire_exactly_one_window_old;
    fn catch_up_skips_and_counts_a_fire_one_millisecond_older_than_the_window;
    fn a_long_outage_skips_everything_older_than_the_window;
    fn catch_up_behind_an_open_run_follows_the_policy;
    fn a_paused_schedule_does_not_fire_and_resuming_catches_up_within_the_window;
    fn a_paused_schedule_keeps_its_buffered_fire_until_resumed;
    fn an_existing_run_of_a_fires_id_is_never_started_twice;
    fn schedules_are_listed_in_creation_order;
    fn schedules_survive_a_reopen;
    fn blockers_follow_the_previous_workflow_to_its_latest_run;
}
