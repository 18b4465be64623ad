//! [`TestEnv`]: a store in memory, a worker on it, and a virtual clock
//! that skips whatever time every run is waiting out.
//!
//! # When time moves
//!
//! Only while the test waits on the environment ([`TestEnv::result`],
//! [`TestEnv::skip`], [`TestEnv::run_until_blocked`]), and only when
//! nothing can happen without it: no run has work, no attempt is running
//! or claimable, nothing is due ([`Store::has_work_at`], read from the
//! store's tables, whose every change is one transaction, so the answer
//! never falls between two steps of the worker). Then the clock jumps to
//! the earliest of the next timer, attempt deadline or retry, human-task
//! reminder, deadline or escalation (all timers) and schedule fire, and
//! the environment fires it. The body of a test therefore sees time stand
//! still between its own calls: a signal sent after `skip(2 days)`
//! arrives at exactly that time.
//!
//! # Restarts
//!
//! [`TestEnv::restart`] is a crash: the worker is dropped with its memory
//! and the store is opened again over the same in-memory tables, which
//! runs the open-time recovery (running attempts failed and retried,
//! ready runs queued). Handles ([`TestHandle`]) carry only a workflow id,
//! so they outlive restarts.

use crate::clock::VirtualClock;
use crate::mock::{Mock, Shared};
use refrain::{
    Activity, ActivityError, Client, ClientError, DurabilityMode, Signal, Store, StoreConfig,
    Workflow,
};
use refrain_history::{HistoryStore, MemoryStorage, StoreError, Timestamp, WorkflowId};
use refrain_worker::{StallAction, Worker, WorkerBuilder};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::runtime::{Handle, RuntimeFlavor};

/// How long a busy environment waits before it looks again. Work in
/// progress ends in a commit a moment later; this only paces the looks.
const LOOK_AGAIN: Duration = Duration::from_millis(1);

/// Looks between two checks of whether a busy run's task keeps failing.
const FAILURE_CHECK_EVERY: u32 = 32;

/// How long a restart waits for the crashed store's last handle to go.
const RELEASE_WAIT: Duration = Duration::from_secs(30);

type Registration = Arc<dyn Fn(WorkerBuilder) -> WorkerBuilder + Send + Sync>;

/// A workflow run started in a [`TestEnv`]: its id, valid across
/// restarts of the environment.
pub struct TestHandle<W> {
    workflow_id: WorkflowId,
    _type: PhantomData<fn() -> W>,
}

impl<W> TestHandle<W> {
    /// A handle to the latest run of `workflow_id`.
    pub(crate) fn of(workflow_id: WorkflowId) -> TestHandle<W> {
        TestHandle {
            workflow_id,
            _type: PhantomData,
        }
    }

    /// The workflow id.
    pub fn workflow_id(&self) -> &WorkflowId {
        &self.workflow_id
    }
}

impl<W> Clone for TestHandle<W> {
    fn clone(&self) -> Self {
        TestHandle {
            workflow_id: self.workflow_id.clone(),
            _type: PhantomData,
        }
    }
}

impl<W> fmt::Debug for TestHandle<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TestHandle")
            .field(&self.workflow_id)
            .finish()
    }
}

