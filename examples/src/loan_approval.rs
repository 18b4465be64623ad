//! Loan approval: documents, a credit check and an AI risk score decide
//! automatically when the model is confident; otherwise a human
//! underwriter decides, with a deadline and escalation to the credit
//! manager. Approval provisions the account and card as a saga, so a
//! failure halfway is undone; rejection tells the applicant.
//!
//! Three applications run one after the other ([`applications`]):
//!
//! - `loan-ada`: a strong file; the model is confident the risk is low, so
//!   the loan is approved automatically and the account and card are set
//!   up;
//! - `loan-bo`: a thin credit file; the model is unsure, so the
//!   application goes to underwriter-1, who reviews it in their task list
//!   and approves it with a comment (with `--underwriter-rejects`, rejects
//!   it, and the applicant is told why);
//! - `loan-cy`: approved automatically, but the card processor refuses the
//!   card after the credit line was reserved and the account opened: the
//!   saga closes the account (the core banking system times out once and
//!   the close is retried) and releases the reservation, newest first, and
//!   the applicant is told.
//!
//! An underwriter who does not decide within the deadline (2 s here, a
//! working day in real life) is reminded, then the task escalates to the
//! credit manager (20 s); if nobody decides, the application is declined
//! (`--nobody-decides`). The deadlines and the reminder interval come with
//! each application as its [`Pace`], so that tests can run the same
//! workflow, fallback included, in a fraction of a second; the example
//! uses [`Pace::EXAMPLE`].
//!
//! Until the loan is decided, the applicant may change the amount they
//! ask for with the [`AmendAmount`] update: the workflow refuses a
//! non-positive amount, and any amendment once the decision was made,
//! without a trace in the history; an accepted amendment is recorded, is
//! the amount the rest of the workflow uses (the credit reservation, the
//! applicant's letter), and is answered with the new [`LoanTerms`]. In the
//! example, bo first sends a negative amount by mistake (refused), then
//! lowers the amount while underwriter-1 has the review.
//!
//! ```text
//! cargo run --release --example loan_approval
//! cargo run --release --example loan_approval -- --nobody-decides
//! cargo run --release --example loan_approval -- --db /tmp/loans   # kill -9 it, rerun: it resumes
//! cargo run --release --example loan_approval -- cli --db /tmp/loans history loan-cy
//! ```

use crate::{activity_says, narrate, print_history, start_or_resume, Begun};
use anyhow::Result;
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, ActivityFailed, ActivityOptions, Client,
    ClientError, Event, Failure, HumanTask, HumanTaskNotice, NoticeKind, RetryPolicy, Saga, Store,
    Update, Workflow, WorkflowContext, WorkflowError,
};
use refrain_worker::{Replayer, Worker, WorkerBuilder};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

// ----- the business data -----

/// A loan application.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Application {
    /// The application's reference, also the workflow id.
    pub application_id: String,
    /// Who applies, as the bureaus know them.
    pub applicant: String,
    /// Where the applicant is told the outcome.
    pub email: String,
    /// How much they ask for, in euros.
    pub amount_eur: u64,
    /// How long the reviewers have and how often they are reminded. Left
    /// out of the recorded input when it is [`Pace::EXAMPLE`], so
    /// applications recorded before it existed decode as the example's
    /// pace.
    #[serde(default, skip_serializing_if = "Pace::is_example")]
    pub pace: Pace,
}

/// The waits of one application's human review. They travel with the
/// application (its workflow input) because workflow code may only decide
/// from what its history holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pace {
    /// How long the underwriter has to decide, in milliseconds.
    pub underwriter_deadline_ms: u64,
    /// How long the credit manager has once the review escalates to them,
    /// in milliseconds.
    pub manager_deadline_ms: u64,
    /// Reviewers are reminded at this interval until they decide, in
    /// milliseconds.
    pub remind_every_ms: u64,
}

impl Pace {
    /// The example's waits: 2 s for the underwriter (a working day in real
    /// life), 20 s for the credit manager, a reminder every 0.8 s.
    pub const EXAMPLE: Pace = Pace {
        underwriter_deadline_ms: 2_000,
        manager_deadline_ms: 20_000,
        remind_every_ms: 800,
    };

    /// Waits for tests in which nobody decides: every deadline passes in a
    /// fraction of a second, with at least one reminder per reviewer (the
    /// interval is shorter than each deadline).
    pub const FAST: Pace = Pace {
        underwriter_deadline_ms: 250,
        manager_deadline_ms: 250,
        remind_every_ms: 100,
    };

    /// Whether this is [`Pace::EXAMPLE`].
    pub fn is_example(&self) -> bool {
        *self == Pace::EXAMPLE
    }

    /// How long the underwriter has.
    pub fn underwriter_deadline(&self) -> Duration {
        Duration::from_millis(self.underwriter_deadline_ms)
    }

