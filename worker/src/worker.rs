//! [`Worker`]: the builder users configure and the running set of loops.

use crate::activities::{run_activity_poller, RunnerLinks};
use crate::direct::ActivityHandoff;
use crate::dispatcher::run_dispatcher;
use crate::eager_start::WorkerStarts;
use crate::executor::Executor;
use crate::registry::{RegistrationConflict, Registry};
use crate::retention::{run_retention_service, RetentionSettings};
use crate::timers::{run_time_service, Clocks};
use crate::watchdog::{Attempts, Health, StallAction, Watchdog, WatchdogConfig};
use refrain::Client;
use refrain::{Activity, Workflow};
use refrain_history::{Clock, HistoryStore, RetentionPolicy, Timestamp};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::info;

/// Configures a worker: which workflows and activities it runs and how
/// much at once.
pub struct WorkerBuilder {
    store: Arc<dyn HistoryStore>,
    registry: Registry,
    workflow_threads: usize,
    activity_slots: usize,
    cache_size: usize,
    clock: Clock,
    schedule_clock: Option<Clock>,
    eager_start: bool,
    watchdog: WatchdogConfig,
    retention: Option<RetentionSettings>,
}

impl WorkerBuilder {
    /// Registers workflow type `W`.
    pub fn workflow<W: Workflow>(mut self) -> Self {
        self.registry.add_workflow::<W>();
        self
    }

    /// Registers `activity`, which runs every call of its type. A name is
    /// registered once: registering it again makes the worker refuse to
    /// start (see [`try_start`](Self::try_start)).
    pub fn activity<A: Activity>(mut self, activity: A) -> Self {
        self.registry.add_activity(activity);
        self
    }

    /// Workflow threads: activations that run at once (default: 2 per
    /// CPU, from 4 to 32). A thread hands each commit to the store and
    /// goes on with other runs while it is applied, so more runs than
    /// threads can have a task under way.
    pub fn max_concurrent_activations(mut self, n: usize) -> Self {
        self.workflow_threads = n.max(1);
        self
    }

    /// Activity attempts that run at once (default 100).
    pub fn max_concurrent_activities(mut self, n: usize) -> Self {
        self.activity_slots = n.max(1);
        self
    }

    /// Workflow instances kept in memory between activations (default
    /// 1,000). Zero replays the history on every activation.
    pub fn cache_size(mut self, n: usize) -> Self {
        self.cache_size = n;
        self
    }

    /// Whether starts made through this worker's clients
    /// ([`Worker::client`]) for workflow types it runs carry their first
    /// activation (default: yes): the worker runs it at once and the store
    /// makes the start and commits it in one step, instead of a second
    /// transaction after the worker notices the run. Outcomes and
    /// histories are the same either way; turn it off to have every start
    /// take the ordinary path.
    pub fn eager_start(mut self, on: bool) -> Self {
        self.eager_start = on;
        self
    }