/// What went wrong in a [`TestEnv`].
#[derive(Debug)]
#[non_exhaustive]
pub enum TestError {
    /// A client call failed; a run that failed is
    /// `Client(ClientError::WorkflowFailed { .. })`.
    Client(ClientError),
    /// The store refused an operation of the environment itself.
    Store(StoreError),
    /// The store's seam refused one (firing due work, reading what is
    /// due next).
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// The environment needs a multi-threaded tokio runtime
    /// (`#[tokio::test(flavor = "multi_thread")]`): the worker's workflow
    /// threads wait on the runtime.
    NotMultiThreaded,
    /// The run is open, nothing can happen, and nothing is due: it waits
    /// for a signal, an update or a human decision that the test never
    /// sends.
    Blocked {
        /// The workflow.
        workflow_id: WorkflowId,
        /// The virtual time it got stuck at.
        at: Timestamp,
    },
    /// The run's workflow task keeps failing (a panic, nondeterminism, an
    /// unregistered workflow type); the store's record of the failure.
    TaskFailed {
        /// The workflow.
        workflow_id: WorkflowId,
        /// Why its last task failed.
        failure: String,
    },
    /// A restart found the previous store still open after
    /// 30 seconds: something outside the environment (a `Client`
    /// or `Store` taken from it) still holds it.
    StoreHeld,
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestError::Client(e) => write!(f, "{e}"),
            TestError::Store(e) => write!(f, "store: {e}"),
            TestError::Backend(e) => write!(f, "store: {e}"),
            TestError::NotMultiThreaded => f.write_str(
                "the test environment needs a multi-threaded runtime: \
                 #[tokio::test(flavor = \"multi_thread\")]",
            ),
            TestError::Blocked { workflow_id, at } => write!(
                f,
                "workflow {workflow_id} is blocked at {at}: it waits for something \
                 from outside (a signal, an update, a decision) and nothing is due"
            ),
            TestError::TaskFailed {
                workflow_id,
                failure,
            } => write!(f, "the workflow task of {workflow_id} failed: {failure}"),
            TestError::StoreHeld => write!(
                f,
                "cannot restart: the previous store is still held after {RELEASE_WAIT:?} \
                 (drop clients and stores taken from the environment first)"
            ),
        }
    }
}

