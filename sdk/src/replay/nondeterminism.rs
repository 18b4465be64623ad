//! The report given when workflow code no longer matches its history.

use refrain_history::{Callsite, Event, RunId, WorkflowId};
use std::fmt;

/// One command, as recorded or as produced, reduced to what identifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSummary {
    /// Event kind (`ActivityScheduled`, `TimerStarted`, ...).
    pub kind: &'static str,
    /// Activity type for activities, workflow type for child workflows,
    /// task name for human tasks, update name and id for updates, `None`
    /// otherwise.
    pub name: Option<String>,
    /// CRC32C of the input, for activities and side effects.
    pub input_digest: Option<u32>,
    /// Command number, where the kind has one.
    pub cmd: Option<u32>,
    /// Where in source code it was issued.
    pub callsite: Option<Callsite>,
}

impl CommandSummary {
    pub(crate) fn of(event: &Event, callsite: Option<&Callsite>) -> Self {
        let (name, input_digest, cmd, recorded_site) = match event {
            Event::ActivityScheduled {
                cmd,
                activity_type,
                input,
                callsite,
                ..
            } => (
                Some(activity_type.clone()),
                Some(input.digest()),
                Some(cmd.0),
                Some(callsite),
            ),
            Event::TimerStarted { cmd, callsite, .. } => (None, None, Some(cmd.0), Some(callsite)),
            Event::TimerCancelled { cmd }
            | Event::ActivityCancelRequested { cmd }
            | Event::ChildWorkflowCancelRequested { cmd } => (None, None, Some(cmd.0), None),
            Event::ChildWorkflowStarted {
                cmd,
                workflow_type,
                input,
                callsite,
                ..
            } => (
                Some(workflow_type.clone()),
                Some(input.digest()),
                Some(cmd.0),
                Some(callsite),
            ),
            Event::SideEffectRecorded {
                cmd,
                value,
                callsite,
            } => (None, Some(value.digest()), Some(cmd.0), Some(callsite)),
            Event::HumanTaskAssigned {
                cmd,
                task,
                form,
                callsite,
                ..
            } => (
                Some(task.clone()),
                form.as_ref().map(|f| f.digest()),
                Some(cmd.0),
                Some(callsite),
            ),
            Event::HumanTaskReminded { cmd, .. }
            | Event::HumanTaskEscalated { cmd, .. }
            | Event::HumanTaskClosed { cmd, .. } => (None, None, Some(cmd.0), None),
            Event::UpdateAccepted {
                update_id,
                name,
                input,
            } => (
                Some(format!("{name} (update {update_id})")),
                Some(input.digest()),
                None,
                None,
            ),
            Event::UpdateCompleted { update_id, .. } | Event::UpdateFailed { update_id, .. } => {
                (Some(format!("update {update_id}")), None, None, None)
            }
            _ => (None, None, None, None),
        };
        CommandSummary {
            kind: event.kind(),
            name,
            input_digest,
            cmd,
            callsite: callsite
                .cloned()
                .or_else(|| recorded_site.filter(|c| !c.file.is_empty()).cloned()),
        }
    }

    /// Whether `other` is the same command for replay purposes: same kind,
    /// same name (activity type, child workflow type, task, update) and
    /// same command number. The number is how recorded results find their
    /// command: one numbered differently would be handed another
    /// command's result, or none. Inputs are deliberately not compared:
    /// an input that changes shape (a new optional field) must not break
    /// every running workflow, so the digest is informational only.
    pub fn matches(&self, other: &CommandSummary) -> bool {
        self.kind == other.kind && self.name == other.name && self.cmd == other.cmd
    }

    /// Whether `other` is this command under another command number.
    fn renumbered(&self, other: &CommandSummary) -> bool {
        self.kind == other.kind && self.name == other.name && self.cmd != other.cmd
    }
}