    /// How long the credit manager has.
    pub fn manager_deadline(&self) -> Duration {
        Duration::from_millis(self.manager_deadline_ms)
    }

    /// The reminder interval.
    pub fn remind_every(&self) -> Duration {
        Duration::from_millis(self.remind_every_ms)
    }
}

impl Default for Pace {
    fn default() -> Self {
        Pace::EXAMPLE
    }
}

/// The applicant changes the amount they ask for, until the loan is
/// decided. Answered with the terms for the new amount.
#[derive(Debug, Clone, Copy)]
pub struct AmendAmount;

impl Update for AmendAmount {
    const NAME: &'static str = "amend-amount";
    type Args = Amendment;
    type Result = LoanTerms;
}

/// What the applicant sends to change the amount.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Amendment {
    /// The new amount, in euros. Signed because it comes from a form a
    /// person fills in: the workflow refuses anything but a positive
    /// amount.
    pub amount_eur: i64,
}

/// What a loan of a given amount costs: the answer to an amendment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoanTerms {
    /// The amount, in euros.
    pub amount_eur: u64,
    /// Over how many months.
    pub term_months: u32,
    /// The nominal annual interest rate, in percent.
    pub annual_rate_percent: f64,
    /// The monthly instalment, in euros, rounded to the cent.
    pub monthly_instalment_eur: f64,
}

impl LoanTerms {
    /// Every loan in the example runs 48 months at 6.9% a year.
    pub const TERM_MONTHS: u32 = 48;
    /// The example's nominal annual interest rate, in percent.
    pub const ANNUAL_RATE_PERCENT: f64 = 6.9;

    /// The terms for `amount_eur`: an annuity of [`Self::TERM_MONTHS`]
    /// equal monthly instalments at [`Self::ANNUAL_RATE_PERCENT`].
    pub fn for_amount(amount_eur: u64) -> Self {
        let monthly_rate = Self::ANNUAL_RATE_PERCENT / 100.0 / 12.0;
        let n = i32::try_from(Self::TERM_MONTHS).unwrap_or(i32::MAX);
        let instalment = amount_eur as f64 * monthly_rate / (1.0 - (1.0 + monthly_rate).powi(-n));
        LoanTerms {
            amount_eur,
            term_months: Self::TERM_MONTHS,
            annual_rate_percent: Self::ANNUAL_RATE_PERCENT,
            monthly_instalment_eur: (instalment * 100.0).round() / 100.0,
        }
    }
}

impl std::fmt::Display for LoanTerms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} EUR over {} months at {}% a year: {:.2} EUR a month",
            self.amount_eur,
            self.term_months,
            self.annual_rate_percent,
            self.monthly_instalment_eur
        )
    }
}

/// The documents the applicant handed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Documents {
    /// How many payslips.
    pub payslips: u32,
    /// Whether their identity was verified.
    pub identity_verified: bool,
}

/// What the credit bureau reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreditReport {
    /// The bureau's score.
    pub bureau_score: u32,
    /// How long the applicant's credit history is.
    pub years_of_history: u32,
}

/// What the risk model is given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RiskInput {
    /// The application.
    pub application: Application,
    /// Its documents.
    pub documents: Documents,
    /// The bureau's report.
    pub credit: CreditReport,
}

/// The model's answer: the probability of default, and how sure it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RiskScore {
    /// The probability of default, 0 to 1.
    pub default_risk: f64,
    /// How sure the model is, 0 to 1.
    pub confidence: f64,
    /// Which model answered.
    pub model: String,
    /// Why, in words.
    pub reasons: Vec<String>,
}

/// What the underwriter decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The loan is granted.
    Approve,
    /// The loan is refused.
    Reject,
}

/// What the underwriter sees in their task list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnderwritingForm {
    /// Who applies.
    pub applicant: String,
    /// How much, in euros.
    pub amount_eur: u64,
    /// The bureau's score.
    pub bureau_score: u32,
    /// The model's probability of default.
    pub default_risk: f64,
    /// How sure the model is.
    pub confidence: f64,
    /// The model's reasons.
    pub reasons: Vec<String>,
}

/// Credit reserved for an approved loan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreditReservation {
    /// The reservation's reference.
    pub reservation_id: String,
    /// How much, in euros.
    pub amount_eur: u64,
}

/// The loan account opened for the applicant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// The core banking system's reference.
    pub account_id: String,
    /// The account's IBAN.
    pub iban: String,
}

/// What the card processor is asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardRequest {
    /// For whom.
    pub applicant: String,
    /// On which account.
    pub account: Account,
}

/// An issued card.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Card {
    /// The card processor's reference.
    pub card_id: String,
    /// The card number's last four digits.
    pub last4: String,
}

/// A message to the applicant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// The applicant's email.
    pub to: String,
    /// What they are told.
    pub text: String,
}

