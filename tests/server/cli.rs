//! The `refrain` command line through a running server (`--server URL`):
//! a real server on a free port beside a worker running the examples'
//! workflows, and the command line run in-process with the token given
//! directly (`run_captured`; tests run side by side, so none may set
//! `REFRAIN_TOKEN` in the shared environment).
//!
//! - `start_inbox_decide_and_history`: start, list, describe, tasks,
//!   update, query, decide, history, the actor recorded being the token's identity.
//! - `signal_cancel_and_json`: signal, cancel, `--json` answers.
//! - `refusals_and_exit_codes`: already running (1), wrong or missing
//!   token (2), a role too low (2), nothing listening (2), local-only
//!   verbs (2).
//! - `schedules_list_pause_resume_trigger`: list, pause, describe,
//!   resume, trigger (and of an unknown schedule).
//! - `export_writes_the_history_file`.
//! - `a_store_answers_json_in_the_servers_shapes`: `--db DIR --json`
//!   prints the objects the API answers (start, schedule, describe, list,
//!   trigger).
//! - `tasks_and_decide_on_the_store_of_a_stopped_application`: `--db`
//!   with `--as NAME`.

use super::harness::{identities, Harness, OPERATOR, UNDERWRITER, VIEWER};
use refrain::history_file::HistoryExport;
use refrain::{Payload, ScheduleSpec, Trigger};
use refrain_server::{RunningServer, Server};
use refrain_worker::cli::{run_captured, Captured};
use refrain_worker::Replayer;
use serde_json::Value;
use std::time::Duration;

/// A harness with its server listening on a free loopback port.
struct Live {
    h: Harness,
    server: RunningServer,
}

impl Live {
    async fn new() -> Self {
        let h = Harness::new().await;
        let server = Server::new(h.client.clone())
            .identities(identities())
            .bind("127.0.0.1:0".parse().expect("addr"))
            .quiet()
            .start()
            .await
            .expect("server starts");
        Live { h, server }
    }

