//! Incident response: an alert opens a ticket, the on-call engineer must
//! acknowledge it within a deadline (a human task with reminders and
//! escalation to the next tier), the chosen runbook runs as an activity,
//! and the ticket closes with a status update to whoever reported it.
//!
//! The story: at 03:12 the checkout service starts failing. The tier-1
//! on-call engineer is paged, reminded twice, and does not acknowledge
//! within the deadline (1.5 s here, 5 minutes in real life); the page
//! escalates to tier 2, who sees it in their queue and acknowledges with
//! the runbook to run. The runbook's first attempt times out on SSH and is
//! retried by the store; the ticket is resolved and the reporter told. If
//! nobody acknowledges at all (`--nobody-acknowledges`), the safe default
//! runbook runs by itself once tier 2's deadline (30 s) has passed too.
//!
//! The deadlines and the paging interval are the example's
//! ([`TIER1_DEADLINE`], [`TIER2_DEADLINE`], [`PAGE_EVERY`]); tests run the
//! same workflow, fallback included, in a fraction of a second on the
//! virtual clock of `refrain-testkit`, which skips the waits.
//!
//! ```text
//! cargo run --release --example incident_response
//! cargo run --release --example incident_response -- --db /tmp/inc   # kill -9 it, rerun: it resumes
//! cargo run --release --example incident_response -- cli --db /tmp/inc history incident-4711
//! ```

use crate::{activity_says, narrate, print_history, start_or_resume, Begun};
use anyhow::Result;
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, ActivityOptions, Client, ClientError,
    Event, Failure, HumanTaskNotice, NoticeKind, RetryPolicy, Store, Workflow, WorkflowContext,
    WorkflowError,
};
use refrain_worker::{Replayer, Worker, WorkerBuilder};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

// ----- the business data -----

/// What the monitoring system sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    /// The monitoring system's reference, e.g. `alert-4711`.
    pub alert_id: String,
    /// The failing service.
    pub service: String,
    /// What is wrong.
    pub summary: String,
    /// How bad, e.g. `SEV-2`.
    pub severity: String,
    /// Who (or what) raised it: gets the status updates.
    pub reporter: String,
}

/// How long tier 1 has to acknowledge (5 minutes in real life).
pub const TIER1_DEADLINE: Duration = Duration::from_millis(1_500);
/// How long tier 2 has once the page escalates to them.
pub const TIER2_DEADLINE: Duration = Duration::from_secs(30);
/// Pages repeat at this interval until acknowledged.
pub const PAGE_EVERY: Duration = Duration::from_millis(600);

/// The ticket the incident is tracked in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ticket {
    /// The ticket's reference, e.g. `INC-4711`.
    pub ticket_id: String,
    /// The failing service.
    pub service: String,
}

/// What the on-call engineer sees when paged: the human task's form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AckForm {
    /// The incident's ticket.
    pub ticket_id: String,
    /// The failing service.
    pub service: String,
    /// What is wrong.
    pub summary: String,
    /// How bad.
    pub severity: String,
    /// The runbook the workflow suggests.
    pub suggested_runbook: String,
}

/// The acknowledgement: the engineer takes the incident and picks the
/// runbook to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ack {
    /// The runbook to run.
    pub runbook: String,
}

/// A runbook to run against a service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunbookRun {
    /// For which incident.
    pub ticket_id: String,
    /// Against which service.
    pub service: String,
    /// Which runbook.
    pub runbook: String,
}

/// A status update to whoever reported the incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// For which incident.
    pub ticket_id: String,
    /// To whom.
    pub to: String,
    /// What they are told.
    pub text: String,
}

/// How a ticket is closed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resolution {
    /// The ticket.
    pub ticket: Ticket,
    /// What fixed it.
    pub resolution: String,
}

/// How the incident ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncidentReport {
    /// The incident's ticket.
    pub ticket_id: String,
    /// Who acknowledged, or `nobody (automatic)`.
    pub acknowledged_by: String,
    /// Escalation level the page was at when acknowledged: 0 for tier 1.
    pub escalation_level: u32,
    /// The runbook that ran.
    pub runbook: String,
    /// What came of it.
    pub outcome: String,
}

// ----- who is on call -----

/// The tier-1 on-call engineer, paged first.
pub const TIER1: &str = "ana@oncall-tier1";
/// The tier-2 on-call engineer, paged when tier 1 does not acknowledge.
pub const TIER2: &str = "ben@oncall-tier2";
/// Who [`IncidentReport::acknowledged_by`] names when nobody acknowledged.
pub const NOBODY: &str = "nobody (automatic)";
/// Runs when nobody acknowledges: safe to run unattended.
pub const SAFE_RUNBOOK: &str = "restart-unhealthy-pods";

// ----- activities: the outside world -----

