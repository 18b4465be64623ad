//! [`Client`]: start workflows, await their results, signal them, and see
//! what they are doing. Every call that changes state returns only once the
//! change is durable.
//!
//! A client reaches its store only through the [`HistoryStore`] seam, so
//! the same client works over the embedded sled [`Store`] (give it the
//! store) or any other backend (give it an `Arc<dyn HistoryStore>`).

use crate::payload::{self, PayloadError};
use crate::workflow::{Signal, Workflow};
#[cfg(doc)]
use refrain_history::Store;
use refrain_history::{
    ActivityState, BackendError, CommandSeq, EventSeq, Failure, HistoryStore, IdConflictPolicy,
    PageRequest, PendingTimer, ReadError, RunCursor, RunFilter, RunId, RunPage, RunRecord,
    RunStatus, RunSummary, StartError, StartOutcome, StartRequest, WorkflowId,
};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

/// Starts, signals and inspects workflows in a store.
///
/// ```no_run
/// use refrain::{Client, HistoryStore, Store, StoreConfig};
/// use std::sync::Arc;
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open("./refrain-data", StoreConfig::default())?;
/// let client = Client::new(store.clone()); // the embedded store
/// let backend: Arc<dyn HistoryStore> = Arc::new(store);
/// let same_data = Client::new(backend); // any backend of the seam
/// # let _ = (client, same_data);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn HistoryStore>,
    /// Who runs first activations in this process, for the types it runs
    /// (a worker's client: see `Worker::client`).
    starts: Option<Arc<dyn InProcessStarts>>,
}

/// Runs, in this process, the first activation of the runs a [`Client`]
/// starts, so that each start carries it
/// ([`HistoryStore::start_with_activation`]) instead of a worker's
/// committing it in a second step. A worker implements it and hands it
/// to the clients it makes; the client calls down into it, never the
/// store.
#[async_trait::async_trait]
pub trait InProcessStarts: Send + Sync {
    /// Whether this process runs the first activation of `workflow_type`.
    fn runs(&self, workflow_type: &str) -> bool;

    /// Makes `req`'s start, with its first activation when it can (and
    /// the ordinary start otherwise); the outcome is the start's, durable.
    async fn start(
        &self,
        store: &Arc<dyn HistoryStore>,
        req: StartRequest,
    ) -> Result<StartOutcome, StartError>;
}

/// Options of [`Client::start_with`].
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// What to do if a run of the id is open.
    pub on_conflict: IdConflictPolicy,
}

impl StartOptions {
    /// Attach to an open run of the same id instead of failing: makes a
    /// start idempotent, e.g. for a process that resumes after a restart.
    pub fn attach_to_open() -> Self {
        StartOptions {
            on_conflict: IdConflictPolicy::AttachToOpen,
        }
    }

    /// Use the latest run of the id, open or closed, and start one only if
    /// the id was never used: a process that must run once per id (an
    /// order, an applicant) can call this on every start-up, even after
    /// that run finished.
    pub fn use_existing() -> Self {
        StartOptions {
            on_conflict: IdConflictPolicy::UseExisting,
        }
    }
}

impl Client {
    /// A client of `store`: a sled [`Store`], or any other backend as an
    /// `Arc<dyn HistoryStore>`.
    pub fn new(store: impl Into<Arc<dyn HistoryStore>>) -> Self {
        Client {
            store: store.into(),
            starts: None,
        }
    }

    /// A client of `store` whose starts of the types `starts` runs carry
    /// their first activation (see [`InProcessStarts`]); a worker makes
    /// these (`Worker::client`).
    pub fn with_in_process_starts(
        store: impl Into<Arc<dyn HistoryStore>>,
        starts: Arc<dyn InProcessStarts>,
    ) -> Self {
        Client {
            store: store.into(),
            starts: Some(starts),
        }
    }

    /// The store it talks to, through the seam every call of the client
    /// takes.
    pub fn history_store(&self) -> &Arc<dyn HistoryStore> {
        &self.store
    }

