//! Employee onboarding: work in parallel, a manager's approval with a
//! deadline, and escalation when the deadline passes.
//!
//! Once a contract is signed, three departments can start at once: IT
//! creates the new hire's accounts (disabled until their access is
//! approved), procurement orders equipment, HR enrolls benefits. The
//! workflow runs the three activities in parallel with `join3`; the
//! equipment vendor's API times out on the first attempt, which the store
//! retries.
//!
//! Then the hiring manager must approve the access the accounts get. Each
//! approver in the chain has a deadline to send a `manager-approval`
//! signal; when it passes, the workflow escalates to the next approver
//! (`escalate-approval` notifies them) and waits again. On approval the
//! accounts are activated and a welcome mail goes out. A refusal, or a
//! chain in which nobody answers, goes to HR.
//!
//! In the example the manager (deadline 2 s) never answers; the workflow
//! escalates to the director (deadline 10 s), and the example's `main`,
//! playing the director, approves once it sees the escalation. With
//! `--director-away` the director does not answer either, and the case
//! goes to HR once both deadlines have passed. The deadlines are part of
//! the workflow input ([`Approver::respond_within`]), so tests run the
//! same workflow with shorter ones ([`Scenario`]).
//!
//! ```text
//! cargo run --release --example employee_onboarding
//! cargo run --release --example employee_onboarding -- --db /tmp/onb   # kill -9 it, rerun: it resumes
//! cargo run --release --example employee_onboarding -- cli --db /tmp/onb history onboarding-emp-4711
//! ```

use crate::{
    activity_says, narrate, print_history, signal_recorded, start_or_resume, wait_for_activity,
    Begun,
};
use anyhow::Result;
use refrain::{
    async_trait, join3, Activity, ActivityContext, ActivityError, Client, ClientError, Failure,
    Query, QueryState, RetryPolicy, Signal, Store, Workflow, WorkflowContext, WorkflowError,
};
use refrain_worker::{Replayer, Worker, WorkerBuilder};
use serde::{Deserialize, Serialize};
use std::time::Duration;

// ----- the business data -----

/// Someone who signed a contract, and who approves their access.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewHire {
    /// The HR system's id, e.g. `emp-4711`.
    pub employee_id: String,
    /// Full name.
    pub name: String,
    /// Job title.
    pub role: String,
    /// First working day, `YYYY-MM-DD`.
    pub start_date: String,
    /// Who approves the new hire's access, in escalation order.
    pub approvers: Vec<Approver>,
}

/// One approver in the escalation chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approver {
    /// Full name, as they sign their answer.
    pub name: String,
    /// Their position.
    pub title: String,
    /// How long they have to answer before the workflow escalates.
    pub respond_within: Duration,
}

impl std::fmt::Display for Approver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.title)
    }
}

/// The accounts IT created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Accounts {
    /// The mailbox.
    pub email: String,
    /// The directory user.
    pub username: String,
}

/// What an approver is asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Whose access.
    pub employee: String,
    /// For which role.
    pub role: String,
    /// Who is asked.
    pub approver: Approver,
    /// Who did not answer, when this is an escalation.
    pub escalated_from: Option<Approver>,
}

/// The signal an approver sends.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
pub struct ManagerApproval {
    /// Who answers.
    pub approver: String,
    /// Whether they approve.
    pub approved: bool,
    /// Why, for the record.
    pub comment: String,
}

/// Whose approval the onboarding waits for (their name and title), if
/// anyone's: the question an approver's inbox or a dashboard asks.
#[derive(Query)]
#[query(name = "awaiting-approval", result = Option<String>)]
pub struct AwaitingApproval;

/// How onboarding ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnboardingOutcome {
    /// Everything is in place for day one.
    Ready {
        /// The activated mailbox.
        email: String,
        /// The equipment purchase order.
        equipment_order: String,
        /// The benefits enrollment.
        benefits: String,
        /// Who approved the access.
        approved_by: String,
    },
    /// Access was refused or nobody answered: HR takes over.
    SentToHr {
        /// Why.
        reason: String,
    },
}