impl std::error::Error for TestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TestError::Client(e) => Some(e),
            TestError::Store(e) => Some(e),
            TestError::Backend(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<ClientError> for TestError {
    fn from(e: ClientError) -> Self {
        TestError::Client(e)
    }
}

impl From<StoreError> for TestError {
    fn from(e: StoreError) -> Self {
        TestError::Store(e)
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> TestError {
    TestError::Backend(Box::new(e))
}

/// What one look at the environment found.
enum Step {
    /// Something is happening (or was just fired); look again.
    Busy,
    /// Nothing could happen, so the clock moved to the next due time.
    Moved,
    /// Nothing can happen and nothing is due before the limit (or at
    /// all): the clock stands at the limit, if one was given.
    Still,
}

/// The store, its client and the worker of the environment's current
/// process.
struct Live {
    store: Store,
    client: Client,
    worker: Option<Worker>,
    /// Registrations the worker was started with.
    registered: usize,
}

/// A test environment: an in-memory store and a worker whose time is
/// virtual. See the [crate documentation](crate) for an example.
pub struct TestEnv {
    clock: VirtualClock,
    storage: MemoryStorage,
    config: StoreConfig,
    registrations: Mutex<Vec<Registration>>,
    live: tokio::sync::Mutex<Option<Live>>,
}

impl TestEnv {
    /// An environment whose clock starts at the current wall-clock time.
    pub async fn new() -> TestEnv {
        TestEnv::starting_at(Timestamp::now()).await
    }

    /// An environment whose clock starts at `start` (tests that compare
    /// times, or several environments that must agree).
    pub async fn starting_at(start: Timestamp) -> TestEnv {
        let clock = VirtualClock::starting_at(start);
        let config = StoreConfig {
            // Memory has nothing to flush; acknowledging at once is the
            // same promise.
            durability: DurabilityMode::None,
            lock_timeout: RELEASE_WAIT,
            clock: clock.as_clock(),
            ..StoreConfig::default()
        };
        TestEnv {
            clock,
            storage: MemoryStorage::new(),
            config,
            registrations: Mutex::new(Vec::new()),
            live: tokio::sync::Mutex::new(None),
        }
    }

    fn register(&self, registration: Registration) {
        self.registrations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(registration);
    }

    /// Registers workflow type `W` (the worker restarts with it at the
    /// next call that needs it).
    pub fn register_workflow<W: Workflow>(&self) {
        self.register(Arc::new(|b: WorkerBuilder| b.workflow::<W>()));
    }

    /// Registers whatever `register` adds to a worker (an application's
    /// own `fn register(WorkerBuilder) -> WorkerBuilder`); it is called
    /// again for the worker of each restart.
    pub fn register_with(
        &self,
        register: impl Fn(WorkerBuilder) -> WorkerBuilder + Send + Sync + 'static,
    ) {
        self.register(Arc::new(register));
    }

    /// Registers `activity`, which runs every call of its type.
    pub fn register_activity<A: Activity>(&self, activity: A) {
        let shared = Shared(Arc::new(activity));
        self.register(Arc::new(move |b: WorkerBuilder| b.activity(shared.clone())));
    }

    /// Runs `f` in place of activity type `A`: calls of `A` from
    /// workflows get its result, recorded as `A`'s. Replaces an `A`
    /// registered before.
    pub fn mock_activity<A, F, Fut>(&self, f: F)
    where
        A: Activity,
        F: Fn(A::Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A::Output, ActivityError>> + Send + 'static,
    {
        let mock = Mock::<A>::new(f);
        self.register(Arc::new(move |b: WorkerBuilder| b.activity(mock.clone())));
    }

    /// The time on the virtual clock, as a workflow's `ctx.now()` reads it.
    pub fn now(&self) -> SystemTime {
        self.clock.system_time()
    }

    /// The virtual clock.
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// The tables under the store, kept across restarts.
    pub fn storage(&self) -> &MemoryStorage {
        &self.storage
    }

    /// The current store and client, opening the store and (re)starting
    /// the worker with every registration if needed.
    async fn live(&self) -> Result<(Store, Client), TestError> {
        if Handle::current().runtime_flavor() == RuntimeFlavor::CurrentThread {
            return Err(TestError::NotMultiThreaded);
        }
        let registrations = self
            .registrations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut live = self.live.lock().await;
        if live.is_none() {
            let store = Store::open_in_memory(&self.storage, self.config.clone())?;
            *live = Some(Live {
                client: Client::new(store.clone()),
                store,
                worker: None,
                registered: 0,
            });
        }
        let Some(l) = live.as_mut() else {
            unreachable!("opened above")
        };
        if l.worker.is_none() || l.registered != registrations.len() {
            if let Some(old) = l.worker.take() {
                old.shutdown(Duration::ZERO).await;
            }
            let builder = Worker::builder(l.store.clone())
                .clock(self.clock.as_clock())
                .max_concurrent_activations(2)
                // Virtual time never moves while an attempt runs, but a
                // test's machine may be slow: report, never exit.
                .on_stall(StallAction::Report);
            let worker = registrations.iter().fold(builder, |b, r| r(b)).start();
            l.client = worker.client();
            l.worker = Some(worker);
            l.registered = registrations.len();
        }
        Ok((l.store.clone(), l.client.clone()))
    }

    /// A client of the environment's store (its starts run their first
    /// activation on the environment's worker). Drop it before
    /// [`TestEnv::restart`].
    ///
    /// # Errors
    /// `NotMultiThreaded`, or the store cannot be opened.
    pub async fn client(&self) -> Result<Client, TestError> {
        Ok(self.live().await?.1)
    }

    /// The environment's store. Drop it before [`TestEnv::restart`].
    ///
    /// # Errors
    /// As [`TestEnv::client`].
    pub async fn store(&self) -> Result<Store, TestError> {
        Ok(self.live().await?.0)
    }

    /// Starts workflow `W` under `id` at the current virtual time.
    ///
    /// # Errors
    /// As [`Client::start`].
    pub async fn start<W: Workflow>(
        &self,
        id: impl Into<WorkflowId>,
        input: W::Input,
    ) -> Result<TestHandle<W>, TestError> {
        let client = self.client().await?;
        let handle = client.start::<W>(id, input).await?;
        Ok(TestHandle::of(handle.workflow_id().clone()))
    }

    /// Sends signal `value` to the open run of `id` at the current
    /// virtual time.
    ///
    /// # Errors
    /// As [`Client::signal`].
    pub async fn signal<S: Signal>(
        &self,
        id: impl Into<WorkflowId>,
        value: &S,
    ) -> Result<(), TestError> {
        self.client().await?.signal(id, value).await?;
        Ok(())
    }

    /// Runs the workflow to its end, skipping every wait, and returns its
    /// result.
    ///
    /// # Errors
    /// `Client(WorkflowFailed)` if the run failed; `Blocked` if it waits
    /// for something the test never sends; `TaskFailed` if its workflow
    /// task keeps failing.
    pub async fn result<W: Workflow>(
        &self,
        handle: &TestHandle<W>,
    ) -> Result<W::Output, TestError> {
        let id = handle.workflow_id.clone();
        let client = self.client().await?;
        let run = client.handle::<W>(id.clone()).await?;
        let closed = run.result();
        tokio::pin!(closed);
        let mut looks = 0u32;
        loop {
            let step = tokio::select! {
                biased;
                outcome = &mut closed => return outcome.map_err(TestError::from),
                step = self.step(None) => step?,
            };
            match step {
                Step::Moved => looks = 0,
                Step::Busy => {
                    looks += 1;
                    if looks % FAILURE_CHECK_EVERY == 0 {
                        let record = client.describe(id.clone()).await?.record;
                        if let Some(failure) = record.last_task_failure {
                            return Err(TestError::TaskFailed {
                                workflow_id: id,
                                failure,
                            });
                        }
                    }
                }
                Step::Still => {
                    // The run may have closed since the wait last looked.
                    if client.describe(id.clone()).await?.status().is_open() {
                        return Err(TestError::Blocked {
                            workflow_id: id,
                            at: self.clock.now(),
                        });
                    }
                }
            }
        }
    }

    /// Lets the runs go on until each one waits for time or for
    /// something from outside, without moving the clock.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn run_until_blocked(&self) -> Result<(), TestError> {
        let now = self.clock.now();
        loop {
            if let Step::Still = self.step(Some(now)).await? {
                return Ok(());
            }
        }
    }

    /// Moves the virtual clock forward by `by`, firing everything that
    /// comes due on the way at its own time and letting the runs react
    /// to it, and returns once every run waits again.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn skip(&self, by: Duration) -> Result<(), TestError> {
        let until = self.clock.now().saturating_add(by);
        loop {
            if let Step::Still = self.step(Some(until)).await? {
                return Ok(());
            }
        }
    }

    /// One look: fires what is due, and when nothing can happen, moves
    /// the clock to the next due time (no further than `limit`).
    async fn step(&self, limit: Option<Timestamp>) -> Result<Step, TestError> {
        let store = self.store().await?;
        let now = self.clock.now();
        // The worker's time service fires these too; firing here does not
        // wait for it to wake up after a jump.
        let fired = HistoryStore::fire_due(&store, now).await.map_err(backend)?;
        let schedules = HistoryStore::fire_due_schedules(&store, now)
            .await
            .map_err(backend)?;
        if fired > 0 || !schedules.is_empty() || store.has_work_at(now)? {
            drop(store);
            tokio::time::sleep(LOOK_AGAIN).await;
            return Ok(Step::Busy);
        }
        let next = [
            HistoryStore::next_due(&store).await.map_err(backend)?,
            store.next_activity_visible()?,
        ]
        .into_iter()
        .flatten()
        .min();
        match (next, limit) {
            (Some(t), Some(limit)) if t > limit => {
                self.clock.advance_to(limit);
                Ok(Step::Still)
            }
            (Some(t), _) => {
                self.clock.advance_to(t);
                Ok(Step::Moved)
            }
            (None, Some(limit)) => {
                self.clock.advance_to(limit);
                Ok(Step::Still)
            }
            (None, None) => Ok(Step::Still),
        }
    }

    /// A crash and a restart: the worker is dropped with everything in
    /// its memory, and the store is opened again over the same tables
    /// (running attempts are failed and retried, ready runs queued), with
    /// a new worker. Clients and stores taken from the environment must
    /// have been dropped.
    ///
    /// # Errors
    /// `StoreHeld` if the previous store is still held.
    pub async fn restart(&self) -> Result<(), TestError> {
        self.stop().await?;
        self.live().await?;
        Ok(())
    }

    /// Stops the worker and closes the store, waiting until nothing holds
    /// it. What to do between a crash and the reopen (see
    /// `explore_crashes`) goes after this.
    pub(crate) async fn stop(&self) -> Result<(), TestError> {
        let mut live = self.live.lock().await;
        if let Some(l) = live.take() {
            if let Some(worker) = l.worker {
                worker.shutdown(Duration::ZERO).await;
            }
        }
        drop(live);
        let give_up = tokio::time::Instant::now() + RELEASE_WAIT;
        while self.storage.is_open() {
            if tokio::time::Instant::now() >= give_up {
                return Err(TestError::StoreHeld);
            }
            tokio::time::sleep(LOOK_AGAIN).await;
        }
        Ok(())
    }

    /// Stops the worker and closes the store.
    pub async fn shutdown(self) {
        if let Some(l) = self.live.lock().await.take() {
            if let Some(worker) = l.worker {
                worker.shutdown(Duration::ZERO).await;
            }
        }
    }
}