    /// Who runs first activations in this process, if anyone.
    pub(crate) fn in_process_starts(&self) -> Option<&Arc<dyn InProcessStarts>> {
        self.starts.as_ref()
    }

    /// The latest run of `workflow_id`, or `NotFound`.
    pub(crate) async fn latest(
        &self,
        workflow_id: &WorkflowId,
    ) -> Result<(RunId, RunRecord), ClientError> {
        self.store
            .latest_run(workflow_id)
            .await?
            .ok_or_else(|| ClientError::NotFound {
                workflow_id: workflow_id.clone(),
            })
    }

    /// Starts workflow `W` under `id`. Fails with
    /// [`ClientError::AlreadyRunning`] if a run of `id` is open.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn start<W: Workflow>(
        &self,
        id: impl Into<WorkflowId>,
        input: W::Input,
    ) -> Result<WorkflowHandle<W>, ClientError> {
        self.start_with::<W>(id, input, StartOptions::default())
            .await
    }

    /// Starts workflow `W` under `id` with `options`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn start_with<W: Workflow>(
        &self,
        id: impl Into<WorkflowId>,
        input: W::Input,
        options: StartOptions,
    ) -> Result<WorkflowHandle<W>, ClientError> {
        let input = payload::encode("workflow input", &input)?;
        let started = self.start_payload(W::NAME, id, input, options).await?;
        Ok(WorkflowHandle {
            client: self.clone(),
            workflow_id: started.workflow_id,
            run: started.run,
            started: started.started,
            _marker: PhantomData,
        })
    }

    /// A handle to the latest run of `id`.
    ///
    /// # Errors
    /// `NotFound` if no run of `id` exists.
    pub async fn handle<W: Workflow>(
        &self,
        id: impl Into<WorkflowId>,
    ) -> Result<WorkflowHandle<W>, ClientError> {
        let workflow_id = id.into();
        let (run, _) = self.latest(&workflow_id).await?;
        Ok(WorkflowHandle {
            client: self.clone(),
            workflow_id,
            run,
            started: false,
            _marker: PhantomData,
        })
    }

    /// Sends signal `value` to the open run of `id`; returns once durable.
    ///
    /// # Errors
    /// `NotFound` or `Closed` (nothing is written), `PayloadTooLarge`.
    pub async fn signal<S: Signal>(
        &self,
        id: impl Into<WorkflowId>,
        value: &S,
    ) -> Result<(), ClientError> {
        let p = payload::encode(&format!("signal {}", S::NAME), value)?;
        self.signal_payload(id, S::NAME, p, None).await?;
        Ok(())
    }

    /// Like [`Client::signal`], recording `sender` (a person or system) in
    /// the history for the audit trail.
    ///
    /// # Errors
    /// As [`Client::signal`].
    pub async fn signal_from<S: Signal>(
        &self,
        id: impl Into<WorkflowId>,
        value: &S,
        sender: &str,
    ) -> Result<(), ClientError> {
        let p = payload::encode(&format!("signal {}", S::NAME), value)?;
        self.signal_payload(id, S::NAME, p, Some(sender)).await?;
        Ok(())
    }

    /// Asks the workflow `id` to cancel; returns once the request is
    /// durable. The workflow sees it through `ctx.cancelled()` and may
    /// clean up before it ends; one that ignores cancellation is cancelled
    /// for it. Await the handle's `result()` to see it end.
    ///
    /// Returns the run it asked. `requested_by` is recorded for the audit
    /// trail.
    ///
    /// # Errors
    /// `NotFound` or `Closed` (nothing is written).
    pub async fn cancel(
        &self,
        id: impl Into<WorkflowId>,
        reason: &str,
        requested_by: Option<&str>,
    ) -> Result<RunId, ClientError> {
        Ok(self.store.cancel(&id.into(), reason, requested_by).await?)
    }

    /// Ends the workflow `id` at once, without running any of its code
    /// (no cleanup); returns the run it ended, once durable.
    /// `terminated_by` is recorded for the audit trail.
    ///
    /// # Errors
    /// `NotFound` or `Closed` (nothing is written).
    pub async fn terminate(
        &self,
        id: impl Into<WorkflowId>,
        reason: &str,
        terminated_by: Option<&str>,
    ) -> Result<RunId, ClientError> {
        Ok(self
            .store
            .terminate(&id.into(), reason, terminated_by)
            .await?)
    }

    /// Asks the latest run of `id` query `Q` and returns the answer of the
    /// handler the workflow registered with `ctx.on_query`. Nothing is
    /// written to the history. Works on closed runs too (their final
    /// state). A worker with the workflow's type answers, from the run's
    /// instance; it takes the query through its workflow-task poll.
    ///
    /// # Errors
    /// `NotFound`; `Query` if no worker answered within ten seconds, the
    /// workflow does not answer `Q`, or its handler failed.
    pub async fn query<Q: crate::Query>(
        &self,
        id: impl Into<WorkflowId>,
        args: &Q::Args,
    ) -> Result<Q::Result, ClientError> {
        let args = payload::encode(&format!("query {} arguments", Q::NAME), args)?;
        let answer = self.query_payload(id, Q::NAME, args).await?;
        Ok(crate::query::decode_result::<Q>(&answer)?)
    }

    /// Sends update `U` with `args` to the open run of `id` and waits for
    /// the workflow's answer: its handler's result, or why it refused or
    /// failed. A refused update leaves no trace in the history; an
    /// accepted one is recorded with its result. Needs a worker that runs
    /// the workflow (in this process or sharing the store).
    ///
    /// Each call is a new request. To retry one safely (after a timeout or
    /// a crash of the caller), use [`Client::update_with_id`].
    ///
    /// # Errors
    /// `UpdateRejected` (the validator refused, or the workflow accepts no
    /// update of this name), `UpdateFailed` (the handler returned an
    /// error), `UpdateNotAnswered` (the run closed first), `NotFound`,
    /// `Closed`, `PayloadTooLarge`, `Payload`.
    pub async fn update<U: crate::Update>(
        &self,
        id: impl Into<WorkflowId>,
        args: &U::Args,
    ) -> Result<U::Result, ClientError> {
        let update_id = format!("{:032x}", rand::random::<u128>());
        self.update_with_id::<U>(id, &update_id, args).await
    }

    /// Like [`Client::update`], under the caller's `update_id`: calling
    /// again with the same id while the same run is open, or after it
    /// answered, returns the same answer and never applies the update
    /// twice. A request the workflow never looked at before its run
    /// continued as new is sent on to the next run.
    ///
    /// # Errors
    /// As [`Client::update`].
    pub async fn update_with_id<U: crate::Update>(
        &self,
        id: impl Into<WorkflowId>,
        update_id: &str,
        args: &U::Args,
    ) -> Result<U::Result, ClientError> {
        let input = payload::encode(&format!("update {} arguments", U::NAME), args)?;
        let result = self.update_payload(id, U::NAME, update_id, input).await?;
        Ok(crate::update::decode_result::<U>(&result)?)
    }

    /// Status, pending activities and timers of the latest run of `id`.
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub async fn describe(
        &self,
        id: impl Into<WorkflowId>,
    ) -> Result<WorkflowDescription, ClientError> {
        let workflow_id = id.into();
        let (run, record) = self.latest(&workflow_id).await?;
        let mut pending_activities = Vec::new();
        for &cmd in &record.pending_activities {
            if let Some(task) = self.store.activity_task(run, cmd).await? {
                let (next_attempt_at, attempt_deadline) = match task.state {
                    ActivityState::Scheduled { visible_at } => {
                        (Some(visible_at.to_system_time()), None)
                    }
                    ActivityState::Running { deadline, .. } => {
                        (None, Some(deadline.to_system_time()))
                    }
                };
                pending_activities.push(PendingActivity {
                    cmd,
                    activity_type: task.activity_type,
                    attempt: task.attempt,
                    max_attempts: match task.options.retry.max_attempts {
                        0 => None,
                        n => Some(n),
                    },
                    running: attempt_deadline.is_some(),
                    first_scheduled_at: task.first_scheduled_at.to_system_time(),
                    next_attempt_at,
                    attempt_deadline,
                    last_failure: task.last_failure,
                });
            }
        }
        Ok(WorkflowDescription {
            workflow_id,
            run,
            pending_activities,
            pending_timers: record.pending_timers.clone(),
            record,
        })
    }

    /// Every run matching `filter` (status, type), in the store's order,
    /// read page by page (see [`Client::list_page`]).
    ///
    /// # Errors
    /// A storage error.
    pub async fn list(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, ClientError> {
        let mut runs = Vec::new();
        let mut page = PageRequest::first(LIST_PAGE);
        loop {
            let RunPage {
                runs: more,
                next_cursor,
            } = self.store.list_runs(filter, page).await?;
            runs.extend(more);
            match next_cursor {
                Some(cursor) => page = PageRequest::after(cursor, LIST_PAGE),
                None => return Ok(runs),
            }
        }
    }

    /// One page of up to `limit` runs matching `filter`, oldest first,
    /// after `cursor` (the `next_cursor` of the page before; `None` for
    /// the first). [`Client::list_runs_page`] lists newest first.
    ///
    /// # Errors
    /// `BadCursor` for a cursor the store did not give out; a storage
    /// error.
    pub async fn list_page(
        &self,
        filter: &RunFilter,
        cursor: Option<RunCursor>,
        limit: usize,
    ) -> Result<RunPage, ClientError> {
        let page = PageRequest {
            after: cursor,
            ..PageRequest::first(limit)
        };
        self.list_runs_page(filter, page).await
    }

    /// One page of the runs matching `filter`, as `page` asks (its cursor,
    /// size and order: see [`HistoryStore::list_runs`]).
    ///
    /// # Errors
    /// `BadCursor` for a cursor the store did not give out for this
    /// order; a storage error.
    pub async fn list_runs_page(
        &self,
        filter: &RunFilter,
        page: PageRequest,
    ) -> Result<RunPage, ClientError> {
        Ok(self.store.list_runs(filter, page).await?)
    }

    /// The history of the latest run of `id`.
    ///
    /// # Errors
    /// `NotFound`, or a storage error (`Damaged` for damaged events).
    pub async fn history(
        &self,
        id: impl Into<WorkflowId>,
    ) -> Result<Vec<refrain_history::Event>, ClientError> {
        let workflow_id = id.into();
        let (run, _) = self.latest(&workflow_id).await?;
        Ok(self.store.read_history(run, EventSeq(1)).await?)
    }
}