// ----- activities: the outside world -----

/// Stands in for the latency of a remote call.
async fn remote_call() {
    tokio::time::sleep(Duration::from_millis(80)).await;
}

/// IT: creates the mailbox and directory user, disabled.
#[derive(Debug, Clone, Copy)]
pub struct CreateAccounts;

#[async_trait]
impl Activity for CreateAccounts {
    const NAME: &'static str = "create-accounts";
    type Input = NewHire;
    type Output = Accounts;
    async fn run(&self, ctx: ActivityContext, hire: NewHire) -> Result<Accounts, ActivityError> {
        remote_call().await;
        let username = hire.name.to_lowercase().replace(' ', ".");
        let accounts = Accounts {
            email: format!("{username}@example.com"),
            username,
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "created {} and directory user {} (disabled until approved)",
                accounts.email, accounts.username
            ),
        );
        Ok(accounts)
    }
}

/// Procurement: orders laptop, dock and badge. The vendor's API times out
/// on every first attempt; returns the purchase order number.
#[derive(Debug, Clone, Copy)]
pub struct OrderEquipment;

#[async_trait]
impl Activity for OrderEquipment {
    const NAME: &'static str = "order-equipment";
    type Input = NewHire;
    type Output = String;
    async fn run(&self, ctx: ActivityContext, hire: NewHire) -> Result<String, ActivityError> {
        remote_call().await;
        if ctx.attempt() == 1 {
            activity_says(
                &ctx,
                Self::NAME,
                "vendor API timed out; the store will retry",
            );
            return Err(
                ActivityError::retryable("vendor API timed out").with_kind("vendor-timeout")
            );
        }
        let po = format!("PO-{}", hire.employee_id.trim_start_matches("emp-"));
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{po}: laptop, dock and badge, delivered before {}",
                hire.start_date
            ),
        );
        Ok(po)
    }
}

/// HR: enrolls benefits; returns the enrollment number.
#[derive(Debug, Clone, Copy)]
pub struct EnrollBenefits;

#[async_trait]
impl Activity for EnrollBenefits {
    const NAME: &'static str = "enroll-benefits";
    type Input = NewHire;
    type Output = String;
    async fn run(&self, ctx: ActivityContext, hire: NewHire) -> Result<String, ActivityError> {
        remote_call().await;
        let enrollment = format!("BEN-{}", hire.employee_id);
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{enrollment}: health, pension and lunch plan from {}",
                hire.start_date
            ),
        );
        Ok(enrollment)
    }
}

/// Asks the first approver in the chain.
#[derive(Debug, Clone, Copy)]
pub struct RequestApproval;

#[async_trait]
impl Activity for RequestApproval {
    const NAME: &'static str = "request-approval";
    type Input = ApprovalRequest;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, req: ApprovalRequest) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "asked {} to approve access for {} ({}), answer within {:?}",
                req.approver, req.employee, req.role, req.approver.respond_within
            ),
        );
        Ok(())
    }
}

/// Asks the next approver after the previous one let the deadline pass.
#[derive(Debug, Clone, Copy)]
pub struct EscalateApproval;

#[async_trait]
impl Activity for EscalateApproval {
    const NAME: &'static str = "escalate-approval";
    type Input = ApprovalRequest;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, req: ApprovalRequest) -> Result<(), ActivityError> {
        remote_call().await;
        let from = req
            .escalated_from
            .map_or_else(|| "nobody".to_owned(), |a| a.to_string());
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{from} did not answer; asked {} instead, answer within {:?}",
                req.approver, req.approver.respond_within
            ),
        );
        Ok(())
    }
}

/// IT: enables the accounts once access is approved.
#[derive(Debug, Clone, Copy)]
pub struct ActivateAccounts;

