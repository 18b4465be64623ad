//! Human tasks through a real worker and store: escalation with reminders
//! and notices, the audit trail, fallbacks, task lists, and a decision
//! made after a restart. Durations are short; nothing asserts on timing.

use refrain::history_file::HistoryExport;
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, ActivityOptions, Client, ClientError,
    Event, HumanTaskNotice, HumanTaskRef, NoticeKind, RetryPolicy, Store, StoreConfig, Workflow,
    WorkflowContext, WorkflowError,
};
use refrain_worker::{Replayer, Worker};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Verdict {
    Approve,
    Reject,
}

/// What the workflow asks: who, for how long each, how often to remind.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Ask {
    chain: Vec<(String, u64)>,
    remind_ms: Option<u64>,
    fallback: Option<Verdict>,
    notify: bool,
}

/// What came of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Outcome {
    verdict: Option<Verdict>,
    decided_by: String,
    comment: Option<String>,
    level: u32,
    fallback: bool,
    failure: Option<String>,
}

#[derive(Serialize)]
struct Application {
    applicant: &'static str,
    amount: u64,
}

struct Underwrite;
impl Workflow for Underwrite {
    const NAME: &'static str = "underwrite";
    type Input = Ask;
    type Output = Outcome;
    async fn run(ctx: WorkflowContext, ask: Ask) -> Result<Outcome, WorkflowError> {
        let ms = Duration::from_millis;
        let (first, first_ms) = ask.chain[0].clone();
        let mut call = ctx
            .human_task::<Verdict>("underwriting-review")
            .assignee(first)
            .form(&Application {
                applicant: "Ada",
                amount: 25_000,
            })
            .deadline(ms(first_ms))
            .escalate_to(ask.chain[1..].iter().map(|(a, d)| (a.clone(), ms(*d))));
        if let Some(r) = ask.remind_ms {
            call = call.remind_every(ms(r));
        }
        if let Some(f) = ask.fallback {
            call = call.fallback(f);
        }
        if ask.notify {
            call = call
                .notify_with::<NotifyPerson>()
                .notify_options(ActivityOptions {
                    start_to_close: Some(Duration::from_secs(5)),
                    schedule_to_close: None,
                    heartbeat_timeout: None,
                    retry: RetryPolicy::exponential().max_attempts(3),
                });
        }
        Ok(match call.await {
            Ok(d) => Outcome {
                verdict: Some(d.value),
                decided_by: d.decided_by,
                comment: d.comment,
                level: d.assignee_level,
                fallback: d.fallback,
                failure: None,
            },
            Err(e) => Outcome {
                verdict: None,
                decided_by: String::new(),
                comment: None,
                level: 0,
                fallback: false,
                failure: Some(e.failure.kind),
            },
        })
    }
}

/// Records every notice it is asked to send.
#[derive(Clone, Default)]
struct NotifyPerson {
    sent: Arc<Mutex<Vec<HumanTaskNotice>>>,
}

#[async_trait]
impl Activity for NotifyPerson {
    const NAME: &'static str = "notify-person";
    type Input = HumanTaskNotice;
    type Output = ();
    async fn run(&self, _: ActivityContext, notice: HumanTaskNotice) -> Result<(), ActivityError> {
        self.sent.lock().unwrap().push(notice);
        Ok(())
    }
}

fn config() -> StoreConfig {
    StoreConfig {
        lock_timeout: Duration::from_secs(10),
        ..StoreConfig::default()
    }
}

fn worker(store: &Store, notify: &NotifyPerson, cache_size: usize) -> Worker {
    Worker::builder(store.clone())
        .workflow::<Underwrite>()
        .activity(notify.clone())
        .cache_size(cache_size)
        .start()
}

fn ask(chain: &[(&str, u64)]) -> Ask {
    Ask {
        chain: chain.iter().map(|(a, d)| ((*a).to_owned(), *d)).collect(),
        remind_ms: None,
        fallback: None,
        notify: false,
    }
}

/// Polls `f` until it returns `Some` (at most 30 s: a hang, not a timing
/// assertion).
async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never happened: {what}"))
}

