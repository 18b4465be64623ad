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
//! playing the director, approves once it sees the escalation.
//!
//! ```text
//! cargo run --release --example employee_onboarding
//! cargo run --release --example employee_onboarding -- --db /tmp/onb   # kill -9 it, rerun: it resumes
//! ```

use anyhow::Result;
use clap::Parser;
use refrain::{
    async_trait, join3, Activity, ActivityContext, ActivityError, Client, ClientError, RetryPolicy,
    Signal, Workflow, WorkflowContext, WorkflowError,
};
use refrain_examples::{
    activity_says, init_tracing, narrate, print_history, signal_recorded, start_or_resume,
    wait_for_activity, Begun, StoreArgs,
};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::time::Duration;

// ----- the business data -----

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NewHire {
    employee_id: String,
    name: String,
    role: String,
    start_date: String,
    /// Who approves the new hire's access, in escalation order.
    approvers: Vec<Approver>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Approver {
    name: String,
    title: String,
    respond_within: Duration,
}

impl std::fmt::Display for Approver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.title)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Accounts {
    email: String,
    username: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ApprovalRequest {
    employee: String,
    role: String,
    approver: Approver,
    /// Who did not answer, when this is an escalation.
    escalated_from: Option<Approver>,
}

/// The signal an approver sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManagerApproval {
    approver: String,
    approved: bool,
    comment: String,
}

impl Signal for ManagerApproval {
    const NAME: &'static str = "manager-approval";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum OnboardingOutcome {
    Ready {
        email: String,
        equipment_order: String,
        benefits: String,
        approved_by: String,
    },
    SentToHr {
        reason: String,
    },
}

// ----- activities: the outside world -----

/// Stands in for the latency of a remote call.
async fn remote_call() {
    tokio::time::sleep(Duration::from_millis(80)).await;
}

struct CreateAccounts;

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

struct OrderEquipment;

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

struct EnrollBenefits;

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

struct RequestApproval;

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

struct EscalateApproval;

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

struct ActivateAccounts;

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

struct SendWelcome;

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

struct NotifyHr;

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

struct EmployeeOnboarding;

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

        let mut decision = None;
        let mut previous: Option<Approver> = None;
        for approver in &hire.approvers {
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

// ----- the process that runs it all -----

#[derive(Parser)]
#[command(about = "Employee onboarding: parallel provisioning, approval deadline, escalation")]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    init_tracing();
    let store = args.store.open_store("employee_onboarding")?;
    let worker = Worker::builder(store.clone())
        .workflow::<EmployeeOnboarding>()
        .activity(CreateAccounts)
        .activity(OrderEquipment)
        .activity(EnrollBenefits)
        .activity(RequestApproval)
        .activity(EscalateApproval)
        .activity(ActivateAccounts)
        .activity(SendWelcome)
        .activity(NotifyHr)
        .start();
    let client = Client::new(store);

    let hire = NewHire {
        employee_id: "emp-4711".into(),
        name: "Ada Lovelace".into(),
        role: "Staff Engineer".into(),
        start_date: "2025-03-03".into(),
        approvers: vec![
            Approver {
                name: "Dana Whitfield".into(),
                title: "engineering manager".into(),
                respond_within: Duration::from_secs(2),
            },
            Approver {
                name: "Sam Okafor".into(),
                title: "director of engineering".into(),
                respond_within: Duration::from_secs(10),
            },
        ],
    };
    let id = format!("onboarding-{}", hire.employee_id);
    println!();
    let (handle, begun) = start_or_resume::<EmployeeOnboarding>(&client, &id, hire).await?;
    if !matches!(begun, Begun::AlreadyClosed(_)) {
        director_approves(&client, &id).await?;
    }
    match handle.result().await {
        Ok(OnboardingOutcome::Ready {
            email,
            equipment_order,
            benefits,
            approved_by,
        }) => println!(
            "[main] {id}: READY: {email} active, equipment {equipment_order}, benefits {benefits}, approved by {approved_by}"
        ),
        Ok(OnboardingOutcome::SentToHr { reason }) => println!("[main] {id}: SENT TO HR: {reason}"),
        Err(ClientError::WorkflowFailed { failure, .. }) => println!("[main] {id}: FAILED: {failure}"),
        Err(e) => return Err(e.into()),
    }
    print_history(&client, &id)?;

    worker.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

/// Plays the director, who approves once the escalation reaches them (the
/// manager never answers). Rerun after a crash, it sends nothing if the
/// workflow already recorded an answer; a duplicate that slips through
/// (sent, then a crash before the workflow recorded it) is harmless, as
/// the workflow reads one answer.
async fn director_approves(client: &Client, id: &str) -> Result<()> {
    if signal_recorded(client, id, ManagerApproval::NAME)? {
        return Ok(());
    }
    if !wait_for_activity(client, id, EscalateApproval::NAME, Duration::from_secs(30)).await? {
        return Ok(());
    }
    println!("[main] {id}: Sam Okafor reads the escalation and approves");
    let approval = ManagerApproval {
        approver: "Sam Okafor".into(),
        approved: true,
        comment: "standard engineering access".into(),
    };
    match client.signal(id, &approval).await {
        Ok(()) | Err(ClientError::Closed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