#[async_trait]
impl Activity for ActivateAccounts {
    const NAME: &'static str = "activate-accounts";
    type Input = Accounts;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, accounts: Accounts) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(
            &ctx,
            Self::NAME,
            format!("enabled {} and {}", accounts.email, accounts.username),
        );
        Ok(())
    }
}

/// Sends the welcome mail for day one.
#[derive(Debug, Clone, Copy)]
pub struct SendWelcome;

#[async_trait]
impl Activity for SendWelcome {
    const NAME: &'static str = "send-welcome";
    type Input = (NewHire, Accounts);
    type Output = ();
    async fn run(
        &self,
        ctx: ActivityContext,
        (hire, accounts): (NewHire, Accounts),
    ) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "welcome mail to {} for day one, {}",
                accounts.email, hire.start_date
            ),
        );
        Ok(())
    }
}

/// Opens an HR ticket with the reason.
#[derive(Debug, Clone, Copy)]
pub struct NotifyHr;

#[async_trait]
impl Activity for NotifyHr {
    const NAME: &'static str = "notify-hr";
    type Input = String;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, reason: String) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(&ctx, Self::NAME, format!("HR ticket opened: {reason}"));
        Ok(())
    }
}

// ----- the workflow -----

/// Every attempt of these activities takes milliseconds; the short bound
/// matters after a crash, when an attempt that was running is retried only
/// once its start-to-close timeout has passed.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);

fn step_retry() -> RetryPolicy {
    RetryPolicy::exponential()
        .initial_interval(Duration::from_millis(200))
        .max_interval(Duration::from_secs(2))
        .max_attempts(5)
}

/// The onboarding workflow: accounts, equipment and benefits in parallel,
/// then approval of access along the escalation chain, then activation and
/// the welcome mail (or HR).
#[derive(Debug, Clone, Copy)]
pub struct EmployeeOnboarding;

#[refrain::deterministic]
impl Workflow for EmployeeOnboarding {
    const NAME: &'static str = "employee-onboarding";
    type Input = NewHire;
    type Output = OnboardingOutcome;

    async fn run(ctx: WorkflowContext, hire: NewHire) -> Result<OnboardingOutcome, WorkflowError> {
        narrate(
            &ctx,
            format!(
                "{} joins as {} on {}; accounts, equipment and benefits start in parallel",
                hire.name, hire.role, hire.start_date
            ),
        );
        let (accounts, equipment, benefits) = join3(
            ctx.activity::<CreateAccounts>(hire.clone())
                .start_to_close(STEP_TIMEOUT)
                .retry(step_retry()),
            ctx.activity::<OrderEquipment>(hire.clone())
                .start_to_close(STEP_TIMEOUT)
                .retry(step_retry()),
            ctx.activity::<EnrollBenefits>(hire.clone())
                .start_to_close(STEP_TIMEOUT)
                .retry(step_retry()),
        )
        .await;
        let (accounts, equipment, benefits) = (accounts?, equipment?, benefits?);
        narrate(&ctx, "all three done; access now waits for approval");

        let awaiting = QueryState::new(None);
        awaiting.answer::<AwaitingApproval>(&ctx, |who, ()| who.clone());
        let mut decision = None;
        let mut previous: Option<Approver> = None;
        for approver in &hire.approvers {
            awaiting.set(Some(approver.to_string()));
            let request = ApprovalRequest {
                employee: hire.name.clone(),
                role: hire.role.clone(),
                approver: approver.clone(),
                escalated_from: previous.clone(),
            };
            // Two activity types rather than a flag, so that the history
            // shows at a glance whether (and when) the workflow escalated.
            if previous.is_none() {
                ctx.activity::<RequestApproval>(request)
                    .start_to_close(STEP_TIMEOUT)
                    .retry(step_retry())
                    .await?;
            } else {
                ctx.activity::<EscalateApproval>(request)
                    .start_to_close(STEP_TIMEOUT)
                    .retry(step_retry())
                    .await?;
            }
            narrate(
                &ctx,
                format!("waiting up to {:?} for {approver}", approver.respond_within),
            );
            if let Some(answer) = ctx
                .wait_signal_for::<ManagerApproval>(approver.respond_within)
                .await?
            {
                decision = Some(answer);
                break;
            }
            narrate(&ctx, format!("no answer from {approver}: escalating"));
            previous = Some(approver.clone());
        }
        awaiting.set(None);

        let decision = match decision {
            Some(d) if d.approved => d,
            other => {
                let reason = match other {
                    Some(d) => format!(
                        "{} declined access for {}: {}",
                        d.approver, hire.name, d.comment
                    ),
                    None => format!("nobody in the approval chain answered for {}", hire.name),
                };
                narrate(&ctx, format!("{reason}; handing over to HR"));
                ctx.activity::<NotifyHr>(reason.clone())
                    .start_to_close(STEP_TIMEOUT)
                    .retry(step_retry())
                    .await?;
                return Ok(OnboardingOutcome::SentToHr { reason });
            }
        };
        narrate(
            &ctx,
            format!(
                "approved by {} (\"{}\")",
                decision.approver, decision.comment
            ),
        );
        ctx.activity::<ActivateAccounts>(accounts.clone())
            .start_to_close(STEP_TIMEOUT)
            .retry(step_retry())
            .await?;
        ctx.activity::<SendWelcome>((hire.clone(), accounts.clone()))
            .start_to_close(STEP_TIMEOUT)
            .retry(step_retry())
            .await?;
        narrate(&ctx, format!("{} is ready for day one", hire.name));
        Ok(OnboardingOutcome::Ready {
            email: accounts.email,
            equipment_order: equipment,
            benefits,
            approved_by: decision.approver,
        })
    }
}

