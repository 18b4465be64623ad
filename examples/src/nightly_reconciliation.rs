//! Nightly reconciliation on a durable schedule.
//!
//! Finance reconciles the ledger with the bank every night: each account's
//! ledger balance is compared with the balance the bank reports, and every
//! mismatch goes into a report for the morning. A schedule starts the
//! `nightly-reconciliation` workflow; the workflow splits the accounts
//! into batches, reconciles each batch in a child workflow (all batches at
//! once, `join_all`), sums the mismatches and publishes the report.
//!
//! In production the trigger would be `Trigger::Cron("0 2 * * *")`; here
//! "nightly" is every second ([`Scenario::EXAMPLE`]), so that a few nights
//! pass in a few seconds. Once three reconciliations have completed, the
//! example pauses the schedule, prints what the schedule did, and deletes
//! it.
//!
//! The schedule lives in the store, not in this process: kill the process
//! (`kill -9`) and rerun with the same `--db`, and the schedule carries on.
//! Nights that passed while it was down are caught up once (overlap
//! policy `Skip`), if they are within the five-second catch-up window;
//! older ones are counted as missed.
//!
//! The schedule, not the example, starts the runs, and names them after
//! their fire time (`nightly-reconciliation@2026-11-21T04:34:33Z`, with
//! batches `…/batch-1` to `…/batch-3`): how many there are, and their
//! ids, depend on the clock.
//!
//! ```text
//! cargo run --release --example nightly_reconciliation
//! cargo run --release --example nightly_reconciliation -- --db /tmp/recon   # kill -9 it, rerun: it resumes
//! cargo run --release --example nightly_reconciliation -- cli --db /tmp/recon list
//! ```

use crate::{activity_says, narrate};
use anyhow::{Context as _, Result};
use refrain::{
    async_trait, join_all, schedule_for, Activity, ActivityContext, ActivityError, Client,
    OverlapPolicy, RetryPolicy, RunFilter, RunStatus, ScheduleError, ScheduleRecord, Store,
    Trigger, Workflow, WorkflowContext, WorkflowError,
};
use refrain_worker::{Replayer, Worker, WorkerBuilder};
use serde::{Deserialize, Serialize};
use std::time::Duration;

// ----- the business data -----

/// What every night's run reconciles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ledger {
    /// The ledger's name.
    pub name: String,
    /// The accounts to reconcile.
    pub accounts: Vec<String>,
    /// How many accounts one child workflow reconciles.
    pub batch_size: usize,
}

/// One account whose balances disagree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mismatch {
    /// The account.
    pub account: String,
    /// Its balance in the ledger, in cents.
    pub ledger_cents: i64,
    /// Its balance as the bank reports it, in cents.
    pub bank_cents: i64,
}

/// What one batch found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchResult {
    /// How many accounts were compared.
    pub checked: usize,
    /// The accounts whose balances disagree.
    pub mismatches: Vec<Mismatch>,
}

/// The morning report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The night reconciled: the schedule's fire time.
    pub night: String,
    /// How many accounts were compared.
    pub accounts: usize,
    /// In how many batches.
    pub batches: usize,
    /// The accounts whose balances disagree.
    pub mismatches: Vec<Mismatch>,
    /// The bank's balances minus the ledger's, summed over the
    /// mismatches, in cents.
    pub net_difference_cents: i64,
}

// ----- activities: the outside world -----