    /// `refrain --server URL ARGS…` with `token`.
    async fn run(&self, token: Option<&str>, args: &[&str]) -> Captured {
        let mut all = vec![
            "refrain".to_owned(),
            "--server".to_owned(),
            self.server.url().to_owned(),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let token = token.map(str::to_owned);
        tokio::task::spawn_blocking(move || run_captured(Replayer::new(), all, token.as_deref()))
            .await
            .expect("the command line's thread")
    }

    /// Like `run`, asserting exit code 0.
    async fn ok(&self, token: &str, args: &[&str]) -> String {
        let c = self.run(Some(token), args).await;
        assert_eq!(c.code, 0, "{args:?} failed: {}{}", c.stdout, c.stderr);
        c.stdout
    }

    /// Like `ok`, parsing the output as JSON.
    async fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut with = vec!["--json"];
        with.extend_from_slice(args);
        let text = self.ok(token, &with).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    async fn stop(self) {
        self.server.shutdown().await;
        super::harness::stop(self.h).await;
    }
}

/// A loan application the risk model is unsure about ("bo"): it waits
/// for underwriter-1, with deadlines no test reaches.
fn application(id: &str) -> String {
    serde_json::json!({
        "application_id": id,
        "applicant": "bo",
        "email": "bo@example.com",
        "amount_eur": 5000,
        "pace": {
            "underwriter_deadline_ms": 3_600_000,
            "manager_deadline_ms": 3_600_000,
            "remind_every_ms": 3_600_000
        }
    })
    .to_string()
}

/// Waits (bounded) until `check` holds for the JSON of `args`.
async fn eventually(
    live: &Live,
    token: &str,
    args: &[&str],
    check: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..400 {
        let v = live.json(token, args).await;
        if check(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{args:?} never showed what was expected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_inbox_decide_and_history() {
    let live = Live::new().await;
    let input = application("loan-cli-1");
    let started = live
        .ok(OPERATOR, &["start", "loan-approval", "loan-cli-1", &input])
        .await;
    assert!(started.starts_with("started loan-cli-1 (run "), "{started}");

    let list = live.ok(VIEWER, &["list", "--type", "loan-approval"]).await;
    assert!(list.starts_with("ID "), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("loan-cli-1 ") && l.contains("loan-approval")),
        "{list}"
    );

    // The underwriter's inbox: the token's identity, no --assignee.
    let tasks = eventually(&live, UNDERWRITER, &["tasks"], |v| {
        v["tasks"].as_array().is_some_and(|t| !t.is_empty())
    })
    .await;
    let task = &tasks["tasks"][0];
    assert_eq!(task["workflow_id"], "loan-cli-1");
    assert_eq!(task["assignee"], "underwriter-1");
    let id = task["id"].as_str().expect("task id").to_owned();
    let text = live.ok(UNDERWRITER, &["tasks"]).await;
    assert!(
        text.lines()
            .any(|l| l.starts_with(&id) && l.contains("underwriting-review")),
        "{text}"
    );
    let described = live.ok(VIEWER, &["describe", "loan-cli-1"]).await;
    assert!(described.contains("workflow  loan-cli-1"), "{described}");
    assert!(described.contains("status    running"), "{described}");

    // An update, answered by the running workflow; a refused one.
    let terms = live
        .json(
            OPERATOR,
            &[
                "update",
                "loan-cli-1",
                "amend-amount",
                r#"{"amount_eur":4000}"#,
                "--update-id",
                "a1",
            ],
        )
        .await;
    assert_eq!(terms["result"]["amount_eur"], 4000, "{terms}");
    let refused = live
        .run(
            Some(OPERATOR),
            &[
                "update",
                "loan-cli-1",
                "amend-amount",
                r#"{"amount_eur":-5}"#,
            ],
        )
        .await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("update_rejected"),
        "{}",
        refused.stderr
    );
    let unknown_query = live
        .run(Some(VIEWER), &["query", "loan-cli-1", "no-such-query"])
        .await;
    assert_eq!(unknown_query.code, 1, "{unknown_query:?}");
    assert!(
        unknown_query.stderr.contains("query_failed"),
        "{}",
        unknown_query.stderr
    );

    // Another person's task is not theirs to decide: 403, exit 2.
    let refused = live
        .run(Some(VIEWER), &["decide", &id, "\"Approve\""])
        .await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("forbidden"), "{}", refused.stderr);

    let decided = live
        .ok(
            UNDERWRITER,
            &["decide", &id, "\"Approve\"", "--comment", "solid payslips"],
        )
        .await;
    assert_eq!(
        decided.trim(),
        format!(
            "task {id} of loan-cli-1 (run {}) decided by underwriter-1",
            task["run"]
        )
    );

    let done = eventually(&live, VIEWER, &["describe", "loan-cli-1"], |v| {
        v["status"] != "running"
    })
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    let history = live.ok(VIEWER, &["history", "loan-cli-1"]).await;
    assert!(history.contains("(loan-approval, completed)"), "{history}");
    assert!(
        history.contains("DECIDED by underwriter-1"),
        "the decider is the token's identity: {history}"
    );
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_cancel_and_json() {
    let live = Live::new().await;
    let input = application("loan-cli-2");
    let started = live
        .json(OPERATOR, &["start", "loan-approval", "loan-cli-2", &input])
        .await;
    assert_eq!(started["workflow_id"], "loan-cli-2");
    assert_eq!(started["started"], true);
    let run = started["run"].as_u64().expect("run number");

    let sent = live
        .ok(OPERATOR, &["signal", "loan-cli-2", "nudge", r#"{"n":1}"#])
        .await;
    assert_eq!(
        sent.trim(),
        format!("signal nudge sent to loan-cli-2 (run {run})")
    );
    let history = eventually(&live, VIEWER, &["history", "loan-cli-2"], |v| {
        v.to_string().contains("nudge")
    })
    .await;
    assert_eq!(history["workflow_id"], "loan-cli-2");
    let timeline = live.ok(VIEWER, &["history", "loan-cli-2"]).await;
    assert!(
        timeline
            .lines()
            .any(|l| l.contains("nudge") && l.contains("operator")),
        "the sender is the token's identity: {timeline}"
    );

    let list = live.json(VIEWER, &["list", "--status", "running"]).await;
    let runs = list["runs"].as_array().expect("runs");
    assert!(runs
        .iter()
        .any(|r| r["workflow_id"] == "loan-cli-2" && r["run"] == run));

    // Newest first through the API's order, paged with its cursor.
    let later = application("loan-cli-2b");
    live.ok(OPERATOR, &["start", "loan-approval", "loan-cli-2b", &later])
        .await;
    let ids = |v: &Value| -> Vec<String> {
        v["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .filter_map(|r| r["workflow_id"].as_str().map(str::to_owned))
            .collect()
    };
    let mut oldest = ids(&live.json(VIEWER, &["list"]).await);
    oldest.reverse();
    assert_eq!(oldest[..2], ["loan-cli-2b", "loan-cli-2"]);
    let first = live
        .json(VIEWER, &["list", "--newest-first", "--limit", "1"])
        .await;
    assert_eq!(ids(&first), ["loan-cli-2b"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let rest = live
        .json(VIEWER, &["list", "--newest-first", "--after", cursor])
        .await;
    assert_eq!([ids(&first), ids(&rest)].concat(), oldest);

    let cancelled = live
        .json(OPERATOR, &["cancel", "loan-cli-2", "--reason", "withdrawn"])
        .await;
    assert_eq!(
        cancelled,
        serde_json::json!({"workflow_id": "loan-cli-2", "run": run})
    );
    let done = eventually(&live, VIEWER, &["describe", "loan-cli-2"], |v| {
        v["status"] != "running"
    })
    .await;
    assert_eq!(done["status"], "cancelled", "{done}");
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_exit_codes() {
    let live = Live::new().await;
    let input = application("loan-cli-3");
    live.ok(OPERATOR, &["start", "loan-approval", "loan-cli-3", &input])
        .await;

    let again = live
        .run(
            Some(OPERATOR),
            &["start", "loan-approval", "loan-cli-3", &input],
        )
        .await;
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("already_running"), "{}", again.stderr);
    let attached = live
        .ok(
            OPERATOR,
            &[
                "start",
                "loan-approval",
                "loan-cli-3",
                &input,
                "--on-conflict",
                "attach-to-open",
            ],
        )
        .await;
    assert!(attached.contains("nothing started"), "{attached}");

    let unknown = live
        .run(Some(OPERATOR), &["describe", "no-such-loan"])
        .await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(unknown.stderr.contains("not_found"), "{}", unknown.stderr);

    let wrong = live.run(Some("not-a-token"), &["list"]).await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(
        wrong.stderr.contains("does not know this access token"),
        "{}",
        wrong.stderr
    );
    let missing = live.run(None, &["list"]).await;
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(
        missing.stderr.contains("REFRAIN_TOKEN"),
        "{}",
        missing.stderr
    );

    let low = live
        .run(Some(VIEWER), &["terminate", "loan-cli-3", "--reason", "x"])
        .await;
    assert_eq!(low.code, 2, "{low:?}");
    assert!(low.stderr.contains("not allowed"), "{}", low.stderr);
    let still = live.json(VIEWER, &["describe", "loan-cli-3"]).await;
    assert_eq!(
        still["status"], "running",
        "a refused command wrote nothing"
    );

    let bad_json = live
        .run(
            Some(OPERATOR),
            &["signal", "loan-cli-3", "nudge", "{not json"],
        )
        .await;
    assert_eq!(bad_json.code, 1, "{bad_json:?}");
    assert!(bad_json.stderr.contains("not JSON"), "{}", bad_json.stderr);

    let named = live
        .run(
            Some(OPERATOR),
            &["signal", "loan-cli-3", "nudge", "{}", "--sender", "x"],
        )
        .await;
    assert_eq!(named.code, 2, "{named:?}");
    assert!(
        named.stderr.contains("identity of the access token"),
        "{}",
        named.stderr
    );

    let verify = live.run(Some(OPERATOR), &["verify"]).await;
    assert_eq!(verify.code, 2);
    assert!(verify.stderr.contains("--db"), "{}", verify.stderr);

    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let args = ["refrain", "--server", url.as_str(), "list"].map(str::to_owned);
    let nobody =
        tokio::task::spawn_blocking(move || run_captured(Replayer::new(), args, Some(OPERATOR)))
            .await
            .expect("thread");
    assert_eq!(nobody.code, 2, "{nobody:?}");
    assert!(
        nobody.stderr.contains("cannot connect"),
        "{}",
        nobody.stderr
    );
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_list_pause_resume_trigger() {
    let live = Live::new().await;
    let input = serde_json::json!({
        "application_id": "nightly", "applicant": "ada",
        "email": "ada@example.com", "amount_eur": 100
    });
    live.h
        .client
        .history_store()
        .create_schedule(ScheduleSpec::new(
            "nightly-loans",
            "loan-approval",
            Payload::from_bytes(input.to_string().into_bytes()),
            Trigger::Every(Duration::from_secs(86_400)),
        ))
        .await
        .expect("schedule created");

    let list = live.ok(VIEWER, &["schedules"]).await;
    assert!(
        list.lines().any(|l| l.starts_with("nightly-loans ")),
        "{list}"
    );
    let paused = live
        .json(OPERATOR, &["schedules", "pause", "nightly-loans"])
        .await;
    assert_eq!(paused["paused"], true, "{paused}");
    let described = live
        .json(VIEWER, &["schedules", "describe", "nightly-loans"])
        .await;
    assert_eq!(described["paused"], true, "{described}");
    let resumed = live
        .json(OPERATOR, &["schedules", "resume", "nightly-loans"])
        .await;
    assert_eq!(resumed["paused"], false, "{resumed}");

    let unknown = live
        .run(
            Some(OPERATOR),
            &["schedules", "trigger", "no-such-schedule"],
        )
        .await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(unknown.stderr.contains("not_found"), "{}", unknown.stderr);
    let low = live
        .run(Some(VIEWER), &["schedules", "pause", "nightly-loans"])
        .await;
    assert_eq!(low.code, 2, "{low:?}");
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_the_history_file() {
    let live = Live::new().await;
    let input = application("loan-cli-5");
    live.ok(OPERATOR, &["start", "loan-approval", "loan-cli-5", &input])
        .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("loan-cli-5.json");
    let file_arg = file.to_str().expect("utf-8 path");
    let said = live
        .ok(VIEWER, &["export", "loan-cli-5", "--out", file_arg])
        .await;
    assert!(said.starts_with("exported "), "{said}");
    let export = HistoryExport::read_file(&file).expect("a history file");
    assert_eq!(export.workflow_id.as_str(), "loan-cli-5");
    assert_eq!(export.workflow_type, "loan-approval");
    assert!(!export.events.is_empty());
    live.stop().await;
}

/// The keys of a JSON object.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_answers_json_in_the_servers_shapes() {
    let live = Live::new().await;
    let spec = || {
        ScheduleSpec::new(
            "weekly",
            "loan-approval",
            Payload::from_bytes(br#"{"applicant":"ada"}"#.to_vec()),
            Trigger::Every(Duration::from_secs(7 * 86_400)),
        )
    };
    live.h
        .client
        .history_store()
        .create_schedule(spec())
        .await
        .expect("schedule");
    let input = application("shape-1");
    live.ok(OPERATOR, &["start", "loan-approval", "shape-1", &input])
        .await;

    // A store of our own, with the same schedule, let go before the
    // command line opens it.
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    {
        let store = refrain::Store::open(&db, refrain::StoreConfig::default()).expect("store");
        let seam: std::sync::Arc<dyn refrain::HistoryStore> = store.clone().into();
        seam.create_schedule(spec()).await.expect("schedule");
        drop(seam);
        store.durable().await.expect("durable");
    }
    let db_arg = db.to_str().expect("utf-8 path").to_owned();
    let local = |args: Vec<&str>| {
        let mut all = vec!["refrain", "--db", &db_arg, "--json"];
        all.extend(args);
        let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
        async move {
            let c = tokio::task::spawn_blocking(move || run_captured(Replayer::new(), all, None))
                .await
                .expect("thread");
            assert_eq!(c.code, 0, "{c:?}");
            serde_json::from_str::<Value>(&c.stdout).expect("JSON")
        }
    };
    let started = local(vec!["start", "loan-approval", "shape-1", &input]).await;
    let remote_started = serde_json::json!({"workflow_id": "shape-1", "run": 1, "started": true});
    assert_eq!(keys(&started), keys(&remote_started));

    let here = local(vec!["schedules", "describe", "weekly"]).await;
    let there = live
        .json(VIEWER, &["schedules", "describe", "weekly"])
        .await;
    assert_eq!(keys(&here), keys(&there));
    for same in [
        "id",
        "workflow_type",
        "input",
        "trigger",
        "overlap",
        "catchup_window_ms",
    ] {
        assert_eq!(here[same], there[same], "{same}");
    }

    let here = local(vec!["describe", "shape-1"]).await;
    let there = live.json(VIEWER, &["describe", "shape-1"]).await;
    assert_eq!(keys(&here), keys(&there));
    assert_eq!(here["workflow_type"], there["workflow_type"]);

    let here = local(vec!["list"]).await;
    let there = live.json(VIEWER, &["list"]).await;
    assert_eq!(keys(&here), keys(&there));
    assert_eq!(keys(&here["runs"][0]), keys(&there["runs"][0]));

    let here = local(vec!["schedules", "trigger", "weekly"]).await;
    let there = live
        .json(OPERATOR, &["schedules", "trigger", "weekly"])
        .await;
    assert_eq!(keys(&here), keys(&there));
    assert_eq!(here["outcome"], "started", "{here}");
    let fired = local(vec!["list", "--id-prefix", "weekly@"]).await;
    assert_eq!(fired["runs"].as_array().map(Vec::len), Some(1), "{fired}");
    assert_eq!(fired["runs"][0]["workflow_id"], here["workflow_id"]);
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_and_decide_on_the_store_of_a_stopped_application() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    {
        // The application runs until the loan waits for its underwriter.
        let store = refrain::Store::open(&db, refrain::StoreConfig::default()).expect("store");
        let builder = refrain_worker::Worker::builder(store.clone());
        let builder = refrain_examples::loan_approval::register(builder);
        let worker = builder.start();
        let client = worker.client();
        let input = application("loan-local-1");
        client
            .start_payload(
                "loan-approval",
                "loan-local-1",
                Payload::from_bytes(input.into_bytes()),
                refrain::StartOptions::default(),
            )
            .await
            .expect("started");
        let seam = client.history_store().clone();
        let mut waited = 0;
        while seam
            .list_human_tasks("underwriter-1")
            .await
            .expect("tasks")
            .is_empty()
        {
            waited += 1;
            assert!(waited < 400, "the loan never asked its underwriter");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop((seam, client));
        worker.shutdown(Duration::from_secs(5)).await;
        store.durable().await.expect("durable");
    }
    let db_arg = db.to_str().expect("utf-8 path").to_owned();
    let local = |args: Vec<&str>| {
        let mut all = vec!["refrain", "--db", &db_arg];
        all.extend(args);
        let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
        async move {
            tokio::task::spawn_blocking(move || run_captured(Replayer::new(), all, None))
                .await
                .expect("thread")
        }
    };
    let tasks = local(vec!["--json", "tasks", "--assignee", "underwriter-1"]).await;
    assert_eq!(tasks.code, 0, "{tasks:?}");
    let tasks: Value = serde_json::from_str(&tasks.stdout).expect("JSON");
    assert_eq!(tasks["tasks"][0]["workflow_id"], "loan-local-1", "{tasks}");
    let id = tasks["tasks"][0]["id"].as_str().expect("id").to_owned();

    let anonymous = local(vec!["decide", &id, "\"Approve\""]).await;
    assert_eq!(anonymous.code, 2, "{anonymous:?}");
    assert!(
        anonymous.stderr.contains("--as NAME"),
        "{}",
        anonymous.stderr
    );
    let whose = local(vec!["tasks"]).await;
    assert_eq!(whose.code, 2, "{whose:?}");

    let decided = local(vec![
        "--json",
        "decide",
        &id,
        "\"Approve\"",
        "--as",
        "underwriter-1",
        "--comment",
        "decided offline",
    ])
    .await;
    assert_eq!(decided.code, 0, "{decided:?}");
    let decided: Value = serde_json::from_str(&decided.stdout).expect("JSON");
    assert_eq!(decided["task"], "underwriting-review", "{decided}");
    assert_eq!(decided["decided_by"], "underwriter-1");
    // Recorded, waiting for the application's next activation (this
    // command line runs no workflow code).
    let described = local(vec!["describe", "loan-local-1"]).await;
    assert!(
        described
            .stdout
            .contains("event(s) waiting for the next activation"),
        "{}",
        described.stdout
    );
    let open = local(vec!["--json", "tasks", "--assignee", "underwriter-1"]).await;
    assert!(open.stdout.contains("\"tasks\": []"), "{}", open.stdout);
    let again = local(vec!["decide", &id, "\"Reject\"", "--as", "underwriter-1"]).await;
    assert_eq!(again.code, 1, "a task is decided once: {again:?}");
}
