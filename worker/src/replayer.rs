//! [`Replayer`]: replays recorded histories through the current workflow
//! code, without a store, a worker or any activity, to prove that a code
//! change is safe for the runs already in flight.
//!
//! Export histories of production runs (`refrain export ID --out
//! tests/histories/ID.json`), check them into the repository, and add one
//! test:
//!
//! ```no_run
//! # use refrain::{Workflow, WorkflowContext, WorkflowError};
//! # struct OrderToCash;
//! # impl Workflow for OrderToCash {
//! #     const NAME: &'static str = "order-to-cash";
//! #     type Input = ();
//! #     type Output = ();
//! #     async fn run(_: WorkflowContext, _: ()) -> Result<(), WorkflowError> { Ok(()) }
//! # }
//! #[test]
//! fn recorded_histories_still_replay() {
//!     refrain_worker::Replayer::new()
//!         .workflow::<OrderToCash>()
//!         .assert_replays("tests/histories");
//! }
//! ```
//!
//! A divergence fails the test with the same [`NondeterminismError`]
//! report a worker would log in production: the history position, the
//! command recorded and the command produced, both source locations, and
//! how to guard the change with `ctx.patched`.

use refrain::history_file::{HistoryExport, HistoryFileError};
use refrain::replay::{ActivationError, ErasedWorkflow, WorkflowMachine, WorkflowType};
use refrain::{NondeterminismError, Workflow};
use refrain_history::{Event, RunId, WorkflowId};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Replays histories through registered workflow types.
#[derive(Clone, Default)]
pub struct Replayer {
    workflows: BTreeMap<String, Arc<dyn ErasedWorkflow>>,
}

impl fmt::Debug for Replayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replayer")
            .field("workflows", &self.workflow_types())
            .finish()
    }
}

/// What a successful replay went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayReport {
    /// The run's workflow id.
    pub workflow_id: WorkflowId,
    /// The run.
    pub run: RunId,
    /// Its workflow type.
    pub workflow_type: String,
    /// Events replayed, `WorkflowStarted` included.
    pub events: u64,
    /// Activations replayed.
    pub activations: u64,
    /// Whether the history ends the run (completed, failed, cancelled,
    /// continued as new, or terminated) and the code agreed.
    pub closed: bool,
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}): {} events in {} activations replayed, run {}",
            self.workflow_id,
            self.workflow_type,
            self.run,
            self.events,
            self.activations,
            if self.closed { "closed" } else { "still open" }
        )
    }
}