/// A typed handle to one run.
pub struct WorkflowHandle<W> {
    pub(crate) client: Client,
    pub(crate) workflow_id: WorkflowId,
    pub(crate) run: RunId,
    pub(crate) started: bool,
    pub(crate) _marker: PhantomData<fn() -> W>,
}

impl<W> Clone for WorkflowHandle<W> {
    fn clone(&self) -> Self {
        WorkflowHandle {
            client: self.client.clone(),
            workflow_id: self.workflow_id.clone(),
            run: self.run,
            started: self.started,
            _marker: PhantomData,
        }
    }
}

impl<W: Workflow> WorkflowHandle<W> {
    /// The workflow id.
    pub fn workflow_id(&self) -> &WorkflowId {
        &self.workflow_id
    }

    /// The run.
    pub fn run_id(&self) -> RunId {
        self.run
    }

    /// False if `start_with(.., attach_to_open())` attached to a run that
    /// was already open.
    pub fn was_started(&self) -> bool {
        self.started
    }

    /// Waits for the workflow to close and returns its result, following
    /// continue-as-new from run to run.
    ///
    /// # Errors
    /// `WorkflowFailed` with the recorded failure, `Payload` if the result
    /// is not a `W::Output`, or a storage error.
    pub async fn result(&self) -> Result<W::Output, ClientError> {
        let mut run = self.run;
        let record = loop {
            let record = self
                .client
                .store
                .wait_closed(run)
                .await
                .map_err(|e| match e {
                    ReadError::RunNotFound { .. } => ClientError::NotFound {
                        workflow_id: self.workflow_id.clone(),
                    },
                    other => other.into(),
                })?;
            match (record.status, record.continued_to) {
                (RunStatus::ContinuedAsNew, Some(next)) => run = next,
                _ => break record,
            }
        };
        match record.outcome {
            Some(Ok(p)) => Ok(payload::decode("workflow result", &p)?),
            Some(Err(failure)) => Err(ClientError::WorkflowFailed {
                workflow_id: self.workflow_id.clone(),
                failure,
            }),
            // Closed without an outcome: terminated.
            None => Err(ClientError::Closed {
                workflow_id: self.workflow_id.clone(),
                status: record.status,
            }),
        }
    }
}