    /// The clock of workflow time (what `ctx.now()` reads and
    /// activations are dated with), of the time service that fires
    /// timers, deadlines and schedules, and of the stall watchdog's view
    /// of attempts (default: the system clock). A test's virtual clock
    /// must also be the store's (`StoreConfig::clock`), which dates claims,
    /// deadlines and retries: `refrain-testkit` sets both.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock the schedule service fires schedules by (default: the
    /// worker's [`clock`](WorkerBuilder::clock)). Tests replace it to move
    /// time: after moving it, call `store.schedule_notify().notify_one()`
    /// so the service looks at once (otherwise it looks within a second).
    pub fn schedule_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.schedule_clock = Some(Clock::new(clock));
        self
    }

    /// How long a commit, a flush, or an activity attempt claimed for this
    /// worker may make no progress before the stall watchdog reports it
    /// (default 60 s). A claimed attempt must start within it; a running
    /// attempt is never stuck within its own deadline (start-to-close,
    /// heartbeat timeout), only once it has run this long past it without
    /// returning: by then the store has voided it and its code was told
    /// to stop, yet it still holds an activity slot.
    pub fn stall_threshold(mut self, threshold: Duration) -> Self {
        self.watchdog.threshold = threshold;
        self
    }

    /// What the stall watchdog does after reporting a stall (default
    /// [`StallAction::Exit`]: exit non-zero so that a supervisor restarts
    /// the process; [`StallAction::Report`] only logs it and shows it in
    /// [`Worker::health`]).
    pub fn on_stall(mut self, action: StallAction) -> Self {
        self.watchdog.action = action;
        self
    }

    /// Purges closed runs whose retention under `policy` passed, when the
    /// worker starts and then every `every` (see
    /// [`Client::purge`](refrain::Client::purge) for what goes and what is
    /// kept; the time is the [`schedule_clock`](Self::schedule_clock)'s).
    /// Off by default: runs are kept forever.
    pub fn retention(mut self, policy: RetentionPolicy, every: Duration) -> Self {
        self.retention = policy.purges_anything().then_some(RetentionSettings {
            policy,
            every: every.max(Duration::from_millis(10)),
        });
        self
    }

    /// Starts the worker's loops on the current tokio runtime, unless two
    /// workflow or two activity registrations share a name: the worker
    /// would run one and silently ignore the other, so it does not start.
    ///
    /// # Errors
    /// [`RegistrationConflict`] naming the first name registered twice and
    /// both Rust types.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn try_start(self) -> Result<Worker, RegistrationConflict> {
        self.registry.check()?;
        Ok(self.start())
    }

    /// Starts the worker's loops on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime, and when two registrations share a name
    /// ([`try_start`](Self::try_start) returns that as an error).
    pub fn start(self) -> Worker {
        if let Err(conflict) = self.registry.check() {
            panic!("worker not started: {conflict}");
        }
        let registry = Arc::new(self.registry);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (grace_tx, grace_rx) = watch::channel(None);
        let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel();
        let per_thread = self.cache_size.div_ceil(self.workflow_threads);
        // Activity slots are shared by the poller and by commits that hand
        // out the activities they schedule (see `direct`).
        let slots = Arc::new(Semaphore::new(self.activity_slots.max(1)));
        let (handout_tx, handout_rx) = tokio::sync::mpsc::unbounded_channel();
        let (delivered_tx, delivered_rx) = tokio::sync::mpsc::unbounded_channel();
        let attempts = Arc::new(Attempts::default());
        let handoff = ActivityHandoff {
            registry: registry.clone(),
            slots: slots.clone(),
            runner: handout_tx,
            attempts: attempts.clone(),
        };
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        let store = self.store;
        for i in 0..self.workflow_threads {
            let (tx, handle) = Executor::spawn(
                i,
                store.clone(),
                registry.clone(),
                per_thread,
                done_tx.clone(),
                handoff.clone(),
                self.clock.clone(),
            );
            senders.push(tx);
            threads.push(handle);
        }
        drop(done_tx);
        let starts = self.eager_start.then(|| {
            Arc::new(WorkerStarts {
                registry: registry.clone(),
                threads: senders.iter().map(|t| t.downgrade()).collect(),
            }) as Arc<dyn refrain::InProcessStarts>
        });
        // Schedules and retention read the schedule clock, the worker's
        // own clock unless a test gave them another.
        let schedules_clock = self
            .schedule_clock
            .clone()
            .unwrap_or_else(|| self.clock.clone());
        let mut tasks = vec![
            tokio::spawn(run_dispatcher(
                store.clone(),
                senders,
                done_rx,
                delivered_rx,
                stop_rx.clone(),
            )),
            tokio::spawn(run_activity_poller(
                store.clone(),
                registry.clone(),
                slots,
                handout_rx,
                RunnerLinks {
                    delivered: Some(delivered_tx),
                    attempts: attempts.clone(),
                },
                grace_rx,
            )),
            tokio::spawn(run_time_service(
                store.clone(),
                Clocks {
                    schedules: schedules_clock.clone(),
                    clock: self.clock,
                },
                stop_rx.clone(),
            )),
        ];
        if let Some(settings) = self.retention {
            tasks.push(tokio::spawn(run_retention_service(
                store.clone(),
                settings,
                schedules_clock,
                stop_rx,
            )));
        }
        let health = Arc::new(Mutex::new(Health::default()));
        let watchdog = Watchdog::start(store.clone(), attempts, health.clone(), self.watchdog);
        info!(
            workflows = registry.workflows.len(),
            activities = registry.activities.len(),
            workflow_threads = self.workflow_threads,
            activity_slots = self.activity_slots,
            cache_size = self.cache_size,
            stall_threshold_s = self.watchdog.threshold.as_secs_f64(),
            "worker started"
        );
        Worker {
            store,
            starts,
            watchdog: Some(watchdog),
            health,
            stop: stop_tx,
            grace: grace_tx,
            tasks,
            threads,
        }
    }
}