/// How an application ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LoanOutcome {
    /// Approved, with the account and card set up.
    Approved {
        /// The model (automatic) or the person who approved.
        decided_by: String,
        /// The new account's IBAN.
        iban: String,
        /// The new card's reference.
        card: String,
    },
    /// Rejected, and the applicant told why.
    Rejected {
        /// The model (automatic) or the person who rejected.
        decided_by: String,
        /// Why.
        reason: String,
    },
    /// Approved, but setting it up failed; what was set up was undone.
    ProvisioningFailed {
        /// The model (automatic) or the person who approved.
        decided_by: String,
        /// What failed.
        error: String,
        /// What was undone (the saga's report).
        undone: String,
    },
}

// ----- who decides -----

/// Who reviews the applications the model is unsure about.
pub const UNDERWRITER: &str = "underwriter-1";
/// Who gets a review the underwriter did not decide in time.
pub const CREDIT_MANAGER: &str = "credit-manager";
/// Below this the model's score only advises; a person decides.
pub const CONFIDENT: f64 = 0.8;

// ----- activities: the outside world -----

async fn remote_call() {
    tokio::time::sleep(Duration::from_millis(40)).await;
}

/// What the outside systems know about each applicant, by applicant.
#[derive(Debug, Clone)]
pub struct Bureau {
    /// The documents each applicant handed in.
    pub documents: BTreeMap<&'static str, Documents>,
    /// The credit bureau's reports.
    pub credit: BTreeMap<&'static str, CreditReport>,
    /// What the risk model answers for each applicant.
    pub risk: BTreeMap<&'static str, RiskScore>,
}

fn lookup<'a, T>(table: &'a BTreeMap<&'static str, T>, who: &str) -> Result<&'a T, ActivityError> {
    table
        .get(who)
        .ok_or_else(|| ActivityError::non_retryable(format!("no records for {who}")))
}

/// Collects the applicant's documents.
#[derive(Debug, Clone)]
pub struct CollectDocuments(pub Bureau);

#[async_trait]
impl Activity for CollectDocuments {
    const NAME: &'static str = "collect-documents";
    type Input = Application;
    type Output = Documents;
    async fn run(
        &self,
        ctx: ActivityContext,
        app: Application,
    ) -> Result<Documents, ActivityError> {
        remote_call().await;
        let docs = lookup(&self.0.documents, &app.applicant)?.clone();
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{}: {} payslips, identity {}",
                app.applicant,
                docs.payslips,
                if docs.identity_verified {
                    "verified"
                } else {
                    "NOT verified"
                }
            ),
        );
        Ok(docs)
    }
}

/// Asks the credit bureau for the applicant's report.
#[derive(Debug, Clone)]
pub struct CreditCheck(pub Bureau);

#[async_trait]
impl Activity for CreditCheck {
    const NAME: &'static str = "credit-check";
    type Input = Application;
    type Output = CreditReport;
    async fn run(
        &self,
        ctx: ActivityContext,
        app: Application,
    ) -> Result<CreditReport, ActivityError> {
        remote_call().await;
        let report = lookup(&self.0.credit, &app.applicant)?.clone();
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{}: bureau score {}, {} year{} of history",
                app.applicant,
                report.bureau_score,
                report.years_of_history,
                if report.years_of_history == 1 {
                    ""
                } else {
                    "s"
                }
            ),
        );
        Ok(report)
    }
}

/// Asks the risk model for a score.
#[derive(Debug, Clone)]
pub struct AiRiskScore(pub Bureau);

#[async_trait]
impl Activity for AiRiskScore {
    const NAME: &'static str = "ai-risk-score";
    type Input = RiskInput;
    type Output = RiskScore;
    async fn run(
        &self,
        ctx: ActivityContext,
        input: RiskInput,
    ) -> Result<RiskScore, ActivityError> {
        remote_call().await;
        let score = lookup(&self.0.risk, &input.application.applicant)?.clone();
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{}: default risk {:.0}% with confidence {:.0}% ({})",
                input.application.applicant,
                score.default_risk * 100.0,
                score.confidence * 100.0,
                score.model
            ),
        );
        Ok(score)
    }
}

/// Emails the underwriter about their task.
#[derive(Debug, Clone, Copy)]
pub struct NotifyUnderwriter;

#[async_trait]
impl Activity for NotifyUnderwriter {
    const NAME: &'static str = "notify-underwriter";
    type Input = HumanTaskNotice;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, n: HumanTaskNotice) -> Result<(), ActivityError> {
        remote_call().await;
        let text = match n.kind {
            NoticeKind::Assigned => format!("email {}: new application to review", n.assignee),
            NoticeKind::Reminder { number } => {
                format!("email {}: reminder #{number}, still waiting", n.assignee)
            }
            NoticeKind::Escalated { from } => {
                format!(
                    "email {}: escalated, {from} did not decide in time",
                    n.assignee
                )
            }
        };
        activity_says(&ctx, Self::NAME, text);
        Ok(())
    }
}

