//! Deciding a human task: as whoever holds the reference, or as the
//! assignee the caller checked, refused if the task moved on since.
//!
//! A service that lets only the current assignee decide checks the
//! assignee and then writes the decision. An escalation can fall between
//! the two; [`Client::decide_human_task_as_assignee`] hands the assignee it
//! checked to the store, which compares it in the transaction that records
//! the decision, so the earlier assignee's answer cannot land.

use super::HumanTaskRef;
use crate::client::{Client, ClientError};
use crate::payload;
use refrain_history::HumanTaskDecision;
use serde::Serialize;

impl Client {
    /// Records `decided_by`'s decision (and `comment`, why) on an open
    /// human task and returns once it is durable; the waiting workflow
    /// carries on with it. Anyone holding the reference may decide (an
    /// escalation does not stop the earlier assignee); the history keeps
    /// who did, when and why. To let only the current assignee decide, use
    /// [`Client::decide_human_task_as_assignee`].
    ///
    /// # Errors
    /// `HumanTaskClosed` if it was already decided or closed, or its
    /// workflow ended (nothing is written: a decision is recorded at most
    /// once); `HumanTaskNotFound`; `HumanTaskAmbiguous` for a
    /// [`HumanTaskRef::Named`] that matches several open tasks; `Payload`,
    /// `PayloadTooLarge`, storage errors.
    pub async fn decide_human_task<D: Serialize + ?Sized>(
        &self,
        task: &HumanTaskRef,
        decision: &D,
        decided_by: &str,
        comment: Option<&str>,
    ) -> Result<(), ClientError> {
        self.record_decision(task, None, decision, decided_by, comment)
            .await
    }

    /// [`Client::decide_human_task`], made as `assignee` (a person's name
    /// or a group's, the one whose right to decide the caller checked):
    /// recorded only if the task is still assigned to `assignee` when the
    /// store writes it. If it escalated to someone else in between, nothing
    /// is written and the error names the new assignee.
    ///
    /// # Errors
    /// `HumanTaskReassigned` if the task is someone else's now; those of
    /// [`Client::decide_human_task`].
    pub async fn decide_human_task_as_assignee<D: Serialize + ?Sized>(
        &self,
        task: &HumanTaskRef,
        assignee: &str,
        decision: &D,
        decided_by: &str,
        comment: Option<&str>,
    ) -> Result<(), ClientError> {
        self.record_decision(task, Some(assignee), decision, decided_by, comment)
            .await
    }

    /// Claims a human task assigned to group `group` for `claimed_by`, a
    /// member of it (whether they are is the caller's to check, as who may
    /// decide is): the task leaves the other members' lists for
    /// `claimed_by`'s, and the history records `HumanTaskClaimed` with who
    /// and when. Returns once it is durable.
    ///
    /// After a claim the task is `claimed_by`'s as if assigned to them: a
    /// decision made as the group is refused with `HumanTaskReassigned`,
    /// and an escalation (its deadline is unchanged) moves it on from the
    /// claimer.
    ///
    /// # Errors
    /// `HumanTaskReassigned` naming who has it if the task is no longer
    /// `group`'s (another member claimed it first, or it escalated);
    /// `HumanTaskClosed`, `HumanTaskNotFound`, `HumanTaskAmbiguous` as for
    /// a decision; storage errors. Nothing is written on error.
    pub async fn claim_human_task(
        &self,
        task: &HumanTaskRef,
        group: &str,
        claimed_by: &str,
    ) -> Result<(), ClientError> {
        let (run, cmd) = self.resolve_human_task(task).await?;
        self.history_store()
            .claim_human_task(run, cmd, group, claimed_by)
            .await
            .map_err(|e| in_callers_terms(task, e.into()))
    }

    async fn record_decision<D: Serialize + ?Sized>(
        &self,
        task: &HumanTaskRef,
        expected_assignee: Option<&str>,
        decision: &D,
        decided_by: &str,
        comment: Option<&str>,
    ) -> Result<(), ClientError> {
        let (run, cmd) = self.resolve_human_task(task).await?;
        let decision = payload::encode("human task decision", decision)?;
        self.history_store()
            .decide_human_task(HumanTaskDecision {
                run,
                cmd,
                decision,
                decided_by: decided_by.to_owned(),
                comment: comment.map(str::to_owned),
                expected_assignee: expected_assignee.map(str::to_owned),
            })
            .await
            .map_err(|e| in_callers_terms(task, e.into()))?;
        Ok(())
    }
}

/// A store error about `task` named by the reference as the caller gave
/// it, not by the store's ids.
fn in_callers_terms(task: &HumanTaskRef, e: ClientError) -> ClientError {
    match e {
        ClientError::HumanTaskClosed { why, .. } => ClientError::HumanTaskClosed {
            task: task.to_string(),
            why,
        },
        ClientError::HumanTaskNotFound { .. } => ClientError::HumanTaskNotFound {
            task: task.to_string(),
        },
        ClientError::HumanTaskReassigned {
            expected, assignee, ..
        } => ClientError::HumanTaskReassigned {
            task: task.to_string(),
            expected,
            assignee,
        },
        other => other,
    }
}
