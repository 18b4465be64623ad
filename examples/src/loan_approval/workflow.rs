//! The workflow: who decides and how, provisioning as a saga, telling the applicant.

use super::amendment::accept_amendments;
use super::{
    Account, AiRiskScore, Application, Card, CardRequest, CloseAccount, CollectDocuments,
    CreditCheck, CreditReport, IssueCard, LoanOutcome, Message, NotifyApplicant, NotifyUnderwriter,
    OpenAccount, ReleaseCreditReservation, ReserveCreditLine, RiskInput, RiskScore,
    UnderwritingForm, Verdict,
};
use crate::narrate;
use refrain::{
    ActivityFailed, ActivityOptions, RetryPolicy, Saga, Workflow, WorkflowContext, WorkflowError,
};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

// ----- who decides -----

/// Who reviews the applications the model is unsure about.
pub const UNDERWRITER: &str = "underwriter-1";
/// Who gets a review the underwriter did not decide in time.
pub const CREDIT_MANAGER: &str = "credit-manager";
/// Below this the model's score only advises; a person decides.
pub const CONFIDENT: f64 = 0.8;

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
    saga.add_activity::<ReleaseCreditReservation>(reservation)
        .named("release the credit reservation")
        .start_to_close(STEP_TIMEOUT)
        .retry(compensation_retry());
    let account = ctx
        .activity::<OpenAccount>(app.clone())
        .start_to_close(STEP_TIMEOUT)
        .retry(step_retry())
        .await?;
    saga.add_activity::<CloseAccount>(account.clone())
        .named("close the account")
        .start_to_close(STEP_TIMEOUT)
        .retry(compensation_retry());
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

/// The loan-approval workflow: documents, credit check and risk score;
/// an automatic or human decision; provisioning as a saga; the applicant
/// told either way.
#[derive(Debug, Clone, Copy)]
pub struct LoanApproval;

#[refrain::deterministic]
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