/// Why a history did not replay.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayError {
    /// The code no longer produces the recorded commands.
    Nondeterminism(Box<NondeterminismError>),
    /// Workflow code panicked during replay.
    Panicked {
        /// The run's workflow id.
        workflow_id: WorkflowId,
        /// The panic message.
        message: String,
    },
    /// The history is not a well-formed run history.
    InvalidHistory {
        /// Event position (seq).
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The history's workflow type is not registered in this replayer.
    UnknownWorkflowType {
        /// The type the history names.
        workflow_type: String,
        /// The types that are registered.
        registered: Vec<String>,
    },
    /// A history file or directory could not be read.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A history file could not be decoded.
    Decode {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: HistoryFileError,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Nondeterminism(e) => fmt::Display::fmt(e, f),
            ReplayError::Panicked {
                workflow_id,
                message,
            } => write!(f, "workflow {workflow_id} panicked during replay: {message}"),
            ReplayError::InvalidHistory { position, reason } => {
                write!(f, "invalid history at event {position}: {reason}")
            }
            ReplayError::UnknownWorkflowType {
                workflow_type,
                registered,
            } if registered.is_empty() => write!(
                f,
                "workflow type {workflow_type:?} is not registered: no workflow types are registered in this replayer (add them with Replayer::new().workflow::<W>())"
            ),
            ReplayError::UnknownWorkflowType {
                workflow_type,
                registered,
            } => write!(
                f,
                "workflow type {workflow_type:?} is not registered in this replayer (registered: {}); add it with .workflow::<W>()",
                registered.join(", ")
            ),
            ReplayError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ReplayError::Decode { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplayError::Nondeterminism(e) => Some(e.as_ref()),
            ReplayError::Io { source, .. } => Some(source),
            ReplayError::Decode { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Replayer {
    /// A replayer with no workflow types.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers workflow type `W` (by `W::NAME`, as a worker does).
    pub fn workflow<W: Workflow>(mut self) -> Self {
        self.workflows
            .insert(W::NAME.to_owned(), Arc::new(WorkflowType::<W>::new()));
        self
    }

    /// The registered workflow type names, sorted.
    pub fn workflow_types(&self) -> Vec<&str> {
        self.workflows.keys().map(String::as_str).collect()
    }

    /// Whether no workflow type is registered.
    pub fn is_empty(&self) -> bool {
        self.workflows.is_empty()
    }

    /// Replays `history` through the registered code: builds the workflow
    /// instance from `events[0]` and replays `events[1..]`, checking every
    /// command against the record. Runs no activity and writes nothing.
    ///
    /// Workflow code runs on a fresh thread outside any async runtime,
    /// exactly as on a worker, so `tokio::time::sleep` and friends are
    /// reported as nondeterminism here too.
    ///
    /// # Errors
    /// `Nondeterminism` at the first divergence, `Panicked`,
    /// `InvalidHistory` (empty, not starting with `WorkflowStarted`,
    /// events outside an activation), `UnknownWorkflowType`.
    pub fn replay(&self, history: &HistoryExport) -> Result<ReplayReport, ReplayError> {
        let Some((first, rest)) = history.events.split_first() else {
            return Err(ReplayError::InvalidHistory {
                position: 1,
                reason: "the history has no events".into(),
            });
        };
        let Event::WorkflowStarted {
            workflow_type,
            workflow_id,
            ..
        } = first
        else {
            return Err(ReplayError::InvalidHistory {
                position: 1,
                reason: format!("first event is {}, not WorkflowStarted", first.kind()),
            });
        };
        if *workflow_type != history.workflow_type || *workflow_id != history.workflow_id {
            return Err(ReplayError::InvalidHistory {
                position: 1,
                reason: format!(
                    "the export is labelled {} ({}) but its WorkflowStarted is {workflow_id} ({workflow_type})",
                    history.workflow_id, history.workflow_type
                ),
            });
        }
        let workflow =
            self.workflows
                .get(workflow_type)
                .ok_or_else(|| ReplayError::UnknownWorkflowType {
                    workflow_type: workflow_type.clone(),
                    registered: self.workflows.keys().cloned().collect(),
                })?;
        // The store appends WorkflowTerminated by itself, outside any
        // activation and without running workflow code, so there is no
        // code to check it against: it only closes the run.
        let (replayable, terminated) = match rest.split_last() {
            Some((Event::WorkflowTerminated { .. }, before)) => (before, true),
            _ => (rest, false),
        };
        let run = history.run;
        let replayed = std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name("refrain-replay".into())
                .spawn_scoped(scope, || -> Result<bool, ActivationError> {
                    let mut machine = WorkflowMachine::new(workflow.as_ref(), run, first)?;
                    machine.replay(replayable)?;
                    Ok(machine.is_closed())
                });
            match thread {
                Ok(handle) => handle
                    .join()
                    .map_err(|p| refrain::replay::panic_message(p.as_ref())),
                Err(e) => Err(format!("cannot start the replay thread: {e}")),
            }
        });
        let closed = match replayed {
            Ok(Ok(closed)) => closed,
            Ok(Err(ActivationError::Panicked { message })) | Err(message) => {
                return Err(ReplayError::Panicked {
                    workflow_id: workflow_id.clone(),
                    message,
                })
            }
            Ok(Err(ActivationError::Nondeterminism(e))) => {
                return Err(ReplayError::Nondeterminism(e))
            }
            Ok(Err(ActivationError::InvalidHistory { position, reason })) => {
                return Err(ReplayError::InvalidHistory { position, reason })
            }
        };
        Ok(ReplayReport {
            workflow_id: workflow_id.clone(),
            run,
            workflow_type: workflow_type.clone(),
            events: history.events.len() as u64,
            activations: rest
                .iter()
                .filter(|e| matches!(e, Event::ActivationStarted { .. }))
                .count() as u64,
            closed: closed || terminated,
        })
    }

    /// Reads a history file (JSON or binary, told apart by content) and
    /// replays it.
    ///
    /// # Errors
    /// `Io` or `Decode` naming the file, or any error of
    /// [`Replayer::replay`].
    pub fn replay_file(&self, path: impl AsRef<Path>) -> Result<ReplayReport, ReplayError> {
        let path = path.as_ref();
        let history = HistoryExport::read_file(path).map_err(|e| match e {
            HistoryFileError::Io { path, source } => ReplayError::Io { path, source },
            other => ReplayError::Decode {
                path: path.to_path_buf(),
                source: other,
            },
        })?;
        self.replay(&history)
    }

    /// Replays every `.json` and `.bin` file directly in `dir`, in file
    /// name order. A directory that cannot be read gives one entry: the
    /// directory with its `Io` error.
    pub fn replay_dir(
        &self,
        dir: impl AsRef<Path>,
    ) -> Vec<(PathBuf, Result<ReplayReport, ReplayError>)> {
        let dir = dir.as_ref();
        match history_files(dir) {
            Ok(files) => files
                .into_iter()
                .map(|f| {
                    let r = self.replay_file(&f);
                    (f, r)
                })
                .collect(),
            Err(source) => vec![(
                dir.to_path_buf(),
                Err(ReplayError::Io {
                    path: dir.to_path_buf(),
                    source,
                }),
            )],
        }
    }

    /// Replays every history in `dir` (see [`Replayer::replay_dir`]) and
    /// panics with the report of each one that fails. Meant as the one
    /// line of a test.
    ///
    /// # Panics
    /// If any history fails to replay, and if `dir` holds no history at
    /// all, so that a mistyped path cannot pass silently.
    #[track_caller]
    pub fn assert_replays(&self, dir: impl AsRef<Path>) {
        let dir = dir.as_ref();
        let results = self.replay_dir(dir);
        if results.is_empty() {
            panic!(
                "no history files (*.json, *.bin) in {}: nothing was replayed",
                dir.display()
            );
        }
        let failures: Vec<String> = results
            .iter()
            .filter_map(|(path, r)| {
                r.as_ref()
                    .err()
                    .map(|e| format!("{}:\n{}", path.display(), indent(&e.to_string())))
            })
            .collect();
        if !failures.is_empty() {
            panic!(
                "{} of {} histories in {} did not replay:\n\n{}",
                failures.len(),
                results.len(),
                dir.display(),
                failures.join("\n\n")
            );
        }
    }
}

/// The `.json` and `.bin` files directly in `dir`, sorted.
pub(crate) fn history_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_history = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("bin"));
        if is_history && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

pub(crate) fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