async fn remote_call() {
    tokio::time::sleep(Duration::from_millis(40)).await;
}

/// Opens the incident's ticket.
#[derive(Debug, Clone, Copy)]
pub struct OpenTicket;

#[async_trait]
impl Activity for OpenTicket {
    const NAME: &'static str = "open-ticket";
    type Input = Alert;
    type Output = Ticket;
    async fn run(&self, ctx: ActivityContext, alert: Alert) -> Result<Ticket, ActivityError> {
        remote_call().await;
        let ticket = Ticket {
            ticket_id: format!("INC-{}", alert.alert_id.trim_start_matches("alert-")),
            service: alert.service.clone(),
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{} opened ({}, {}): {}",
                ticket.ticket_id, alert.severity, alert.service, alert.summary
            ),
        );
        Ok(ticket)
    }
}

/// The paging system: every notice of the acknowledgement task.
#[derive(Debug, Clone, Copy)]
pub struct PageOnCall;

#[async_trait]
impl Activity for PageOnCall {
    const NAME: &'static str = "page-oncall";
    type Input = HumanTaskNotice;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, n: HumanTaskNotice) -> Result<(), ActivityError> {
        remote_call().await;
        let form: Option<AckForm> = n.form.and_then(|f| serde_json::from_value(f).ok());
        let what = form.map_or_else(String::new, |f| {
            format!(" {} {}: {}", f.ticket_id, f.service, f.summary)
        });
        let text = match n.kind {
            NoticeKind::Assigned => format!("PAGE {}{what}; acknowledge now", n.assignee),
            NoticeKind::Reminder { number } => {
                format!(
                    "page #{} to {} (not acknowledged yet)",
                    number + 1,
                    n.assignee
                )
            }
            NoticeKind::Escalated { from } => format!(
                "ESCALATED to {}{what}; {from} did not acknowledge in time",
                n.assignee
            ),
        };
        activity_says(&ctx, Self::NAME, text);
        Ok(())
    }
}

/// Runs a runbook against the service. The first attempt's SSH session
/// times out; the retry goes through.
#[derive(Debug, Clone, Copy)]
pub struct RunRunbook;

#[async_trait]
impl Activity for RunRunbook {
    const NAME: &'static str = "run-runbook";
    type Input = RunbookRun;
    type Output = String;
    async fn run(&self, ctx: ActivityContext, run: RunbookRun) -> Result<String, ActivityError> {
        remote_call().await;
        if ctx.attempt() == 1 {
            activity_says(
                &ctx,
                Self::NAME,
                format!("{}: ssh to bastion timed out", run.runbook),
            );
            return Err(ActivityError::retryable("ssh: connection timed out").with_kind("ssh"));
        }
        let output = format!(
            "{} on {}: 3 of 12 pods restarted, error rate back under 0.1%",
            run.runbook, run.service
        );
        activity_says(&ctx, Self::NAME, &output);
        Ok(output)
    }
}

/// Posts a status update to whoever reported the incident.
#[derive(Debug, Clone, Copy)]
pub struct PostStatusUpdate;

#[async_trait]
impl Activity for PostStatusUpdate {
    const NAME: &'static str = "post-status-update";
    type Input = StatusUpdate;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, u: StatusUpdate) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(
            &ctx,
            Self::NAME,
            format!("{} -> {}: \"{}\"", u.ticket_id, u.to, u.text),
        );
        Ok(())
    }
}

/// Closes the ticket as resolved.
#[derive(Debug, Clone, Copy)]
pub struct CloseTicket;

#[async_trait]
impl Activity for CloseTicket {
    const NAME: &'static str = "close-ticket";
    type Input = Resolution;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, r: Resolution) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(
            &ctx,
            Self::NAME,
            format!("{} resolved: {}", r.ticket.ticket_id, r.resolution),
        );
        Ok(())
    }
}

// ----- the workflow -----

/// Each attempt takes milliseconds; the short bound matters after a crash,
/// when an attempt that was running is retried once it has passed.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);

fn step_retry() -> RetryPolicy {
    RetryPolicy::exponential()
        .initial_interval(Duration::from_millis(200))
        .max_attempts(5)
}

/// The incident-response workflow: ticket, acknowledgement (with
/// reminders, escalation and a safe fallback), runbook, resolution and
/// status updates.
#[derive(Debug, Clone, Copy)]
pub struct IncidentResponse;

#[refrain::deterministic]
impl Workflow for IncidentResponse {
    const NAME: &'static str = "incident-response";
    type Input = Alert;
    type Output = IncidentReport;

