//! The scenario runner: the applications in turn, this process playing bo
//! and underwriter-1, or bo alone while a person decides in the inbox.

use super::{
    applications, AmendAmount, Amendment, LoanApproval, LoanOutcome, LoanTerms, NotifyUnderwriter,
    Pace, UnderwritingForm, Verdict, BO, BO_AMENDED_EUR, CREDIT_MANAGER, UNDERWRITER,
};
use crate::{print_history, start_or_resume, Begun};
use anyhow::Result;
use refrain::{Activity, Client, ClientError, Event, Failure, HumanTask, HumanTaskNotice};
use std::time::{Duration, Instant};

/// What the example plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// Who decides loan-bo's review, and what.
    pub underwriter: Underwriter,
    /// The applications' waits.
    pub pace: Pace,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            underwriter: Underwriter::Decides(Verdict::Approve),
            pace: Pace::EXAMPLE,
        }
    }
}

/// Who decides loan-bo's review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Underwriter {
    /// This process plays underwriter-1 and decides this, once bo has
    /// amended the amount.
    Decides(Verdict),
    /// Nobody decides (neither underwriter-1 nor the credit manager, and bo
    /// does not amend), and the application is declined once every
    /// deadline has passed.
    Away,
    /// A person decides, in the inbox of the dashboard (`--serve`): this
    /// process plays bo's amendment, then waits for the decision as long
    /// as the pace allows ([`Pace::PERSON`] gives an hour).
    Person,
}

/// Runs the example's [`applications`] one after the other, so that the
/// stories do not interleave: starts each (or resumes the run a killed
/// process left open, or finds it already closed), plays bo and
/// underwriter-1 on loan-bo (bo amends the amount while the review waits,
/// then underwriter-1 decides, or a person does: [`Underwriter`]), and
/// waits for each to end, printing the outcome and the history. A
/// worker from [`start_worker`](super::start_worker) must be running on
/// the client's store.
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
                Underwriter::Decides(verdict) => {
                    if let Some(task) = review_waiting(client, &id).await? {
                        applicant_amends(client, &id).await?;
                        underwriter_decides(client, &task, verdict).await?;
                    }
                }
                Underwriter::Person => {
                    if review_waiting(client, &id).await?.is_some() {
                        applicant_amends(client, &id).await?;
                        println!(
                            "[main] {id}: waiting for {UNDERWRITER} to decide in the dashboard's inbox (log in with their access token)"
                        );
                    }
                }
                Underwriter::Away => println!(
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
        print_history(client, &id).await?;
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
            .list_human_tasks(UNDERWRITER)
            .await?
            .into_iter()
            .find(|t| t.workflow_id.as_str() == id);
        let queued = match queued {
            Some(task) if emailed(client, id, UNDERWRITER).await.unwrap_or(false) => Some(task),
            _ => None,
        };
        if let Some(task) = queued {
            return Ok(Some(task));
        }
        if !client.describe(id).await?.status().is_open() || Instant::now() > give_up {
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
            let recorded = client.history(id).await?.iter().any(
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
async fn emailed(client: &Client, id: &str, who: &str) -> Result<bool> {
    let mut emails = Vec::new();
    for e in client.history(id).await? {
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