/// What [`Client::describe`] reports.
#[derive(Clone, Debug)]
pub struct WorkflowDescription {
    /// The id.
    pub workflow_id: WorkflowId,
    /// The latest run.
    pub run: RunId,
    /// The store's record of it (status, times, last task failure).
    pub record: RunRecord,
    /// Activities scheduled and not resolved.
    pub pending_activities: Vec<PendingActivity>,
    /// Timers started and not fired.
    pub pending_timers: Vec<PendingTimer>,
}

impl WorkflowDescription {
    /// The run's status.
    pub fn status(&self) -> RunStatus {
        self.record.status
    }
}

/// One pending activity in a [`WorkflowDescription`].
#[derive(Clone, Debug)]
pub struct PendingActivity {
    /// Its command.
    pub cmd: CommandSeq,
    /// Its type.
    pub activity_type: String,
    /// Current or next attempt.
    pub attempt: u32,
    /// At most this many attempts; `None` without a limit.
    pub max_attempts: Option<u32>,
    /// Whether an attempt is running now.
    pub running: bool,
    /// When the activity was first scheduled (its schedule-to-close
    /// timeout counts from here).
    pub first_scheduled_at: SystemTime,
    /// When the next attempt may start, if none is running (later than now
    /// during a retry backoff).
    pub next_attempt_at: Option<SystemTime>,
    /// When the running attempt times out unless it completes or
    /// heartbeats.
    pub attempt_deadline: Option<SystemTime>,
    /// The previous attempt's failure.
    pub last_failure: Option<Failure>,
}

