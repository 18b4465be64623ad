//! What the worker reports to the `metrics` facade: per workflow task and
//! per activity attempt (names and meanings in
//! [`refrain_history::telemetry`]).

use metrics::Label;
use refrain_history::telemetry::{self as names, counter, histogram};
use refrain_history::{ActivationCommit, Event, EventSeq};
use std::time::{Duration, Instant};

/// The reports one workflow task owes once its commit settles: its
/// duration, and whether it started or closed its run.
pub(crate) struct TaskReport {
    labels: &'static [Label],
    began: Instant,
    started: bool,
    closed: Option<&'static str>,
}

impl TaskReport {
    /// The report of `commit`, a task of a run of the type whose labels
    /// are `labels`, begun at `began`. `None` for a type this worker does
    /// not run (the commit is then the worker's own, not the code's).
    pub(crate) fn of(
        labels: Option<&'static [Label]>,
        commit: &ActivationCommit,
        began: Instant,
    ) -> Option<TaskReport> {
        let closed = match commit.events.last() {
            Some(Event::WorkflowCompleted { .. }) => Some(names::WORKFLOW_COMPLETIONS),
            Some(Event::WorkflowFailed { .. }) => Some(names::WORKFLOW_FAILURES),
            _ => None,
        };
        Some(TaskReport {
            labels: labels?,
            began,
            started: commit.expected_last_seq == EventSeq(1),
            closed,
        })
    }

    /// Reports the task, whose commit went through when `committed`.
    pub(crate) fn settled(self, committed: bool) {
        histogram(names::WORKFLOW_TASK_SECONDS, self.labels)
            .record(self.began.elapsed().as_secs_f64());
        if !committed {
            return;
        }
        if self.started {
            counter(names::WORKFLOW_STARTS, self.labels).increment(1);
        }
        if let Some(name) = self.closed {
            counter(name, self.labels).increment(1);
        }
    }
}

/// Reports one activity attempt of the type labelled `labels`, which ran
/// for `took` and failed when `failed`.
pub(crate) fn attempt(labels: &'static [Label], took: Duration, failed: bool) {
    counter(names::ACTIVITY_ATTEMPTS, labels).increment(1);
    histogram(names::ACTIVITY_ATTEMPT_SECONDS, labels).record(took.as_secs_f64());
    if failed {
        counter(names::ACTIVITY_FAILURES, labels).increment(1);
    }
}