/// Balances of `account` on `night` as (ledger, bank), in cents. A made-up
/// but stable function, so a retried attempt sees the same numbers; about
/// one account in seven disagrees on a given night.
pub fn balances(account: &str, night: &str) -> (i64, i64) {
    let h = |s: &str| {
        s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |a, b| {
            (a ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    };
    let ledger = i64::try_from(h(account) % 1_000_000).unwrap_or(0);
    let drift = h(&format!("{account}/{night}"));
    let bank = if drift % 7 == 0 {
        ledger - i64::try_from(drift % 5_000).unwrap_or(0) - 1
    } else {
        ledger
    };
    (ledger, bank)
}

/// Fetches ledger and bank balances of a batch of accounts and compares
/// them.
#[derive(Debug, Clone, Copy)]
pub struct CompareBalances;

#[async_trait]
impl Activity for CompareBalances {
    const NAME: &'static str = "compare-balances";
    type Input = (String, Vec<String>);
    type Output = BatchResult;
    async fn run(
        &self,
        ctx: ActivityContext,
        (night, accounts): (String, Vec<String>),
    ) -> Result<BatchResult, ActivityError> {
        // Stands in for the bank's API.
        tokio::time::sleep(Duration::from_millis(40)).await;
        let mismatches: Vec<Mismatch> = accounts
            .iter()
            .filter_map(|a| {
                let (ledger_cents, bank_cents) = balances(a, &night);
                (ledger_cents != bank_cents).then(|| Mismatch {
                    account: a.clone(),
                    ledger_cents,
                    bank_cents,
                })
            })
            .collect();
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{} accounts ({}..{}), {} mismatch(es)",
                accounts.len(),
                accounts.first().map_or("", String::as_str),
                accounts.last().map_or("", String::as_str),
                mismatches.len()
            ),
        );
        Ok(BatchResult {
            checked: accounts.len(),
            mismatches,
        })
    }
}

/// Files the morning report.
#[derive(Debug, Clone, Copy)]
pub struct PublishReport;

#[async_trait]
impl Activity for PublishReport {
    const NAME: &'static str = "publish-report";
    type Input = Report;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, report: Report) -> Result<(), ActivityError> {
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "report for {}: {} accounts, {} mismatches, net {:+.2}",
                report.night,
                report.accounts,
                report.mismatches.len(),
                report.net_difference_cents as f64 / 100.0
            ),
        );
        Ok(())
    }
}

fn retry() -> RetryPolicy {
    RetryPolicy::exponential()
        .initial_interval(Duration::from_millis(200))
        .max_attempts(5)
}

/// Short, so that an attempt cut off by a crash is retried soon after the
/// rerun.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);

// ----- the workflows -----

/// Reconciles one batch of accounts: the child workflow, one per batch.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileBatch;

#[refrain::deterministic]
impl Workflow for ReconcileBatch {
    const NAME: &'static str = "reconcile-batch";
    type Input = (String, Vec<String>);
    type Output = BatchResult;
    async fn run(
        ctx: WorkflowContext,
        (night, accounts): (String, Vec<String>),
    ) -> Result<BatchResult, WorkflowError> {
        Ok(ctx
            .activity::<CompareBalances>((night, accounts))
            .start_to_close(STEP_TIMEOUT)
            .retry(retry())
            .await?)
    }
}

/// One night's reconciliation: a child workflow per batch, then the
/// report. Started by the schedule, which names each run
/// `nightly-reconciliation@<fire time>`; its batches are named
/// `<its id>/batch-<n>`.
#[derive(Debug, Clone, Copy)]
pub struct NightlyReconciliation;

#[refrain::deterministic]
impl Workflow for NightlyReconciliation {
    const NAME: &'static str = "nightly-reconciliation";
    type Input = Ledger;
    type Output = Report;
    async fn run(ctx: WorkflowContext, ledger: Ledger) -> Result<Report, WorkflowError> {
        let me = ctx.workflow_id();
        // The schedule names each run `{schedule}@{fire time}`: the night
        // it reconciles is the fire time.
        let night = me
            .as_str()
            .rsplit_once('@')
            .map_or_else(|| me.to_string(), |(_, t)| t.to_owned());
        let batches: Vec<Vec<String>> = ledger
            .accounts
            .chunks(ledger.batch_size.max(1))
            .map(<[String]>::to_vec)
            .collect();
        narrate(
            &ctx,
            format!(
                "reconciling {} accounts of {} in {} batches",
                ledger.accounts.len(),
                ledger.name,
                batches.len()
            ),
        );
        let calls: Vec<_> = batches
            .iter()
            .enumerate()
            .map(|(i, batch)| {
                ctx.child::<ReconcileBatch>(
                    format!("{me}/batch-{}", i + 1),
                    (night.clone(), batch.clone()),
                )
            })
            .collect();
        let mut checked = 0;
        let mut mismatches = Vec::new();
        for result in join_all(calls).await {
            let result = result?;
            checked += result.checked;
            mismatches.extend(result.mismatches);
        }
        let report = Report {
            night,
            accounts: checked,
            batches: batches.len(),
            net_difference_cents: mismatches
                .iter()
                .map(|m| m.bank_cents - m.ledger_cents)
                .sum(),
            mismatches,
        };
        ctx.activity::<PublishReport>(report.clone())
            .start_to_close(STEP_TIMEOUT)
            .retry(retry())
            .await?;
        narrate(
            &ctx,
            format!("done: {} mismatches", report.mismatches.len()),
        );
        Ok(report)
    }
}

