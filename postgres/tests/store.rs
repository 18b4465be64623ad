//! The store on PostgreSQL beyond the conformance suite: a restart on the
//! same schema, scans longer than a page, and bad input at open.

use refrain_history::{
    ActivationCommit, ActivityOptions, ActivityState, Callsite, CommandSeq, Event, HistoryStore,
    IdConflictPolicy, ListOrder, PageRequest, Payload, RetryPolicy, RunFilter, StartRequest, Store,
    StoreConfig, Timestamp,
};
use refrain_postgres::{OpenError, Options};
use std::time::Duration;

fn payload(s: &str) -> Payload {
    Payload::from_bytes(s.as_bytes().to_vec())
}

fn start(store: &Store, id: &str) -> refrain_history::RunId {
    store
        .start_workflow(StartRequest {
            workflow_id: id.into(),
            workflow_type: "order-to-cash".into(),
            input: payload("{}"),
            on_conflict: IdConflictPolicy::Reject,
            seed: 7,
            now: Timestamp::now(),
        })
        .expect("start")
        .run
}

#[test]
fn a_store_reopened_on_its_schema_has_everything_and_fails_orphaned_attempts() {
    let Some(db) = refrain_postgres::testing::fresh("reopen") else {
        return;
    };
    let store =
        refrain_postgres::open_with(&db.url, &db.options(), StoreConfig::default()).expect("open");
    let run = start(&store, "order-1");
    let task = store.claim_activation(run).expect("claim").expect("a task");
    let mut events = vec![Event::ActivationStarted {
        time: Timestamp::now(),
    }];
    events.extend(task.inbox.iter().cloned());
    events.push(Event::ActivityScheduled {
        cmd: CommandSeq(1),
        activity_type: "reserve-stock".into(),
        input: payload("\"sku-1\""),
        options: ActivityOptions {
            start_to_close: Some(Duration::from_secs(3600)),
            schedule_to_close: None,
            heartbeat_timeout: None,
            retry: RetryPolicy::exponential().max_attempts(0),
        },
        callsite: Callsite {
            file: "order.rs".into(),
            line: 1,
            column: 1,
        },
    });
    store
        .commit_activation(ActivationCommit {
            run,
            token: task.token,
            expected_last_seq: task.record.last_seq,
            inbox_upto: task.inbox_upto,
            events,
            rejected_updates: Vec::new(),
            awaited_signals: Vec::new(),
        })
        .expect("commit");
    let claimed = store
        .claim_activity_tasks(Timestamp::now(), 10)
        .expect("claim the activity");
    assert_eq!(claimed.len(), 1);
    store.durable_blocking().expect("durable");
    let history = store.read_history(run).expect("history");
    let record = store.run_record(run).expect("record").expect("the run");
    drop(store);

    // A new process on the same schema: everything is there, and the
    // attempt the old one was running is failed and due again.
    let store = refrain_postgres::open_with(&db.url, &db.options(), StoreConfig::default())
        .expect("reopen");
    assert_eq!(store.read_history(run).expect("history again"), history);
    let again = store
        .run_record(run)
        .expect("record again")
        .expect("the run");
    assert_eq!(again.last_seq, record.last_seq);
    assert_eq!(again.workflow_id, record.workflow_id);
    let task = store
        .activity_task(run, CommandSeq(1))
        .expect("read the task")
        .expect("the task is kept");
    assert_eq!(task.attempt, 2, "the orphaned attempt was failed at open");
    assert!(matches!(task.state, ActivityState::Scheduled { .. }));
    // The old activation lease is void, and the next run number is new.
    let next = start(&store, "order-2");
    assert!(next > run);
}

#[tokio::test]
async fn scans_longer_than_a_page_list_every_run_once_in_both_orders() {
    let Some(db) = refrain_postgres::testing::fresh("long_scans") else {
        return;
    };
    let store =
        refrain_postgres::open_with(&db.url, &db.options(), StoreConfig::default()).expect("open");
    // More than one page of the engine's scans (256 entries).
    let n = 600;
    let mut runs: Vec<_> = (0..n).map(|i| start(&store, &format!("wf-{i}"))).collect();
    let listed: Vec<_> = store
        .list_runs(&RunFilter::default())
        .expect("list")
        .into_iter()
        .map(|r| r.run)
        .collect();
    assert_eq!(listed, runs);
    let newest_first = HistoryStore::list_runs(
        &store,
        &RunFilter::default(),
        PageRequest {
            after: None,
            limit: n + 1,
            order: ListOrder::NewestFirst,
        },
    )
    .await
    .expect("list newest first");
    runs.reverse();
    assert_eq!(
        newest_first.runs.iter().map(|r| r.run).collect::<Vec<_>>(),
        runs
    );
}

#[test]
fn a_url_that_does_not_connect_is_named() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("host=127.0.0.1 port={port} user=refrain password=secret dbname=app");
    let Err(e) = refrain_postgres::open(&url, StoreConfig::default()) else {
        panic!("opened a store on a closed port");
    };
    assert!(matches!(e, OpenError::Connect { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{port}/app")),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");

    let bad = refrain_postgres::open("postgresql://[::1", StoreConfig::default());
    assert!(
        matches!(bad, Err(OpenError::BadUrl { .. })),
        "{:?}",
        bad.err()
    );
    let bad = refrain_postgres::open_with(
        &url,
        &Options {
            schema: "Robert'); DROP TABLE runs;--".into(),
            ..Options::default()
        },
        StoreConfig::default(),
    );
    assert!(
        matches!(bad, Err(OpenError::BadSchemaName { .. })),
        "{:?}",
        bad.err()
    );
}

#[tokio::test]
async fn a_schema_of_a_newer_layout_is_refused_by_name() {
    let Some(db) = refrain_postgres::testing::fresh("newer_schema") else {
        return;
    };
    drop(
        refrain_postgres::open_with(&db.url, &db.options(), StoreConfig::default())
            .expect("create the layout"),
    );
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "UPDATE \"{}\".refrain_schema SET version = 99",
            db.schema
        ))
        .await
        .expect("pretend a newer Refrain wrote it");
    let url = db.url.clone();
    let options = db.options();
    let opened = tokio::task::spawn_blocking(move || {
        refrain_postgres::open_with(&url, &options, StoreConfig::default())
    })
    .await
    .expect("join");
    let Err(e) = opened else {
        panic!("opened a schema of a newer layout");
    };
    assert!(
        matches!(
            e,
            OpenError::SchemaTooNew {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("newer"), "{e}");
    // Left as found.
    let version: i32 = client
        .query_one(
            &format!("SELECT version FROM \"{}\".refrain_schema", db.schema),
            &[],
        )
        .await
        .expect("read the version")
        .get(0);
    assert_eq!(version, 99);
}