/// Reserves the loan amount on the bank's credit line.
#[derive(Debug, Clone, Copy)]
pub struct ReserveCreditLine;

#[async_trait]
impl Activity for ReserveCreditLine {
    const NAME: &'static str = "reserve-credit-line";
    type Input = Application;
    type Output = CreditReservation;
    async fn run(
        &self,
        ctx: ActivityContext,
        app: Application,
    ) -> Result<CreditReservation, ActivityError> {
        remote_call().await;
        let r = CreditReservation {
            reservation_id: format!("res-{}", app.application_id),
            amount_eur: app.amount_eur,
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!("reserved {} EUR ({})", r.amount_eur, r.reservation_id),
        );
        Ok(r)
    }
}

/// Releases a credit reservation (compensates [`ReserveCreditLine`]).
#[derive(Debug, Clone, Copy)]
pub struct ReleaseCreditReservation;

#[async_trait]
impl Activity for ReleaseCreditReservation {
    const NAME: &'static str = "release-reservation";
    type Input = CreditReservation;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, r: CreditReservation) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(
            &ctx,
            Self::NAME,
            format!("released {} EUR ({})", r.amount_eur, r.reservation_id),
        );
        Ok(())
    }
}

/// Opens the loan account.
#[derive(Debug, Clone, Copy)]
pub struct OpenAccount;

#[async_trait]
impl Activity for OpenAccount {
    const NAME: &'static str = "open-account";
    type Input = Application;
    type Output = Account;
    async fn run(&self, ctx: ActivityContext, app: Application) -> Result<Account, ActivityError> {
        remote_call().await;
        let n = app.application_id.bytes().map(u64::from).sum::<u64>();
        let account = Account {
            account_id: format!("acct-{}", app.application_id),
            iban: format!("DE89 3704 0044 0532 {:04} 00", n % 10_000),
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!("{} opened, IBAN {}", account.account_id, account.iban),
        );
        Ok(account)
    }
}

/// Closing an account: the core banking system times out on the first
/// attempt; the retry goes through. Compensates [`OpenAccount`].
#[derive(Debug, Clone, Copy)]
pub struct CloseAccount;

#[async_trait]
impl Activity for CloseAccount {
    const NAME: &'static str = "close-account";
    type Input = Account;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, account: Account) -> Result<(), ActivityError> {
        remote_call().await;
        if ctx.attempt() == 1 {
            activity_says(&ctx, Self::NAME, "core banking timed out");
            return Err(ActivityError::retryable("core banking: timeout"));
        }
        activity_says(&ctx, Self::NAME, format!("{} closed", account.account_id));
        Ok(())
    }
}

/// The card processor refuses applicants whose address it cannot verify.
#[derive(Debug, Clone)]
pub struct IssueCard {
    /// The applicants whose address cannot be verified.
    pub address_unverifiable: Vec<&'static str>,
}

#[async_trait]
impl Activity for IssueCard {
    const NAME: &'static str = "issue-card";
    type Input = CardRequest;
    type Output = Card;
    async fn run(&self, ctx: ActivityContext, req: CardRequest) -> Result<Card, ActivityError> {
        remote_call().await;
        if self.address_unverifiable.contains(&req.applicant.as_str()) {
            activity_says(
                &ctx,
                Self::NAME,
                "card processor: address verification failed",
            );
            return Err(ActivityError::non_retryable(format!(
                "card processor refused {}: address verification failed",
                req.applicant
            ))
            .with_kind("address-verification"));
        }
        let card = Card {
            card_id: format!("card-{}", req.account.account_id),
            last4: format!(
                "{:04}",
                req.account
                    .account_id
                    .bytes()
                    .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
                    % 10_000
            ),
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "card ending {} issued for {}",
                card.last4, req.account.account_id
            ),
        );
        Ok(card)
    }
}

/// Tells the applicant.
#[derive(Debug, Clone, Copy)]
pub struct NotifyApplicant;

#[async_trait]
impl Activity for NotifyApplicant {
    const NAME: &'static str = "notify-applicant";
    type Input = Message;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, m: Message) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(&ctx, Self::NAME, format!("to {}: \"{}\"", m.to, m.text));
        Ok(())
    }
}

// ----- the workflow -----

const STEP_TIMEOUT: Duration = Duration::from_secs(2);

fn step_retry() -> RetryPolicy {
    RetryPolicy::exponential()
        .initial_interval(Duration::from_millis(200))
        .max_attempts(5)
}

/// Compensations never give up: an account must not stay open.
fn compensation_retry() -> RetryPolicy {
    RetryPolicy::exponential()
        .initial_interval(Duration::from_millis(250))
        .max_interval(Duration::from_secs(5))
}

/// Who decided, and what.
struct Decision {
    verdict: Verdict,
    decided_by: String,
    why: String,
}

