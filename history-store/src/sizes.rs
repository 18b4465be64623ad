//! What the payload limit (`StoreConfig::max_payload_bytes`) bounds in
//! each event: one table, read by the store, which refuses a write that
//! carries more, and by the worker, which closes a run whose command
//! carries more and names the command and the field.

use crate::event::{Event, Failure, Payload};

impl Event {
    /// The sizes the payload limit bounds in this event, each with the
    /// name a message gives it ("the input", "the result"); a slot with
    /// nothing in it has size 0. Names and ids that travel with a payload
    /// count with it. Allocates nothing: it runs for every event written.
    pub fn payload_sizes(&self) -> [(&'static str, usize); 2] {
        const NONE: (&str, usize) = ("", 0);
        let failure = |f: &Failure, also: usize| {
            [
                (
                    "the failure details",
                    f.details.as_ref().map_or(0, Payload::len),
                ),
                ("the failure message", f.message.len() + also),
            ]
        };
        match self {
            Event::WorkflowStarted { input, .. } | Event::ActivityScheduled { input, .. } => {
                [("the input", input.len()), NONE]
            }
            Event::ActivityCompleted { result, .. }
            | Event::WorkflowCompleted { result }
            | Event::ChildWorkflowCompleted { result, .. } => [("the result", result.len()), NONE],
            Event::ActivityFailed { failure: f, .. }
            | Event::WorkflowFailed { failure: f }
            | Event::ChildWorkflowFailed { failure: f, .. } => failure(f, 0),
            Event::SignalReceived { payload, .. } => [("the payload", payload.len()), NONE],
            Event::SideEffectRecorded { value, .. } => [("the value", value.len()), NONE],
            Event::WorkflowContinuedAsNew {
                input,
                carried_signals,
                ..
            } => [
                ("the input", input.len()),
                (
                    "the carried signals",
                    carried_signals.iter().map(|s| s.payload.len()).sum(),
                ),
            ],
            Event::PatchMarker { patch_id, .. } => [("the patch id", patch_id.len()), NONE],
            Event::WorkflowCancelRequested {
                reason,
                requested_by,
            } => [
                ("the reason", reason.len()),
                (
                    "the requester",
                    requested_by.as_ref().map_or(0, String::len),
                ),
            ],
            Event::WorkflowCancelled { reason } => [("the reason", reason.len()), NONE],
            Event::WorkflowTerminated {
                reason,
                terminated_by,
            } => [
                ("the reason", reason.len()),
                (
                    "who terminated",
                    terminated_by.as_ref().map_or(0, String::len),
                ),
            ],
            Event::ChildWorkflowStarted {
                workflow_type,
                workflow_id,
                input,
                ..
            } => [
                ("the input", input.len()),
                (
                    "the child's type and id",
                    workflow_type.len() + workflow_id.as_str().len(),
                ),
            ],
            Event::HumanTaskAssigned {
                task,
                assignee,
                form,
                escalations,
                ..
            } => [
                ("the form", form.as_ref().map_or(0, Payload::len)),
                (
                    "the task and assignees",
                    task.len()
                        + assignee.len()
                        + escalations.iter().map(|e| e.assignee.len()).sum::<usize>(),
                ),
            ],
            Event::HumanTaskReminded { assignee, .. } => [("the assignee", assignee.len()), NONE],
            Event::HumanTaskEscalated { from, to, .. } => {
                [("the assignees", from.len() + to.len()), NONE]
            }
            Event::HumanTaskDecided {
                decision,
                decided_by,
                comment,
                ..
            } => [
                ("the decision", decision.len()),
                (
                    "the decider and comment",
                    decided_by.len() + comment.as_ref().map_or(0, String::len),
                ),
            ],
            Event::HumanTaskClosed { reason, .. } => [("the reason", reason.len()), NONE],
            Event::HumanTaskClaimed {
                from, claimed_by, ..
            } => [
                ("the group and claimer", from.len() + claimed_by.len()),
                NONE,
            ],
            Event::UpdateRequested {
                update_id,
                name,
                input,
            }
            | Event::UpdateAccepted {
                update_id,
                name,
                input,
            } => [
                ("the input", input.len()),
                ("the update id and name", update_id.len() + name.len()),
            ],
            Event::UpdateCompleted { update_id, result } => [
                ("the result", result.len()),
                ("the update id", update_id.len()),
            ],
            Event::UpdateFailed {
                update_id,
                failure: f,
            } => failure(f, update_id.len()),
            Event::ActivationStarted { .. }
            | Event::TimerStarted { .. }
            | Event::TimerFired { .. }
            | Event::TimerCancelled { .. }
            | Event::ActivityCancelRequested { .. }
            | Event::ChildWorkflowCancelRequested { .. } => [NONE, NONE],
        }
    }
}