// ----- what runs it -----

/// Registers [`NightlyReconciliation`], [`ReconcileBatch`] and their
/// activities.
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    builder
        .workflow::<NightlyReconciliation>()
        .workflow::<ReconcileBatch>()
        .activity(CompareBalances)
        .activity(PublishReport)
}

/// Starts a worker on `store` with everything [`register`] registers.
/// Must be called within a tokio runtime.
pub fn start_worker(store: Store) -> Worker {
    register(Worker::builder(store)).start()
}

/// A replayer with this example's workflow types (the night and its
/// batches), for `refrain replay` and replay tests.
pub fn replayer() -> Replayer {
    Replayer::new()
        .workflow::<NightlyReconciliation>()
        .workflow::<ReconcileBatch>()
}

/// The id of the example's schedule, and the prefix of the workflow ids
/// of the runs it starts (`nightly-reconciliation@<fire time>`).
pub const SCHEDULE: &str = "nightly-reconciliation";

/// The ledger every night reconciles: 23 accounts of the EU operating
/// ledger, in batches of 8 (three batches).
pub fn ledger() -> Ledger {
    Ledger {
        name: "EU operating ledger".into(),
        accounts: (1..=23).map(|n| format!("acct-{n:04}")).collect(),
        batch_size: 8,
    }
}

/// What the example plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// How often the schedule fires: "nightly".
    pub every: Duration,
    /// Completed reconciliations to see before the example stops the
    /// schedule.
    pub nights: usize,
    /// How far back the schedule catches up on fires missed while no
    /// worker ran.
    pub catchup_window: Duration,
}

impl Scenario {
    /// The example: every second, three nights, a five-second catch-up
    /// window.
    pub const EXAMPLE: Scenario = Scenario {
        every: Duration::from_secs(1),
        nights: 3,
        catchup_window: Duration::from_secs(5),
    };

    /// For tests: the same three nights, four times as fast.
    pub const FAST: Scenario = Scenario {
        every: Duration::from_millis(250),
        ..Scenario::EXAMPLE
    };

    fn every_text(&self) -> String {
        if self.every == Duration::from_secs(1) {
            "every second".to_owned()
        } else {
            format!("every {:?}", self.every)
        }
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario::EXAMPLE
    }
}