/// The model decides when it is confident and the answer is clear;
/// everything else goes to a person.
async fn decide(
    ctx: &WorkflowContext,
    app: &Application,
    credit: &CreditReport,
    score: &RiskScore,
) -> Result<Decision, WorkflowError> {
    if score.confidence >= CONFIDENT && score.default_risk < 0.2 {
        return Ok(Decision {
            verdict: Verdict::Approve,
            decided_by: format!("{} (automatic)", score.model),
            why: "low risk, high confidence".into(),
        });
    }
    if score.confidence >= CONFIDENT && score.default_risk > 0.6 {
        return Ok(Decision {
            verdict: Verdict::Reject,
            decided_by: format!("{} (automatic)", score.model),
            why: "high risk, high confidence".into(),
        });
    }
    let pace = app.pace;
    narrate(
        ctx,
        format!(
            "model unsure (confidence {:.0}%): {UNDERWRITER} decides, within {:?}",
            score.confidence * 100.0,
            pace.underwriter_deadline()
        ),
    );
    let decision = ctx
        .human_task::<Verdict>("underwriting-review")
        .assignee(UNDERWRITER)
        .form(&UnderwritingForm {
            applicant: app.applicant.clone(),
            amount_eur: app.amount_eur,
            bureau_score: credit.bureau_score,
            default_risk: score.default_risk,
            confidence: score.confidence,
            reasons: score.reasons.clone(),
        })
        .deadline(pace.underwriter_deadline())
        .remind_every(pace.remind_every())
        .escalate_to([(CREDIT_MANAGER, pace.manager_deadline())])
        .notify_with::<NotifyUnderwriter>()
        .notify_options(ActivityOptions {
            start_to_close: Some(STEP_TIMEOUT),
            schedule_to_close: Some(Duration::from_secs(30)),
            heartbeat_timeout: None,
            retry: step_retry(),
        })
        .fallback(Verdict::Reject)
        .await?;
    let why = if decision.fallback {
        "nobody reviewed it in time".to_owned()
    } else {
        decision.comment.clone().unwrap_or_default()
    };
    Ok(Decision {
        verdict: decision.value,
        decided_by: decision.decided_by,
        why,
    })
}

/// Reserves the credit line, opens the account and issues the card,
/// registering how to undo each step as it succeeds.
async fn provision(
    ctx: &WorkflowContext,
    app: &Application,
    saga: &mut Saga,
) -> Result<(Account, Card), ActivityFailed> {
    let reservation = ctx
        .activity::<ReserveCreditLine>(app.clone())
        .start_to_close(STEP_TIMEOUT)
        .retry(step_retry())
        .await?;
    saga.add_named("release the credit reservation", move |ctx| async move {
        ctx.activity::<ReleaseCreditReservation>(reservation)
            .start_to_close(STEP_TIMEOUT)
            .retry(compensation_retry())
            .await
            .map(drop)
    });
    let account = ctx
        .activity::<OpenAccount>(app.clone())
        .start_to_close(STEP_TIMEOUT)
        .retry(step_retry())
        .await?;
    let opened = account.clone();
    saga.add_named("close the account", move |ctx| async move {
        ctx.activity::<CloseAccount>(opened)
            .start_to_close(STEP_TIMEOUT)
            .retry(compensation_retry())
            .await
            .map(drop)
    });
    let card = ctx
        .activity::<IssueCard>(CardRequest {
            applicant: app.applicant.clone(),
            account: account.clone(),
        })
        .start_to_close(STEP_TIMEOUT)
        .retry(step_retry().non_retryable("address-verification"))
        .await?;
    Ok((account, card))
}

async fn tell(ctx: &WorkflowContext, app: &Application, text: String) -> Result<(), WorkflowError> {
    ctx.activity::<NotifyApplicant>(Message {
        to: app.email.clone(),
        text,
    })
    .start_to_close(STEP_TIMEOUT)
    .retry(step_retry())
    .await?;
    Ok(())
}

/// Takes [`AmendAmount`] updates: refused once `decided` is set or for an
/// amount that is not positive; accepted ones set `amount`, which the
/// workflow reads for every later step, and answer with the new terms.
fn accept_amendments(
    ctx: &WorkflowContext,
    applicant: &str,
    amount: Rc<Cell<u64>>,
    decided: Rc<Cell<bool>>,
) {
    let (c, applicant) = (ctx.clone(), applicant.to_owned());
    ctx.on_update::<AmendAmount, _, _, _>(
        move |amendment| {
            if decided.get() {
                Err("the application was already decided; the amount can no longer change".into())
            } else if amendment.amount_eur <= 0 {
                Err(format!(
                    "the amount must be positive, got {} EUR",
                    amendment.amount_eur
                ))
            } else {
                Ok(())
            }
        },
        move |amendment| {
            let (amount, c, applicant) = (amount.clone(), c.clone(), applicant.clone());
            async move {
                // The validator let only positive amounts through.
                let new = u64::try_from(amendment.amount_eur)
                    .map_err(|_| WorkflowError::new("amount", "the amount must be positive"))?;
                let was = amount.replace(new);
                narrate(
                    &c,
                    format!("{applicant} amends the amount from {was} to {new} EUR"),
                );
                Ok(LoanTerms::for_amount(new))
            }
        },
    );
}