    async fn run(ctx: WorkflowContext, alert: Alert) -> Result<IncidentReport, WorkflowError> {
        narrate(
            &ctx,
            format!(
                "{} alert on {}: {}",
                alert.severity, alert.service, alert.summary
            ),
        );
        let ticket = ctx
            .activity::<OpenTicket>(alert.clone())
            .start_to_close(STEP_TIMEOUT)
            .retry(step_retry())
            .await?;

        narrate(
            &ctx,
            format!(
                "paging {TIER1}: acknowledge within {:?}, else {TIER2} gets it",
                TIER1_DEADLINE
            ),
        );
        let ack = ctx
            .human_task::<Ack>("acknowledge-incident")
            .assignee(TIER1)
            .form(&AckForm {
                ticket_id: ticket.ticket_id.clone(),
                service: alert.service.clone(),
                summary: alert.summary.clone(),
                severity: alert.severity.clone(),
                suggested_runbook: SAFE_RUNBOOK.into(),
            })
            .deadline(TIER1_DEADLINE)
            .remind_every(PAGE_EVERY)
            .escalate_to([(TIER2, TIER2_DEADLINE)])
            .notify_with::<PageOnCall>()
            .notify_options(ActivityOptions {
                start_to_close: Some(STEP_TIMEOUT),
                schedule_to_close: Some(Duration::from_secs(30)),
                heartbeat_timeout: None,
                retry: step_retry(),
            })
            .fallback(Ack {
                runbook: SAFE_RUNBOOK.into(),
            })
            .await?;
        let acknowledged_by = if ack.fallback {
            narrate(
                &ctx,
                format!("nobody acknowledged: running the safe default {SAFE_RUNBOOK}"),
            );
            NOBODY.to_owned()
        } else {
            narrate(
                &ctx,
                format!(
                    "acknowledged by {} (escalation level {}): \"{}\"",
                    ack.decided_by,
                    ack.assignee_level,
                    ack.comment.as_deref().unwrap_or("")
                ),
            );
            ack.decided_by.clone()
        };
        ctx.activity::<PostStatusUpdate>(StatusUpdate {
            ticket_id: ticket.ticket_id.clone(),
            to: alert.reporter.clone(),
            text: format!(
                "acknowledged by {acknowledged_by}; running {}",
                ack.value.runbook
            ),
        })
        .start_to_close(STEP_TIMEOUT)
        .retry(step_retry())
        .await?;

        let remediation = ctx
            .activity::<RunRunbook>(RunbookRun {
                ticket_id: ticket.ticket_id.clone(),
                service: alert.service.clone(),
                runbook: ack.value.runbook.clone(),
            })
            .start_to_close(STEP_TIMEOUT)
            .retry(step_retry().initial_interval(Duration::from_millis(300)))
            .await;
        let outcome = match remediation {
            Ok(output) => {
                ctx.activity::<CloseTicket>(Resolution {
                    ticket: ticket.clone(),
                    resolution: output.clone(),
                })
                .start_to_close(STEP_TIMEOUT)
                .retry(step_retry())
                .await?;
                format!("resolved: {output}")
            }
            // The incident stays open for the humans; the reporter still
            // hears about it.
            Err(e) => format!(
                "runbook failed ({}); left open for {acknowledged_by}",
                e.failure
            ),
        };
        ctx.activity::<PostStatusUpdate>(StatusUpdate {
            ticket_id: ticket.ticket_id.clone(),
            to: alert.reporter.clone(),
            text: outcome.clone(),
        })
        .start_to_close(STEP_TIMEOUT)
        .retry(step_retry())
        .await?;
        narrate(&ctx, &outcome);
        Ok(IncidentReport {
            ticket_id: ticket.ticket_id,
            acknowledged_by,
            escalation_level: ack.assignee_level,
            runbook: ack.value.runbook,
            outcome,
        })
    }
}

// ----- what runs it -----

/// Registers [`IncidentResponse`] and its activities.
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    builder
        .workflow::<IncidentResponse>()
        .activity(OpenTicket)
        .activity(PageOnCall)
        .activity(RunRunbook)
        .activity(PostStatusUpdate)
        .activity(CloseTicket)
}

/// Starts a worker on `store` with everything [`register`] registers.
/// Must be called within a tokio runtime.
pub fn start_worker(store: Store) -> Worker {
    register(Worker::builder(store)).start()
}

/// A replayer with this example's workflow type, for `refrain replay` and
/// replay tests.
pub fn replayer() -> Replayer {
    Replayer::new().workflow::<IncidentResponse>()
}

/// The workflow id of the example's incident.
pub const INCIDENT: &str = "incident-4711";

/// The example's alert: checkout failing with HTTP 5xx.
pub fn alert() -> Alert {
    Alert {
        alert_id: "alert-4711".into(),
        service: "checkout".into(),
        summary: "HTTP 5xx above 20% for 5 minutes".into(),
        severity: "SEV-2".into(),
        reporter: "status-page@shop.example".into(),
    }
}