impl fmt::Display for CommandSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind)?;
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        if let Some(cmd) = self.cmd {
            write!(f, " (cmd {cmd})")?;
        }
        if let Some(d) = self.input_digest {
            write!(f, " input#{d:08x}")?;
        }
        if let Some(site) = &self.callsite {
            write!(f, " at {site}")?;
        }
        Ok(())
    }
}

/// What kind of divergence was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DivergenceKind {
    /// The code produced a different command than history recorded: of
    /// another kind, another name, or under another command number.
    Mismatch,
    /// History recorded a command the code no longer produces.
    Missing,
    /// The code produced a command history does not have.
    Unexpected,
    /// The code did something that cannot be replayed (a tokio timer, a
    /// thread, a foreign wake); `expected`/`produced` may be empty.
    NonDeterministicCall(String),
}

/// Workflow code diverged from its recorded history. The history is left
/// untouched; the activation is retried until fixed code is deployed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NondeterminismError {
    /// Workflow type.
    pub workflow_type: String,
    /// Workflow id.
    pub workflow_id: WorkflowId,
    /// Run.
    pub run: RunId,
    /// 1-based activation in which it diverged.
    pub activation: u64,
    /// History position (event seq) of the recorded command, or where the
    /// produced one would have gone.
    pub position: u64,
    /// What kind of divergence.
    pub kind: DivergenceKind,
    /// What history recorded.
    pub expected: Option<CommandSummary>,
    /// What the code produced.
    pub produced: Option<CommandSummary>,
    /// How many later commands of the same activation also differ.
    pub later_differences: usize,
}

impl NondeterminismError {
    /// Whether the recorded and the produced command differ only in their
    /// command numbers.
    fn renumbered(&self) -> bool {
        match (&self.expected, &self.produced) {
            (Some(e), Some(p)) => e.renumbered(p),
            _ => false,
        }
    }

    /// The suggestion printed with the report.
    pub fn hint(&self) -> String {
        match &self.kind {
            DivergenceKind::NonDeterministicCall(_) => "use the replay-safe ctx helpers instead: ctx.sleep for tokio::time::sleep, ctx.now for SystemTime::now, ctx.random for rand, ctx.side_effect for anything else computed once; never spawn tasks or threads from workflow code".into(),
            _ => "if this change is intended, guard it so that runs started before it keep the old path: `if ctx.patched(\"my-change\") { new code } else { old code }`; otherwise deploy code that matches the history".into(),
        }
    }
}

impl fmt::Display for NondeterminismError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "nondeterminism in workflow {} ({}, {}) at history position {}, activation {}:",
            self.workflow_id, self.workflow_type, self.run, self.position, self.activation
        )?;
        match &self.kind {
            DivergenceKind::Mismatch if self.renumbered() => writeln!(
                f,
                "  the code numbered a command differently than history recorded (a call that takes a command number without recording a command, such as an activity whose input does not encode, was added or removed before it)"
            )?,
            DivergenceKind::Mismatch => writeln!(
                f,
                "  the code produced a different command than history recorded"
            )?,
            DivergenceKind::Missing => writeln!(
                f,
                "  history recorded a command that the code no longer produces"
            )?,
            DivergenceKind::Unexpected => writeln!(
                f,
                "  the code produced a command that history does not have"
            )?,
            DivergenceKind::NonDeterministicCall(what) => writeln!(f, "  {what}")?,
        }
        match &self.expected {
            Some(e) => writeln!(f, "  recorded: {e}")?,
            None => writeln!(f, "  recorded: nothing")?,
        }
        match &self.produced {
            Some(p) => writeln!(f, "  produced: {p}")?,
            None => writeln!(f, "  produced: nothing")?,
        }
        if self.later_differences > 0 {
            writeln!(
                f,
                "  {} later command(s) of this activation also differ",
                self.later_differences
            )?;
        }
        write!(f, "  hint: {}", self.hint())
    }
}

impl std::error::Error for NondeterminismError {}