/// Errors of [`Client`] calls.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// A run of the id is open. Nothing was written.
    AlreadyRunning {
        /// The id.
        workflow_id: WorkflowId,
        /// Its open run.
        run: RunId,
    },
    /// No workflow has this id. Nothing was written.
    NotFound {
        /// The id.
        workflow_id: WorkflowId,
    },
    /// The workflow is closed. Nothing was written.
    Closed {
        /// The id.
        workflow_id: WorkflowId,
        /// How it closed.
        status: RunStatus,
    },
    /// A payload exceeds the store's limit. Nothing was written.
    PayloadTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The workflow returned an error.
    WorkflowFailed {
        /// The id.
        workflow_id: WorkflowId,
        /// The recorded failure.
        failure: Failure,
    },
    /// A query was not answered; the message says why.
    Query(String),
    /// No human task matches the reference. Nothing was written.
    HumanTaskNotFound {
        /// The reference, as given.
        task: String,
    },
    /// The human task is no longer open (already decided or closed, or
    /// its workflow ended). Nothing was written.
    HumanTaskClosed {
        /// The task.
        task: String,
        /// How it ended.
        why: String,
    },
    /// The decision was made as `expected`
    /// ([`Client::decide_human_task_as_assignee`]), but the task is
    /// `assignee`'s now: it escalated after the caller checked. Nothing was
    /// written.
    HumanTaskReassigned {
        /// The task.
        task: String,
        /// The assignee the decision was made as.
        expected: String,
        /// The task's assignee now.
        assignee: String,
    },
    /// Several open human tasks of the workflow have this name; decide
    /// one by the exact reference a task list gives. Nothing was written.
    HumanTaskAmbiguous {
        /// The reference, as given.
        task: String,
        /// How many open tasks match.
        open: usize,
    },
    /// The workflow refused the update (its validator said why, or it
    /// accepts no update of that name). Nothing was recorded in the
    /// history.
    UpdateRejected {
        /// The update, its id and workflow.
        update: String,
        /// Why.
        reason: String,
    },
    /// The update's handler returned an error; both are in the history.
    UpdateFailed {
        /// The update, its id and workflow.
        update: String,
        /// The recorded failure.
        failure: Failure,
    },
    /// The run closed before answering the update.
    UpdateNotAnswered {
        /// The workflow.
        workflow_id: WorkflowId,
        /// The update's id.
        update_id: String,
        /// How the run closed.
        status: RunStatus,
        /// Whether the workflow had accepted it (its handler was still
        /// running) or never looked at it.
        accepted: bool,
    },
    /// A value could not be encoded or decoded.
    Payload(PayloadError),
    /// No run with this number exists (a run named by a reference).
    RunNotFound {
        /// The run.
        run: RunId,
    },
    /// A list cursor the store did not give out.
    BadCursor {
        /// The cursor as given.
        cursor: String,
    },
    /// Stored data is damaged (one run's, when `run` names it; other runs
    /// are unaffected). The source is the store's report.
    Damaged {
        /// The run, when known.
        run: Option<RunId>,
        /// The store's report.
        source: BackendError,
    },
    /// The store failed (I/O, shut down). The source is its report.
    Storage {
        /// The store's report.
        source: BackendError,
    },
}