/// What the example plays. Tier 1 never acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// Whether tier 2 acknowledges once the page reaches them (the
    /// example's default). If not, nobody does, and the safe default
    /// runbook runs once tier 2's deadline has passed.
    pub tier2_acknowledges: bool,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            tier2_acknowledges: true,
        }
    }
}

/// Runs the example's incident ([`INCIDENT`], [`alert`]): starts it (or
/// resumes the run a killed process left open, or finds it already
/// closed), plays the on-call engineers (tier 1 sleeps; tier 2
/// acknowledges once paged, or not at all), and prints the outcome and
/// the history. A worker from [`start_worker`] must be running on the
/// client's store.
///
/// Returns the workflow id and how it ended: its report, or the failure
/// of its workflow.
///
/// # Errors
/// Storage errors, and a task form that does not decode.
pub async fn run(
    client: &Client,
    scenario: Scenario,
) -> Result<(String, Result<IncidentReport, Failure>)> {
    println!();
    let (handle, begun) = start_or_resume::<IncidentResponse>(client, INCIDENT, alert()).await?;
    if !matches!(begun, Begun::AlreadyClosed(_)) {
        play_on_call(client, INCIDENT, scenario.tier2_acknowledges).await?;
    }
    let outcome = match handle.result().await {
        Ok(r) => {
            println!(
                "[main] {INCIDENT}: {} acknowledged by {} (level {}), ran {}; {}",
                r.ticket_id, r.acknowledged_by, r.escalation_level, r.runbook, r.outcome
            );
            Ok(r)
        }
        Err(ClientError::WorkflowFailed { failure, .. }) => {
            println!("[main] {INCIDENT}: FAILED: {failure}");
            Err(failure)
        }
        Err(e) => return Err(e.into()),
    };
    print_history(client, INCIDENT).await?;
    Ok((INCIDENT.to_owned(), outcome))
}

/// Plays the on-call engineers: tier 1 sleeps through the pages; tier 2
/// watches their queue and, if `tier2_acknowledges`, acknowledges as soon
/// as the incident lands in it (otherwise they are away too, and this
/// returns once the page has reached them, or the run has closed).
/// Rerun after a crash, it sends nothing twice: a task that was already
/// acknowledged is no longer in the queue, and a decision on a task that
/// closed meanwhile is refused without writing anything.
///
/// # Errors
/// Storage errors, and a task form that does not decode.
pub async fn play_on_call(client: &Client, id: &str, tier2_acknowledges: bool) -> Result<()> {
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut tier1_seen = false;
    loop {
        if !tier1_seen {
            if let Some(t) = client
                .list_human_tasks(TIER1)
                .await?
                .into_iter()
                .find(|t| t.workflow_id.as_str() == id)
            {
                tier1_seen = true;
                println!(
                    "[main] {TIER1}'s queue: {} (level {}); {TIER1} is asleep and does not acknowledge",
                    t.task, t.level
                );
            }
        }
        let queued = client
            .list_human_tasks(TIER2)
            .await?
            .into_iter()
            .find(|t| t.workflow_id.as_str() == id);
        // Tier 2 acts on the page, once it has reached them.
        let queued = match queued {
            Some(task) if paged(client, id, TIER2).await.unwrap_or(false) => Some(task),
            _ => None,
        };
        if let Some(task) = queued {
            let form: AckForm = task.form()?.expect("the page has a form");
            if !tier2_acknowledges {
                println!(
                    "[main] {TIER2}'s queue: {} for {} {} (escalated, level {}); {TIER2} is away and does not acknowledge either",
                    task.task, form.ticket_id, form.service, task.level
                );
                return Ok(());
            }
            println!(
                "[main] {TIER2}'s queue: {} for {} {} (escalated, level {}); acknowledging with {}",
                task.task, form.ticket_id, form.service, task.level, form.suggested_runbook
            );
            let ack = Ack {
                runbook: form.suggested_runbook,
            };
            let comment = "on it; restarting the failing pods first";
            return match client
                .decide_human_task(&task.reference(), &ack, TIER2, Some(comment))
                .await
            {
                Ok(()) | Err(ClientError::HumanTaskClosed { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        if !client.describe(id).await?.status().is_open() || Instant::now() > give_up {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether a page to `who` has gone out (its activity completed).
async fn paged(client: &Client, id: &str, who: &str) -> Result<bool> {
    let mut pages = Vec::new();
    for e in client.history(id).await? {
        match e {
            Event::ActivityScheduled {
                cmd,
                activity_type,
                input,
                ..
            } if activity_type == PageOnCall::NAME => {
                let notice: HumanTaskNotice = serde_json::from_slice(input.as_bytes())?;
                if notice.assignee == who {
                    pages.push(cmd);
                }
            }
            Event::ActivityCompleted { cmd, .. } if pages.contains(&cmd) => return Ok(true),
            _ => {}
        }
    }
    Ok(false)
}