/// Runs the example: creates the schedule [`SCHEDULE`] (or finds the one
/// a killed process left, whose missed fires the worker catches up on),
/// lets it run until `scenario.nights` reconciliations have completed,
/// pauses it, waits for a run it started just before the pause, prints
/// every night's report and what the schedule did, and deletes it. If an
/// earlier process got to the end, it only prints the reports. A worker
/// from [`start_worker`] must be running on the client's store.
///
/// Returns the completed reconciliations, by workflow id, with their
/// reports.
///
/// # Errors
/// Storage and schedule errors, and fewer than `scenario.nights`
/// reconciliations within two minutes.
pub async fn run(client: &Client, scenario: Scenario) -> Result<Vec<(String, Report)>> {
    let nights = scenario.nights;
    println!();
    let spec =
        schedule_for::<NightlyReconciliation>(SCHEDULE, Trigger::Every(scenario.every), &ledger())?
            .overlap(OverlapPolicy::Skip)
            .catchup_window(scenario.catchup_window);
    let existing = match client.describe_schedule(SCHEDULE).await {
        Ok(s) => Some(s),
        Err(ScheduleError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let finished_before = completed_nights(client).await?.len();
    let summary = match existing {
        // An earlier process got to the end and deleted the schedule.
        None if finished_before >= nights => {
            println!("[main] {nights} nights were reconciled by an earlier process; nothing to do");
            None
        }
        None => {
            let s = client.create_schedule(spec).await?;
            println!(
                "[main] schedule {SCHEDULE}: created, {} (\"nightly\"), overlap Skip, \
                 catch-up window {} s; first fire {}",
                scenario.every_text(),
                scenario.catchup_window.as_secs_f64(),
                fire(s.next_fire)
            );
            Some(run_nights(client, nights).await?)
        }
        Some(s) => {
            println!(
                "[main] schedule {SCHEDULE}: found from an earlier process ({} runs started, \
                 next fire {}); the worker catches up on the nights it missed",
                s.runs_started,
                fire(s.next_fire)
            );
            Some(run_nights(client, nights).await?)
        }
    };

    println!();
    let completed = completed_nights(client).await?;
    for (id, report) in &completed {
        println!(
            "[main] {id}: {} accounts in {} batches, {} mismatch(es), net {:+.2}",
            report.accounts,
            report.batches,
            report.mismatches.len(),
            report.net_difference_cents as f64 / 100.0
        );
        for m in &report.mismatches {
            println!(
                "         {}: ledger {:.2}, bank {:.2}",
                m.account,
                m.ledger_cents as f64 / 100.0,
                m.bank_cents as f64 / 100.0
            );
        }
    }
    if let Some(s) = summary {
        print_schedule(&s);
        client.delete_schedule(SCHEDULE).await?;
        println!("[main] schedule {SCHEDULE}: deleted");
    }
    Ok(completed)
}

fn fire(t: Option<refrain_history::Timestamp>) -> String {
    t.map_or_else(
        || "none".to_owned(),
        refrain_history::store::schedules::fire_time_rfc3339,
    )
}

fn print_schedule(s: &ScheduleRecord) {
    println!(
        "[main] schedule {}: {} runs started, {} skipped by the overlap policy (a run still \
         open, or folded into one catch-up run), {} missed (older than the catch-up window); \
         last fire {}, last run {}",
        s.spec.id,
        s.runs_started,
        s.skipped,
        s.missed,
        fire(s.last_fire),
        s.last_run.as_ref().map_or_else(
            || "none".to_owned(),
            |r| format!("{} ({})", r.workflow_id, r.run)
        )
    );
}

/// Lets the schedule run until `nights` reconciliations have completed,
/// then pauses it and waits for a run it started just before the pause.
async fn run_nights(client: &Client, nights: usize) -> Result<ScheduleRecord> {
    wait_for_nights(client, nights).await?;
    client.pause_schedule(SCHEDULE).await?;
    println!("[main] schedule {SCHEDULE}: paused after {nights} nights");
    wait_for_open_nights(client).await?;
    Ok(client.describe_schedule(SCHEDULE).await?)
}

/// Completed reconciliations and their reports, by night.
///
/// # Errors
/// Storage errors, and a report that does not decode.
pub async fn completed_nights(client: &Client) -> Result<Vec<(String, Report)>> {
    let mut nights = Vec::new();
    for run in client
        .list(&RunFilter {
            status: Some(RunStatus::Completed),
            workflow_type: Some(NightlyReconciliation::NAME.into()),
            ..Default::default()
        })
        .await?
    {
        let record = client
            .history_store()
            .run_record(run.run)
            .await?
            .context("a listed run has no record")?;
        if let Some(Ok(payload)) = record.outcome {
            let report: Report = refrain::payload::decode("report", &payload)?;
            nights.push((run.workflow_id.to_string(), report));
        }
    }
    nights.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(nights)
}

/// Waits until `nights` reconciliations have completed (counting those of
/// an earlier, killed process).
async fn wait_for_nights(client: &Client, nights: usize) -> Result<()> {
    let give_up = std::time::Instant::now() + Duration::from_secs(120);
    while completed_nights(client).await?.len() < nights {
        anyhow::ensure!(
            std::time::Instant::now() < give_up,
            "no {nights} reconciliations within two minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until no reconciliation is running.
async fn wait_for_open_nights(client: &Client) -> Result<()> {
    let running = RunFilter {
        status: Some(RunStatus::Running),
        workflow_type: Some(NightlyReconciliation::NAME.into()),
        ..Default::default()
    };
    while !client.list(&running).await?.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