async fn result(client: &Client, id: &str) -> Outcome {
    let h = client.handle::<Underwrite>(id).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), h.result())
        .await
        .expect("workflow finished")
        .expect("workflow succeeded")
}

/// The run replays through the current code without divergence.
async fn assert_replays(store: &Store, id: &str) {
    let export = HistoryExport::from_store(store, &id.into()).await.unwrap();
    Replayer::new()
        .workflow::<Underwrite>()
        .replay(&export)
        .unwrap_or_else(|e| panic!("{id} does not replay: {e}"));
}

/// The notice a history event implies, as (level, kind, assignee).
fn notice_key(n: &HumanTaskNotice) -> (u32, String, String) {
    let kind = match &n.kind {
        NoticeKind::Assigned => "assigned".to_owned(),
        NoticeKind::Reminder { number } => format!("reminder {number}"),
        NoticeKind::Escalated { from } => format!("escalated from {from}"),
    };
    (n.level, kind, n.assignee.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalates_twice_with_reminders_and_the_third_assignee_decides() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    let notify = NotifyPerson::default();
    // Cache size 0: every activation replays the history first, so this
    // also checks that the whole loop is deterministic.
    let w = worker(&store, &notify, 0);
    let client = Client::new(store.clone());
    let mut a = ask(&[("alice", 900), ("bob", 900), ("carol", 60_000)]);
    a.remind_ms = Some(400);
    a.notify = true;
    client.start::<Underwrite>("loan-1", a).await.unwrap();

    // Carol has it, and has been told.
    eventually("escalation to carol was notified", async || {
        notify
            .sent
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.assignee == "carol" && matches!(n.kind, NoticeKind::Escalated { .. }))
            .then_some(())
    })
    .await;
    assert!(client.list_human_tasks("alice").await.unwrap().is_empty());
    assert!(client.list_human_tasks("bob").await.unwrap().is_empty());
    let listed = client.list_human_tasks("carol").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].level, 2);
    assert_eq!(listed[0].task, "underwriting-review");

    client
        .decide_human_task(
            &HumanTaskRef::named("loan-1", "underwriting-review"),
            &Verdict::Approve,
            "carol",
            Some("income verified with the employer"),
        )
        .await
        .unwrap();
    let out = result(&client, "loan-1").await;
    assert_eq!(
        out,
        Outcome {
            verdict: Some(Verdict::Approve),
            decided_by: "carol".into(),
            comment: Some("income verified with the employer".into()),
            level: 2,
            fallback: false,
            failure: None,
        }
    );
    assert!(client.list_human_tasks("carol").await.unwrap().is_empty());

    // The audit trail, exactly.
    let history = client.history("loan-1").await.unwrap();
    let trail: Vec<String> = history
        .iter()
        .filter_map(|e| match e {
            Event::HumanTaskAssigned {
                task,
                assignee,
                level,
                form,
                ..
            } => Some(format!(
                "assigned {task} to {assignee} at level {level} with {form:?}"
            )),
            Event::HumanTaskEscalated {
                from, to, level, ..
            } => Some(format!("escalated from {from} to {to} at level {level}")),
            Event::HumanTaskDecided {
                decision,
                decided_by,
                comment,
                ..
            } => Some(format!(
                "decided {decision:?} by {decided_by}: {}",
                comment.as_deref().unwrap_or("-")
            )),
            Event::HumanTaskClosed { reason, .. } => Some(format!("closed: {reason}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        trail,
        [
            r#"assigned underwriting-review to alice at level 0 with Some({"applicant":"Ada","amount":25000})"#,
            "escalated from alice to bob at level 1",
            "escalated from bob to carol at level 2",
            r#"decided "Approve" by carol: income verified with the employer"#,
        ]
    );

    // Reminders: one per interval before each deadline (400 and 800 ms of
    // 900), to whoever had the task then.
    let mut reminded: Vec<Vec<String>> = vec![Vec::new()];
    for e in &history {
        match e {
            Event::HumanTaskEscalated { .. } => reminded.push(Vec::new()),
            Event::HumanTaskReminded { assignee, .. } => {
                reminded.last_mut().unwrap().push(assignee.clone())
            }
            _ => {}
        }
    }
    assert_eq!(reminded[0], ["alice", "alice"]);
    assert_eq!(reminded[1], ["bob", "bob"]);
    assert!(reminded[2].iter().all(|a| a == "carol"));

    // A notice for the assignment, each reminder and each escalation, up
    // to the one that told carol (later reminders to carol may have been
    // cancelled by her decision).
    let mut expected = vec![(0, "assigned".to_owned(), "alice".to_owned())];
    for (level, (who, from)) in [("alice", ""), ("bob", "alice"), ("carol", "bob")]
        .into_iter()
        .enumerate()
    {
        if level > 0 {
            expected.push((level as u32, format!("escalated from {from}"), who.into()));
        }
        if level < 2 {
            for n in 1..=2 {
                expected.push((level as u32, format!("reminder {n}"), who.into()));
            }
        }
    }
    let mut sent: Vec<_> = notify.sent.lock().unwrap().iter().map(notice_key).collect();
    sent.sort();
    sent.dedup(); // an attempt retried after a crash would repeat one
    let sent_until_carol: Vec<_> = sent
        .iter()
        .filter(|(level, kind, _)| *level < 2 || kind.starts_with("escalated"))
        .cloned()
        .collect();
    expected.sort();
    assert_eq!(sent_until_carol, expected);
    let form = notify.sent.lock().unwrap()[0].form.clone();
    assert_eq!(
        form,
        Some(serde_json::json!({"applicant": "Ada", "amount": 25000}))
    );
    // Each notice is its own activity, completed in the history.
    let notices_scheduled = history
        .iter()
        .filter(|e| matches!(e, Event::ActivityScheduled { activity_type, .. } if activity_type == NotifyPerson::NAME))
        .count();
    assert_eq!(
        notices_scheduled,
        1 + 2 + reminded.iter().map(Vec::len).sum::<usize>()
    );

    assert_replays(&store, "loan-1").await;
    w.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_answers_and_the_fallback_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    let w = worker(&store, &NotifyPerson::default(), 100);
    let client = Client::new(store.clone());
    let mut a = ask(&[("ann", 150), ("ben", 150)]);
    a.fallback = Some(Verdict::Reject);
    client.start::<Underwrite>("loan-2", a).await.unwrap();
    let out = result(&client, "loan-2").await;
    assert_eq!(
        out,
        Outcome {
            verdict: Some(Verdict::Reject),
            decided_by: "fallback".into(),
            comment: None,
            level: 1,
            fallback: true,
            failure: None,
        }
    );
    let history = client.history("loan-2").await.unwrap();
    let closed: Vec<_> = history
        .iter()
        .filter_map(|e| match e {
            Event::HumanTaskClosed { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(closed, ["nobody answered (asked ann, ben); fallback used"]);
    assert!(!history
        .iter()
        .any(|e| matches!(e, Event::HumanTaskDecided { .. })));
    assert!(client.list_human_tasks("ann").await.unwrap().is_empty());
    assert!(client.list_human_tasks("ben").await.unwrap().is_empty());

    // Too late: the decision is refused and nothing is written.
    let len = history.len();
    let late = client
        .decide_human_task(
            &HumanTaskRef::named("loan-2", "underwriting-review"),
            &Verdict::Approve,
            "ben",
            None,
        )
        .await;
    match late {
        Err(ClientError::HumanTaskClosed { why, .. }) => assert_eq!(
            why,
            "closed: nobody answered (asked ann, ben); fallback used"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(client.history("loan-2").await.unwrap().len(), len);
    assert_replays(&store, "loan-2").await;
    w.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fallback_an_unanswered_task_fails_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    let w = worker(&store, &NotifyPerson::default(), 100);
    let client = Client::new(store.clone());
    client
        .start::<Underwrite>("loan-3", ask(&[("ann", 100)]))
        .await
        .unwrap();
    let out = result(&client, "loan-3").await;
    assert_eq!(out.failure.as_deref(), Some("human-task-unanswered"));
    assert!(client.history("loan-3").await.unwrap().iter().any(|e| matches!(
        e,
        Event::HumanTaskClosed { reason, .. } if reason == "nobody answered (asked ann); the task failed"
    )));
    w.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_listed_under_its_current_assignee_and_decided_by_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    let w = worker(&store, &NotifyPerson::default(), 100);
    let client = Client::new(store.clone());
    client
        .start::<Underwrite>("loan-4", ask(&[("dora", 60_000), ("ed", 60_000)]))
        .await
        .unwrap();
    let task = eventually("dora's task is listed", async || {
        client.list_human_tasks("dora").await.unwrap().pop()
    })
    .await;
    assert_eq!(task.workflow_id.as_str(), "loan-4");
    assert_eq!(task.assignee, "dora");
    assert_eq!(task.level, 0);
    assert!(task.deadline.is_some());
    let form: serde_json::Value = task.form().unwrap().unwrap();
    assert_eq!(form["amount"], 25000);
    assert!(client.list_human_tasks("ed").await.unwrap().is_empty());
    assert!(client.list_human_tasks("dor").await.unwrap().is_empty());
    assert_eq!(
        client.human_tasks_of("loan-4").await.unwrap(),
        vec![task.clone()]
    );

    let wrong = HumanTaskRef::Exact {
        workflow_id: "loan-other".into(),
        run: task.run,
        cmd: task.cmd,
    };
    assert!(matches!(
        client
            .decide_human_task(&wrong, &Verdict::Approve, "dora", None)
            .await,
        Err(ClientError::HumanTaskNotFound { .. })
    ));
    client
        .decide_human_task(
            &task.reference(),
            &Verdict::Reject,
            "dora",
            Some("too risky"),
        )
        .await
        .unwrap();
    let out = result(&client, "loan-4").await;
    assert_eq!(out.verdict, Some(Verdict::Reject));
    assert_eq!(out.decided_by, "dora");
    assert_eq!(out.level, 0);
    assert!(client.list_human_tasks("dora").await.unwrap().is_empty());
    // A second decision is refused: a task is decided at most once.
    let again = client
        .decide_human_task(&task.reference(), &Verdict::Approve, "ed", None)
        .await;
    assert!(
        matches!(&again, Err(ClientError::HumanTaskClosed { why, .. }) if why == "decided by dora"),
        "{again:?}"
    );
    assert!(matches!(
        client
            .decide_human_task(
                &HumanTaskRef::named("loan-4", "no-such-task"),
                &Verdict::Approve,
                "ed",
                None
            )
            .await,
        Err(ClientError::HumanTaskNotFound { .. })
    ));
    w.shutdown(Duration::from_secs(5)).await;
}

async fn shut_down(w: Worker, store: Store, client: Client) {
    w.shutdown(Duration::from_secs(5)).await;
    drop(client);
    drop(store);
}

fn reopen(dir: &Path) -> Store {
    Store::open(dir, config()).expect("reopen the store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_decided_after_a_restart_completes_the_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifyPerson::default();
    {
        let store = Store::open(dir.path(), config()).unwrap();
        let w = worker(&store, &notify, 100);
        let client = Client::new(store.clone());
        client
            .start::<Underwrite>("loan-5", ask(&[("fay", 120_000)]))
            .await
            .unwrap();
        eventually("fay's task is listed", async || {
            client.list_human_tasks("fay").await.unwrap().pop()
        })
        .await;
        shut_down(w, store, client).await;
    }

    // A new process: the task is still on fay's list; she decides while
    // no worker runs, and a worker started afterwards carries on.
    let store = reopen(dir.path());
    let client = Client::new(store.clone());
    let listed = client.list_human_tasks("fay").await.unwrap();
    assert_eq!(listed.len(), 1);
    client
        .decide_human_task(
            &listed[0].reference(),
            &Verdict::Approve,
            "fay",
            Some("after the restart"),
        )
        .await
        .unwrap();
    let w = worker(&store, &notify, 100);
    let out = result(&client, "loan-5").await;
    assert_eq!(out.verdict, Some(Verdict::Approve));
    assert_eq!(out.comment.as_deref(), Some("after the restart"));
    assert_replays(&store, "loan-5").await;
    w.shutdown(Duration::from_secs(5)).await;
}