/// Where the list is read in pages of this many runs.
const LIST_PAGE: usize = 500;

impl From<PayloadError> for ClientError {
    fn from(e: PayloadError) -> Self {
        ClientError::Payload(e)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::AlreadyRunning { workflow_id, run } => {
                write!(f, "workflow {workflow_id} is already running ({run})")
            }
            ClientError::NotFound { workflow_id } => write!(f, "no workflow with id {workflow_id}"),
            ClientError::Closed {
                workflow_id,
                status,
            } => write!(f, "workflow {workflow_id} is closed ({})", status.as_str()),
            ClientError::PayloadTooLarge { size, limit } => {
                write!(
                    f,
                    "payload of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            ClientError::WorkflowFailed {
                workflow_id,
                failure,
            } => write!(f, "workflow {workflow_id} failed: {failure}"),
            ClientError::Query(m) => write!(f, "query not answered: {m}"),
            ClientError::HumanTaskNotFound { task } => write!(f, "no human task {task}"),
            ClientError::HumanTaskClosed { task, why } => {
                write!(f, "human task {task} is no longer open: {why}")
            }
            ClientError::HumanTaskReassigned {
                task,
                expected,
                assignee,
            } => write!(
                f,
                "human task {task} is assigned to {assignee} now, not {expected} (it was \
                 reassigned); the decision was not recorded"
            ),
            ClientError::HumanTaskAmbiguous { task, open } => write!(
                f,
                "{open} open human tasks match {task}; decide one by its exact reference"
            ),
            ClientError::UpdateRejected { update, reason } => {
                write!(f, "update {update} was rejected: {reason}")
            }
            ClientError::UpdateFailed { update, failure } => {
                write!(f, "update {update} failed: {failure}")
            }
            ClientError::UpdateNotAnswered {
                workflow_id,
                update_id,
                status,
                accepted,
            } => {
                let how = if *accepted {
                    "while its handler was running"
                } else {
                    "before the workflow looked at it"
                };
                write!(
                    f,
                    "workflow {workflow_id} closed ({}) {how}: update {update_id} was not answered",
                    status.as_str()
                )
            }
            ClientError::Payload(e) => fmt::Display::fmt(e, f),
            ClientError::RunNotFound { run } => write!(f, "no such run {run}"),
            ClientError::BadCursor { cursor } => {
                write!(f, "list cursor {cursor:?} was not given out by this store")
            }
            ClientError::Damaged { source, .. } | ClientError::Storage { source } => {
                fmt::Display::fmt(source, f)
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Payload(e) => Some(e),
            ClientError::Damaged { source, .. } | ClientError::Storage { source } => {
                Some(source.as_ref())
            }
            _ => None,
        }
    }
}