/// A running worker. Dropping it without [`Worker::shutdown`] stops its
/// loops abruptly, which is safe (everything durable is in the store) but
/// abandons running activities until their timeouts.
pub struct Worker {
    store: Arc<dyn HistoryStore>,
    /// What this worker's clients start with (see `eager_start`).
    starts: Option<Arc<dyn refrain::InProcessStarts>>,
    watchdog: Option<Watchdog>,
    health: Arc<Mutex<Health>>,
    stop: watch::Sender<bool>,
    grace: watch::Sender<Option<Duration>>,
    tasks: Vec<JoinHandle<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// A builder for a worker on `store`: a sled
    /// [`Store`](refrain_history::Store), or any other backend as an
    /// `Arc<dyn HistoryStore>`.
    pub fn builder(store: impl Into<Arc<dyn HistoryStore>>) -> WorkerBuilder {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        WorkerBuilder {
            store: store.into(),
            registry: Registry::default(),
            // Workflow threads never wait for their commits (see
            // `executor`), so they are busy running workflow code or idle:
            // a couple per CPU keeps the CPUs fed while one thread applies
            // a commit inline. Measured on 2 CPUs: 4, 8 and 32 threads ran
            // 20 and 200 workflows in flight equally fast, and each thread
            // costs its stack and allocator arena.
            workflow_threads: (2 * cpus).clamp(4, 32),
            activity_slots: 100,
            cache_size: 1000,
            clock: Clock::system(),
            schedule_clock: None,
            eager_start: true,
            retention: None,
            watchdog: WatchdogConfig {
                threshold: Duration::from_secs(60),
                action: StallAction::Exit,
            },
        }
    }

    /// A client of this worker's store whose starts of the workflow types
    /// this worker runs carry their first activation, run by this worker
    /// (see [`WorkerBuilder::eager_start`]); other starts, and every start
    /// once the worker has stopped, are ordinary. `Client::new(store)`
    /// makes ordinary starts only.
    pub fn client(&self) -> Client {
        match &self.starts {
            Some(starts) => Client::with_in_process_starts(self.store.clone(), starts.clone()),
            None => Client::new(self.store.clone()),
        }
    }

    /// What the stall watchdog saw at its last check (see
    /// [`WorkerBuilder::stall_threshold`]).
    pub fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops taking new work, lets running activities finish within
    /// `grace` (they see cancellation), lets the activation in progress
    /// on each thread commit, and returns. Work left over is picked up
    /// after restart: attempts by their timeouts, activations at once.
    pub async fn shutdown(mut self, grace: Duration) {
        // Activities winding down within `grace` are not stalls.
        drop(self.watchdog.take());
        self.stop.send_replace(true);
        self.grace.send_replace(Some(grace));
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        // The dispatcher is gone, so every thread's queue closes once its
        // commits in flight have settled, and the thread exits.
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        info!("worker stopped");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.watchdog.take());
        self.stop.send_replace(true);
        self.grace.send_replace(Some(Duration::ZERO));
    }
}