/// The loan-approval workflow: documents, credit check and risk score;
/// an automatic or human decision; provisioning as a saga; the applicant
/// told either way.
#[derive(Debug, Clone, Copy)]
pub struct LoanApproval;

impl Workflow for LoanApproval {
    const NAME: &'static str = "loan-approval";
    type Input = Application;
    type Output = LoanOutcome;

    async fn run(ctx: WorkflowContext, app: Application) -> Result<LoanOutcome, WorkflowError> {
        narrate(
            &ctx,
            format!("{} applies for {} EUR", app.applicant, app.amount_eur),
        );
        let amount = Rc::new(Cell::new(app.amount_eur));
        let decided = Rc::new(Cell::new(false));
        accept_amendments(&ctx, &app.applicant, amount.clone(), decided.clone());
        // Each step takes the application with the amount as amended so far.
        let current = || Application {
            amount_eur: amount.get(),
            ..app.clone()
        };

        let documents = ctx
            .activity::<CollectDocuments>(current())
            .start_to_close(STEP_TIMEOUT)
            .retry(step_retry())
            .await?;
        let credit = ctx
            .activity::<CreditCheck>(current())
            .start_to_close(STEP_TIMEOUT)
            .retry(step_retry())
            .await?;
        let score = ctx
            .activity::<AiRiskScore>(RiskInput {
                application: current(),
                documents,
                credit: credit.clone(),
            })
            .start_to_close(STEP_TIMEOUT)
            .retry(step_retry())
            .await?;

        let decision = decide(&ctx, &current(), &credit, &score).await?;
        // From here on the amount is final: amendments are refused.
        decided.set(true);
        let app = current();
        narrate(
            &ctx,
            format!(
                "{:?} by {}: {}",
                decision.verdict, decision.decided_by, decision.why
            ),
        );
        if decision.verdict == Verdict::Reject {
            tell(
                &ctx,
                &app,
                format!(
                    "we cannot offer you this loan at the moment ({})",
                    decision.why
                ),
            )
            .await?;
            return Ok(LoanOutcome::Rejected {
                decided_by: decision.decided_by,
                reason: decision.why,
            });
        }

        let mut saga = Saga::new();
        match provision(&ctx, &app, &mut saga).await {
            Ok((account, card)) => {
                tell(
                    &ctx,
                    &app,
                    format!(
                        "approved: {} EUR; your account {} and card ending {} are ready",
                        app.amount_eur, account.iban, card.last4
                    ),
                )
                .await?;
                Ok(LoanOutcome::Approved {
                    decided_by: decision.decided_by,
                    iban: account.iban,
                    card: card.card_id,
                })
            }
            Err(failed) => {
                narrate(
                    &ctx,
                    format!(
                        "provisioning failed ({}); undoing {} step(s), newest first",
                        failed.failure,
                        saga.len()
                    ),
                );
                let report = saga.compensate(&ctx).await;
                narrate(&ctx, &report);
                tell(
                    &ctx,
                    &app,
                    "your loan was approved but we could not issue your card; nothing was \
                     opened or reserved in your name, our team will call you"
                        .into(),
                )
                .await?;
                Ok(LoanOutcome::ProvisioningFailed {
                    decided_by: decision.decided_by,
                    error: failed.failure.to_string(),
                    undone: report.to_string(),
                })
            }
        }
    }
}

// ----- what runs it -----

/// Registers [`LoanApproval`] and its activities, configured as in the
/// example ([`bureau`]; the card processor cannot verify cy's address).
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    let bureau = bureau();
    builder
        .workflow::<LoanApproval>()
        .activity(CollectDocuments(bureau.clone()))
        .activity(CreditCheck(bureau.clone()))
        .activity(AiRiskScore(bureau))
        .activity(NotifyUnderwriter)
        .activity(ReserveCreditLine)
        .activity(ReleaseCreditReservation)
        .activity(OpenAccount)
        .activity(CloseAccount)
        .activity(IssueCard {
            address_unverifiable: vec!["cy"],
        })
        .activity(NotifyApplicant)
}

/// Starts a worker on `store` with everything [`register`] registers.
/// Must be called within a tokio runtime.
pub fn start_worker(store: Store) -> Worker {
    register(Worker::builder(store)).start()
}

/// A replayer with this example's workflow type, for `refrain replay` and
/// replay tests.
pub fn replayer() -> Replayer {
    Replayer::new().workflow::<LoanApproval>()
}