// ----- what runs it -----

/// Registers [`EmployeeOnboarding`] and its activities.
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    builder
        .workflow::<EmployeeOnboarding>()
        .activity(CreateAccounts)
        .activity(OrderEquipment)
        .activity(EnrollBenefits)
        .activity(RequestApproval)
        .activity(EscalateApproval)
        .activity(ActivateAccounts)
        .activity(SendWelcome)
        .activity(NotifyHr)
}

/// Starts a worker on `store` with everything [`register`] registers.
/// Must be called within a tokio runtime.
pub fn start_worker(store: Store) -> Worker {
    register(Worker::builder(store)).start()
}

/// A replayer with this example's workflow type, for `refrain replay` and
/// replay tests.
pub fn replayer() -> Replayer {
    Replayer::new().workflow::<EmployeeOnboarding>()
}

/// What the director does once the escalation reaches them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Director {
    /// Approves (the example's default).
    #[default]
    Approves,
    /// Declines; the case goes to HR.
    Declines,
    /// Does not answer; the case goes to HR once their deadline passes.
    Away,
}

/// What the example plays. The manager never answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// What the director does.
    pub director: Director,
    /// The manager's deadline.
    pub manager_within: Duration,
    /// The director's deadline.
    pub director_within: Duration,
}

impl Scenario {
    /// The example's deadlines (2 s for the manager, 10 s for the
    /// director) with the given director.
    pub fn example(director: Director) -> Self {
        Scenario {
            director,
            manager_within: Duration::from_secs(2),
            director_within: Duration::from_secs(10),
        }
    }

    /// Deadlines for tests: 200 ms for the manager, and for the director
    /// 10 s when they answer (they answer at once), 200 ms when away.
    pub fn fast(director: Director) -> Self {
        Scenario {
            director,
            manager_within: Duration::from_millis(200),
            director_within: match director {
                Director::Away => Duration::from_millis(200),
                Director::Approves | Director::Declines => Duration::from_secs(10),
            },
        }
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario::example(Director::Approves)
    }
}