/// The example's three applications, with waits `pace`: `loan-ada`,
/// `loan-bo` ([`BO`]) and `loan-cy`.
pub fn applications(pace: Pace) -> Vec<Application> {
    [("ada", 12_000), ("bo", 8_000), ("cy", 5_000)]
        .into_iter()
        .map(|(who, amount)| Application {
            application_id: format!("loan-{who}"),
            applicant: who.into(),
            email: format!("{who}@mail.example"),
            amount_eur: amount,
            pace,
        })
        .collect()
}

/// The application the model is unsure about: a person decides it.
pub const BO: &str = "loan-bo";

/// The amount bo asks for instead, while underwriter-1 has the review.
pub const BO_AMENDED_EUR: u64 = 6_000;

/// What the outside systems know about ada, bo and cy: ada and cy score
/// low risk with high confidence, bo's thin file leaves the model unsure.
pub fn bureau() -> Bureau {
    let score = |risk, confidence, reasons: &[&str]| RiskScore {
        default_risk: risk,
        confidence,
        model: "risk-model-v7".into(),
        reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
    };
    Bureau {
        documents: BTreeMap::from([
            (
                "ada",
                Documents {
                    payslips: 6,
                    identity_verified: true,
                },
            ),
            (
                "bo",
                Documents {
                    payslips: 6,
                    identity_verified: true,
                },
            ),
            (
                "cy",
                Documents {
                    payslips: 3,
                    identity_verified: true,
                },
            ),
        ]),
        credit: BTreeMap::from([
            (
                "ada",
                CreditReport {
                    bureau_score: 812,
                    years_of_history: 14,
                },
            ),
            (
                "bo",
                CreditReport {
                    bureau_score: 655,
                    years_of_history: 1,
                },
            ),
            (
                "cy",
                CreditReport {
                    bureau_score: 780,
                    years_of_history: 9,
                },
            ),
        ]),
        risk: BTreeMap::from([
            (
                "ada",
                score(0.04, 0.94, &["long clean history", "stable income"]),
            ),
            (
                "bo",
                score(
                    0.31,
                    0.58,
                    &["thin credit file (1 year)", "stable income for 6 years"],
                ),
            ),
            ("cy", score(0.09, 0.88, &["clean history"])),
        ]),
    }
}

/// What the example plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// What underwriter-1 decides on loan-bo, once bo has amended the
    /// amount; `None`: nobody decides (neither underwriter-1 nor the
    /// credit manager, and bo does not amend), and the application is
    /// declined once every deadline has passed.
    pub underwriter: Option<Verdict>,
    /// The applications' waits.
    pub pace: Pace,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            underwriter: Some(Verdict::Approve),
            pace: Pace::EXAMPLE,
        }
    }
}