/// The example's new hire, Ada Lovelace, with the approval chain of
/// `scenario`: Dana Whitfield (engineering manager), then Sam Okafor
/// (director of engineering).
pub fn new_hire(scenario: &Scenario) -> NewHire {
    NewHire {
        employee_id: "emp-4711".into(),
        name: "Ada Lovelace".into(),
        role: "Staff Engineer".into(),
        start_date: "2025-03-03".into(),
        approvers: vec![
            Approver {
                name: "Dana Whitfield".into(),
                title: "engineering manager".into(),
                respond_within: scenario.manager_within,
            },
            Approver {
                name: "Sam Okafor".into(),
                title: "director of engineering".into(),
                respond_within: scenario.director_within,
            },
        ],
    }
}

/// Runs the example's onboarding ([`new_hire`]): starts it (or resumes the
/// run a killed process left open, or finds it already closed), plays the
/// director, and prints the outcome and the history. A worker from
/// [`start_worker`] must be running on the client's store.
///
/// Returns the workflow id and how it ended: its outcome, or the failure
/// of its workflow.
///
/// # Errors
/// Storage errors, and the director giving up waiting for the escalation.
pub async fn run(
    client: &Client,
    scenario: Scenario,
) -> Result<(String, Result<OnboardingOutcome, Failure>)> {
    let hire = new_hire(&scenario);
    let id = format!("onboarding-{}", hire.employee_id);
    println!();
    let (handle, begun) = start_or_resume::<EmployeeOnboarding>(client, &id, hire).await?;
    if !matches!(begun, Begun::AlreadyClosed(_)) {
        match scenario.director {
            Director::Approves => director_answers(client, &id, true).await?,
            Director::Declines => director_answers(client, &id, false).await?,
            Director::Away => {}
        }
    }
    let outcome = match handle.result().await {
        Ok(outcome) => {
            match &outcome {
                OnboardingOutcome::Ready {
                    email,
                    equipment_order,
                    benefits,
                    approved_by,
                } => println!(
                    "[main] {id}: READY: {email} active, equipment {equipment_order}, benefits {benefits}, approved by {approved_by}"
                ),
                OnboardingOutcome::SentToHr { reason } => {
                    println!("[main] {id}: SENT TO HR: {reason}")
                }
            }
            Ok(outcome)
        }
        Err(ClientError::WorkflowFailed { failure, .. }) => {
            println!("[main] {id}: FAILED: {failure}");
            Err(failure)
        }
        Err(e) => return Err(e.into()),
    };
    print_history(client, &id).await?;
    Ok((id, outcome))
}

/// Plays the director, who answers once the escalation reaches them (the
/// manager never answers). Rerun after a crash, it sends nothing if the
/// workflow already recorded an answer; a duplicate that slips through
/// (sent, then a crash before the workflow recorded it) is harmless, as
/// the workflow reads one answer.
///
/// # Errors
/// Storage errors, or no escalation within 30 s.
pub async fn director_answers(client: &Client, id: &str, approve: bool) -> Result<()> {
    if signal_recorded(client, id, ManagerApproval::NAME).await? {
        return Ok(());
    }
    if !wait_for_activity(client, id, EscalateApproval::NAME, Duration::from_secs(30)).await? {
        return Ok(());
    }
    if let Ok(Some(who)) = client.query::<AwaitingApproval>(id, &()).await {
        println!("[main] {id}: the onboarding now waits for {who}");
    }
    let answer = if approve {
        println!("[main] {id}: Sam Okafor reads the escalation and approves");
        ManagerApproval {
            approver: "Sam Okafor".into(),
            approved: true,
            comment: "standard engineering access".into(),
        }
    } else {
        println!("[main] {id}: Sam Okafor reads the escalation and declines");
        ManagerApproval {
            approver: "Sam Okafor".into(),
            approved: false,
            comment: "production access needs a security review first".into(),
        }
    };
    match client.signal(id, &answer).await {
        Ok(()) | Err(ClientError::Closed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