/// Runs the example's [`applications`] one after the other, so that the
/// stories do not interleave: starts each (or resumes the run a killed
/// process left open, or finds it already closed), plays bo and
/// underwriter-1 on loan-bo (bo amends the amount while the review waits,
/// then underwriter-1 decides), and prints the outcome and the history. A
/// worker from [`start_worker`] must be running on the client's store.
///
/// Returns each application's id and how it ended: its outcome, or the
/// failure of its workflow.
///
/// # Errors
/// Storage errors, a task form that does not decode, and an amendment
/// answered other than by acceptance or refusal.
pub async fn run(
    client: &Client,
    scenario: Scenario,
) -> Result<Vec<(String, Result<LoanOutcome, Failure>)>> {
    let mut ended = Vec::new();
    for app in applications(scenario.pace) {
        println!();
        let id = app.application_id.clone();
        let (handle, begun) = start_or_resume::<LoanApproval>(client, &id, app).await?;
        if id == BO && !matches!(begun, Begun::AlreadyClosed(_)) {
            match scenario.underwriter {
                Some(verdict) => {
                    if let Some(task) = review_waiting(client, &id).await? {
                        applicant_amends(client, &id).await?;
                        underwriter_decides(client, &task, verdict).await?;
                    }
                }
                None => println!(
                    "[main] {id}: {UNDERWRITER} and {CREDIT_MANAGER} are both away; nobody will review it"
                ),
            }
        }
        let outcome = match handle.result().await {
            Ok(outcome) => {
                match &outcome {
                    LoanOutcome::Approved {
                        decided_by,
                        iban,
                        card,
                    } => println!("[main] {id}: APPROVED by {decided_by}: account {iban}, {card}"),
                    LoanOutcome::Rejected { decided_by, reason } => {
                        println!("[main] {id}: REJECTED by {decided_by}: {reason}")
                    }
                    LoanOutcome::ProvisioningFailed {
                        decided_by,
                        error,
                        undone,
                    } => {
                        println!(
                            "[main] {id}: approved by {decided_by} but PROVISIONING FAILED: {error}"
                        );
                        println!("[main] {id}: {undone}");
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
        print_history(client, &id)?;
        ended.push((id, outcome));
    }
    Ok(ended)
}

/// Waits until the review of `id` is in underwriter-1's task list and the
/// email about it has gone out, and returns it; `None` if the run closed
/// first (a rerun after a crash finds a review already decided gone from
/// the list) or after a minute.
///
/// # Errors
/// Storage errors.
pub async fn review_waiting(client: &Client, id: &str) -> Result<Option<HumanTask>> {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let queued = client
            .list_human_tasks(UNDERWRITER)?
            .into_iter()
            .find(|t| t.workflow_id.as_str() == id);
        if let Some(task) = queued.filter(|_| emailed(client, id, UNDERWRITER).unwrap_or(false)) {
            return Ok(Some(task));
        }
        if !client.describe(id)?.status().is_open() || Instant::now() > give_up {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Plays the applicant of `id` while their application waits for review:
/// they first send a negative amount by mistake, which the workflow
/// refuses without recording anything, then lower the amount to
/// [`BO_AMENDED_EUR`], which it accepts, answering with the new terms.
/// Each request has a fixed update id, so a rerun after a crash gets the
/// same answers and applies nothing twice.
///
/// Returns the accepted amendment's terms.
///
/// # Errors
/// Storage errors, or an answer other than the refusal and the
/// acceptance.
pub async fn applicant_amends(client: &Client, id: &str) -> Result<LoanTerms> {
    let typo = format!("{id}/amend-1");
    let amendment = Amendment { amount_eur: -6_000 };
    println!(
        "[main] {id}: the applicant asks to change the amount to {} EUR (a minus sign typed by mistake)",
        amendment.amount_eur
    );
    match client
        .update_with_id::<AmendAmount>(id, &typo, &amendment)
        .await
    {
        Err(ClientError::UpdateRejected { reason, .. }) => {
            let recorded = client.history(id)?.iter().any(
                |e| matches!(e, Event::UpdateAccepted { update_id, .. } if *update_id == typo),
            );
            println!(
                "[main] {id}: REFUSED: {reason}; {}",
                if recorded {
                    "yet it is in the history!"
                } else {
                    "the history holds no trace of it"
                }
            );
        }
        Ok(terms) => anyhow::bail!("{id}: a negative amount was accepted: {terms}"),
        Err(e) => return Err(e.into()),
    }

    let amendment = Amendment {
        amount_eur: i64::try_from(BO_AMENDED_EUR)?,
    };
    println!(
        "[main] {id}: the applicant asks to change the amount to {} EUR instead",
        amendment.amount_eur
    );
    let terms = client
        .update_with_id::<AmendAmount>(id, &format!("{id}/amend-2"), &amendment)
        .await?;
    println!("[main] {id}: ACCEPTED: {terms}");
    Ok(terms)
}

/// Plays underwriter-1 on a review from [`review_waiting`]: they read the
/// form and decide. Rerun after a crash, a decision already recorded is
/// refused without writing anything.
///
/// # Errors
/// Storage errors, and a task form that does not decode.
pub async fn underwriter_decides(
    client: &Client,
    task: &HumanTask,
    verdict: Verdict,
) -> Result<()> {
    let form: UnderwritingForm = task.form()?.expect("the review has a form");
    println!(
        "[main] {UNDERWRITER}'s task list: {} for {}: {} EUR as first asked, bureau score {}, model says {:.0}% risk at {:.0}% confidence ({})",
        task.task,
        form.applicant,
        form.amount_eur,
        form.bureau_score,
        form.default_risk * 100.0,
        form.confidence * 100.0,
        form.reasons.join("; ")
    );
    let comment = match verdict {
        Verdict::Approve => {
            "thin file, but six years with the same employer, and a lower amount now; approve"
        }
        Verdict::Reject => "income does not cover the instalments; reject",
    };
    println!("[main] {UNDERWRITER} decides {verdict:?}: \"{comment}\"");
    match client
        .decide_human_task(&task.reference(), &verdict, UNDERWRITER, Some(comment))
        .await
    {
        Ok(()) | Err(ClientError::HumanTaskClosed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether an email to `who` about the task has gone out (its activity
/// completed).
fn emailed(client: &Client, id: &str, who: &str) -> Result<bool> {
    let mut emails = Vec::new();
    for e in client.history(id)? {
        match e {
            Event::ActivityScheduled {
                cmd,
                activity_type,
                input,
                ..
            } if activity_type == NotifyUnderwriter::NAME => {
                let notice: HumanTaskNotice = serde_json::from_slice(input.as_bytes())?;
                if notice.assignee == who {
                    emails.push(cmd);
                }
            }
            Event::ActivityCompleted { cmd, .. } if emails.contains(&cmd) => return Ok(true),
            _ => {}
        }
    }
    Ok(false)
}
