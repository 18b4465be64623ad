//! The store. Every durable state transition of Refrain happens here, each
//! in one transaction (atomic over several trees); transitions that arrive
//! together share one transaction (`batch`), each with its own checks and
//! its own outcome. Acknowledgement waits for [`Store::durable`], which
//! shares one flush (+ fsync) between all concurrent callers (group
//! commit).
//!
//! Transitions reach storage through `engine` only: sled in a directory
//! ([`Store::open`]; atomic through the store's `journal`, not sled's own
//! transactions), or ordered maps in memory ([`Store::in_memory`]), with
//! the same tables, bytes and semantics.
//!
//! What each transition reads, writes and refuses is written once, in
//! `transitions` (plain functions over one transaction's tables, with no
//! batcher, flusher, thread or wake-up in them). The operation files here
//! (`runs`, `commit`, `activities`, `timers`, ...) are the shell: each
//! picks its transition, runs it through the batcher or a transaction of
//! its own, and makes the wake-ups it reports.
//!
//! Trees (all keys from [`crate::keys`]; records and events go through
//! [`crate::codec`], plain numbers are stored as u64 BE):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | name | `epoch`, `next_run`, `run_ceiling`, `flush_mark` (u64 BE; see `tx::RunIds` and `integrity`); over a shared storage `owner/` ++ owner id: until when its leases hold (see `transitions::leases`) |
//! | `workflow_ids` | workflow id bytes | latest `RunId` (u64 BE) |
//! | `runs` | run | [`RunRecord`] |
//! | `history` | run ++ seq | [`Event`] |
//! | `inbox` | run ++ n | inbound [`Event`] |
//! | `ready` | run | empty: runs with work for an activation |
//! | `activity_tasks` | run ++ cmd | [`ActivityTaskRecord`] |
//! | `activity_ready` | visible_at ++ run ++ cmd | empty |
//! | `activity_deadlines` | deadline ++ run ++ cmd | lease token ++ owner (u64 BE each; the token alone in older stores) |
//! | `timers` | fire_at ++ run ++ cmd | empty |
//! | `human_tasks` | assignee len (u16) ++ assignee ++ run ++ cmd | [`HumanTaskRecord`] |
//! | `run_human_tasks` | run | its open human tasks ([`OpenHumanTask`]) |
//! | `journal` | entry (u64 BE) ++ chunk (u32 BE) | a transaction's writes while they are applied (`journal`) |
//! | `updates` | run ++ update id | [`UpdateRecord`] |
//! | `schedules`, `schedule_ids`, `schedule_due`, `schedule_buffered` | see [`schedules`] | |
//!
//! Lease tokens come from the engine's id generator (sled's, or a counter
//! kept with the memory tables), which stays unique across restarts, so
//! no counter of ours has to be read in every claim. Corrupt records found
//! through a time index (`timers`, `activity_ready`, `activity_deadlines`)
//! are logged and skipped until the next open, so one damaged run never
//! stalls the others.

pub mod api;
pub mod records;
pub mod retention;
pub mod schedules;
pub mod verify;

mod activities;
mod batch;
mod commit;
mod direct;
mod durability;
mod eager_start;
mod engine;
mod external;
mod gauges;
mod human_tasks;
#[cfg(feature = "test-support")]
mod idle;
mod in_memory;
mod integrity;
mod journal;
#[cfg(any(test, feature = "test-support"))]
pub mod model;
mod owners;
mod progress;
pub(crate) mod queries;
mod ready;
mod recovery;
mod runs;
mod timers;
mod transitions;
mod tx;
mod updates;

use crate::error::StoreError;
use crate::event::{Event, Failure, Payload};
use crate::ids::{CommandSeq, EventSeq, LeaseToken, RunId, Timestamp, WorkflowId};
use crate::keys;
use api::{
    Activation, ActivationCommit, ActivityResolution, DurabilityMode, RunFilter, RunSummary,
    StartOutcome, StartRequest, StoreConfig,
};
use durability::Flusher;
use ready::{CloseWaiters, ReadyQueue};
use records::{ActivityTask, ActivityTaskRecord, RunRecord};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tx::Trees;

pub use direct::{DirectActivities, LocalCompletion};
pub use durability::FlushTicket;
pub use eager_start::{EagerStart, EagerStartAnswer};
pub use engine::external::{
    Entries, ExternalEngine, ExternalError, ExternalTable, TableWrites, TxBody,
};
pub use human_tasks::{HumanTaskRecord, OpenHumanTask};
pub use in_memory::MemoryStorage;
pub use progress::{CommitProgress, FlushProgress, StoreProgress};
pub use updates::{UpdateRecord, UpdateState, UpdateWait};

use transitions::leases::{Owner, META_EPOCH};

/// Handle to an open store. Cheap to clone; all clones share one sled
/// database, one flusher and one set of in-process notifications.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    // Dropped first: what is queued is applied before the flusher's final
    // flush, which runs while everything else is still alive.
    batcher: batch::Batcher,
    flusher: Flusher,
    path: PathBuf,
    config: StoreConfig,
    /// This store as an owner of leases (its epoch); whether other
    /// owners' leases are void or stand until they expire depends on
    /// whether the storage is shared (see `transitions::leases`).
    owner: Owner,
    trees: Trees,
    ready_queue: ReadyQueue,
    activity_notify: Arc<Notify>,
    timer_notify: Arc<Notify>,
    closed: CloseWaiters,
    /// Callers of `wait_update`, by run: woken when an update of the run
    /// is answered or the run closes.
    update_waiters: CloseWaiters,
    schedules: schedules::ScheduleTrees,
    quarantine: Quarantine,
    /// Queries waiting for a worker's poll (see `history_store::queries`).
    queries: queries::QueryQueue,
    /// Set when opened with `open_read_only`. Last: its copy of the store
    /// is removed after the database is closed.
    read_only: Option<verify::ReadOnly>,
}

impl Inner {
    /// The store's state around its threads, its location and its trees;
    /// everything else starts empty.
    fn new(
        (batcher, flusher): (batch::Batcher, Flusher),
        (path, config, owner): (PathBuf, StoreConfig, Owner),
        (trees, schedules): (Trees, schedules::ScheduleTrees),
        read_only: Option<verify::ReadOnly>,
    ) -> Inner {
        Inner {
            batcher,
            flusher,
            path,
            config,
            owner,
            trees,
            ready_queue: ReadyQueue::default(),
            activity_notify: Arc::default(),
            timer_notify: Arc::default(),
            closed: CloseWaiters::default(),
            update_waiters: CloseWaiters::default(),
            schedules,
            queries: Default::default(),
            quarantine: Quarantine::default(),
            read_only,
        }
    }
}

/// Index keys whose record could not be decoded. They stay on disk (stored
/// data is never deleted behind an operator's back) but are skipped until
/// the next open, so a poller or timer service does not spin on a deadline
/// it can never handle.
#[derive(Default)]
struct Quarantine {
    keys: Mutex<HashSet<(&'static str, Vec<u8>)>>,
}

impl Quarantine {
    fn add(&self, tree: &'static str, key: &[u8]) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((tree, key.to_vec()));
    }

    fn contains(&self, tree: &'static str, key: &[u8]) -> bool {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(tree, key.to_vec()))
    }
}

/// Whether sled failed because another handle holds the file lock. sled
/// 0.34.7 reports it as an `Other` io error whose message names the lock
/// (wrapping the `WouldBlock` from `flock`).
fn is_lock_error(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

/// Opens sled, retrying while the lock is held: a handle dropped a moment
/// ago in this process may still be releasing it on a sled thread.
fn open_db(path: &Path, config: &StoreConfig) -> Result<sled::Db, StoreError> {
    let give_up = Instant::now() + config.lock_timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_capacity_bytes)
            .mode(sled::Mode::HighThroughput)
            .open();
        match opened {
            Ok(db) => return Ok(db),
            Err(e) if is_lock_error(&e) => {
                let now = Instant::now();
                if now >= give_up {
                    return Err(StoreError::StorageLocked {
                        path: path.to_path_buf(),
                    });
                }
                std::thread::sleep(pause.min(give_up - now));
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(StoreError::Storage(e)),
        }
    }
}

/// Increments and returns the epoch. Made durable before any lease is
/// granted: a crash must never let a later process reuse this epoch and
/// mistake this process's leases for its own.
fn bump_epoch(trees: &Trees) -> Result<u64, StoreError> {
    let old = match trees.meta.get(META_EPOCH)? {
        None => 0,
        Some(bytes) => tx::decode_u64(&bytes, "meta", None)?,
    };
    let epoch = old.wrapping_add(1);
    trees.meta.insert(META_EPOCH, &epoch.to_be_bytes()[..])?;
    trees.engine.flush()?;
    Ok(epoch)
}

impl Store {
    /// Opens (or creates) the store in `path`, bumps the epoch (voiding every
    /// activation lease of earlier processes), fails every activity
    /// attempt still running from an earlier process (its retry is due at
    /// once; see below) and queues every ready run.
    ///
    /// sled's file lock admits one process per store, and in embedded mode
    /// that process runs every attempt, so an attempt found running here
    /// died with the process that ran it: it is failed as a start-to-close
    /// timeout would fail it, without waiting for that deadline, and its
    /// retry (if the policy allows one) is claimable immediately.
    ///
    /// # Errors
    /// `StorageLocked` if another process holds the directory after
    /// `lock_timeout`; `Damaged` if the data file lost acknowledged
    /// transactions or sled cannot read it (nothing is written then: see
    /// [`Store::open_read_only`] and [`Store::verify`]); `Storage` for
    /// other sled failures; `Corrupt` if the meta counters cannot be read.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Store, StoreError> {
        let now = config.clock.now();
        Store::open_at(path.as_ref(), config, now)
    }

    /// [`Store::open`] with `now` as the time the open fails orphaned
    /// attempts at (a test's clock).
    fn open_at(path: &Path, config: StoreConfig, now: Timestamp) -> Result<Store, StoreError> {
        let path = path.to_path_buf();
        let db = open_db(&path, &config).map_err(|e| integrity::damaged_at_open(&path, e))?;
        // Before the first write of ours: a damaged store stays as found.
        integrity::check_at_open(&path, &db).map_err(|e| integrity::damaged_at_open(&path, e))?;
        let engine = engine::Engine::disk(&db).map_err(|e| integrity::damaged_at_open(&path, e))?;
        let trees = Trees::open(&engine).map_err(|e| integrity::damaged_at_open(&path, e))?;
        let schedule_trees = schedules::ScheduleTrees::open(&engine)?;
        let epoch = bump_epoch(&trees)?;
        // sled 0.34.7 keeps everything in this one file; our own handle
        // lets the flusher fsync it (sled's flush alone is not an fsync).
        let data_file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path.join("db"))
            .map_err(|e| StoreError::Storage(sled::Error::Io(e)))?;
        if config.durability == DurabilityMode::Fsync {
            // The epoch must survive power loss too, and a new store's files
            // must be named durably by their directory.
            data_file.sync_all().map_err(StoreError::Sync)?;
            std::fs::File::open(&path)
                .and_then(|d| d.sync_all())
                .map_err(StoreError::Sync)?;
        }
        let flusher = Flusher::start(
            db.clone(),
            &path,
            data_file,
            config.durability,
            (
                integrity::FlushMarks::open(db.open_tree("meta")?)?,
                integrity::Watermark::open(&path)?,
            ),
        )?;
        let owner = Owner {
            id: epoch,
            shared: false,
        };
        Store::start(flusher, (path, config, owner), (trees, schedule_trees), now)
    }

    /// The store over `trees`, once its storage is open, its epoch bumped
    /// and its flusher running: what every open does next, on either
    /// engine (see [`Store::open`]); `now` is the time orphaned attempts
    /// fail at.
    fn start(
        flusher: Flusher,
        (path, config, owner): (PathBuf, StoreConfig, Owner),
        (trees, schedule_trees): (Trees, schedules::ScheduleTrees),
        now: Timestamp,
    ) -> Result<Store, StoreError> {
        let batcher = batch::Batcher::start(trees.clone())?;
        let inner = Inner::new(
            (batcher, flusher),
            (path, config, owner),
            (trees, schedule_trees),
            None,
        );
        inner.expire_orphaned_attempts(now)?;
        for key in inner.trees.ready.iter().keys() {
            let key = key?;
            match keys::parse_run_key(&key) {
                Ok(run) => inner.ready_queue.push(run),
                Err(bad) => tracing::warn!(?bad, "skipping malformed key in the ready tree"),
            }
        }
        let inner = Arc::new(inner);
        if owner.shared {
            owners::start_renewal(&inner)?;
        }
        Ok(Store { inner })
    }

    /// Opens the copy in `scratch` of the store in `path` without writing
    /// anything of Refrain's own (see [`Store::open_read_only`]).
    fn open_copy(
        path: &Path,
        config: StoreConfig,
        scratch: verify::Scratch,
    ) -> Result<Store, StoreError> {
        let copy = scratch.path().to_path_buf();
        let db = open_db(&copy, &config).map_err(|e| integrity::damaged_at_open(path, e))?;
        let damage_at_open = integrity::missing_at_open(&copy, &db)
            .map_err(|e| integrity::damaged_at_open(path, e))?;
        // Completes, in the copy, what a crash interrupted: reads then see
        // whole transactions.
        let engine = engine::Engine::disk(&db).map_err(|e| integrity::damaged_at_open(path, e))?;
        let trees = Trees::open(&engine).map_err(|e| integrity::damaged_at_open(path, e))?;
        let schedule_trees = schedules::ScheduleTrees::open(&engine)?;
        let epoch = match trees.meta.get(META_EPOCH)? {
            None => 0,
            Some(bytes) => tx::decode_u64(&bytes, "meta", None)?,
        };
        let inner = Inner::new(
            (batch::Batcher::start(trees.clone())?, Flusher::read_only()?),
            (
                path.to_path_buf(),
                config,
                Owner {
                    id: epoch,
                    shared: false,
                },
            ),
            (trees, schedule_trees),
            Some(verify::ReadOnly {
                damage_at_open,
                _scratch: scratch,
            }),
        );
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// The directory the store lives in; empty for a store in memory
    /// ([`Store::in_memory`]).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Waits until every write made before this call is durable in the
    /// configured [`DurabilityMode`]. Concurrent callers
    /// share one flush and one fsync.
    ///
    /// # Errors
    /// `Sync` or `Storage` if the flush failed; after that the store refuses
    /// every later acknowledgement (`Closed`).
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.inner.flusher.durable().await
    }

    /// Blocking form of [`Store::durable`], for threads outside an async
    /// runtime.
    ///
    /// # Errors
    /// As [`Store::durable`].
    ///
    /// # Panics
    /// If called from within an async runtime (it blocks the thread on a
    /// tokio channel); use [`Store::durable`] there.
    pub fn durable_blocking(&self) -> Result<(), StoreError> {
        self.inner.flusher.durable_blocking()
    }

    /// Waits until every write made before `ticket` was taken is durable:
    /// the ticket of a claimed [`ActivityTask`] (`durable_after`) says when
    /// the history that schedules the attempt is, and the attempt must not
    /// start before. Rides the group commit like [`Store::durable`], and
    /// returns at once when a flush already covered the ticket.
    ///
    /// # Errors
    /// As [`Store::durable`].
    pub async fn durable_since(&self, ticket: FlushTicket) -> Result<(), StoreError> {
        self.inner.flusher.durable_since(Some(ticket)).await
    }

    // ----- clients -----

    /// Starts a run: writes `WorkflowStarted` as event 1 (its encoded size
    /// is the run's first `history_bytes`), maps the id to the new run and
    /// marks it ready. With `AttachToOpen`, an open run of the id
    /// is returned instead (`started: false`) and nothing is written; a
    /// closed run of the id does not prevent a new one. With `UseExisting`,
    /// the latest run of the id is returned whether open or closed.
    ///
    /// (A start that carries its first activation is made with
    /// [`Store::reserve_eager_start`] and [`Store::start_eager_then`].)
    ///
    /// Not durable until [`Store::durable`] returns.
    ///
    /// # Errors
    /// `AlreadyRunning` (policy `Reject`), `PayloadTooLarge`; nothing is
    /// written on error.
    pub fn start_workflow(&self, req: StartRequest) -> Result<StartOutcome, StoreError> {
        self.inner.start_workflow(req)
    }

    /// [`Store::start_workflow`] for async callers: while another
    /// transaction is being applied it waits without blocking the thread,
    /// so starts from many tasks share one transaction. If the future is
    /// dropped before it completes, the run may still have started; it is
    /// then queued (or, if eager, carried on) by this process all the
    /// same, since whoever commits the start makes its wake-ups.
    ///
    /// # Errors
    /// As [`Store::start_workflow`].
    pub async fn start_workflow_async(
        &self,
        req: StartRequest,
    ) -> Result<StartOutcome, StoreError> {
        self.inner.start_workflow_async(req).await
    }

    /// Appends a `SignalReceived` to the latest run of `workflow_id`.
    ///
    /// # Errors
    /// `WorkflowNotFound`, `WorkflowClosed`, `PayloadTooLarge`; nothing is
    /// written on error.
    pub fn signal(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        payload: Payload,
    ) -> Result<RunId, StoreError> {
        self.inner.signal(workflow_id, name, payload, None)
    }

    /// Like [`Store::signal`], recording who sent the signal.
    ///
    /// # Errors
    /// As [`Store::signal`].
    pub fn signal_from(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        payload: Payload,
        sender: &str,
    ) -> Result<RunId, StoreError> {
        self.inner.signal(workflow_id, name, payload, Some(sender))
    }

    /// [`Store::signal`] (with `sender`, as [`Store::signal_from`]) for
    /// async callers: while a transaction is in progress it waits without
    /// blocking its thread, and concurrent signals share a transaction.
    ///
    /// # Errors
    /// As [`Store::signal`].
    pub async fn signal_async(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        payload: Payload,
        sender: Option<&str>,
    ) -> Result<RunId, StoreError> {
        self.inner
            .signal_async(workflow_id, name, payload, sender)
            .await
    }

    /// Asks the latest run of `workflow_id` to cancel: appends
    /// `WorkflowCancelRequested` to its inbox. The workflow decides what
    /// cancelling means (it may clean up first); see `terminate` for an
    /// immediate end.
    ///
    /// # Errors
    /// `WorkflowNotFound`, `WorkflowClosed`; nothing is written on error.
    pub fn request_cancel(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        requested_by: Option<&str>,
    ) -> Result<RunId, StoreError> {
        self.inner.request_cancel(workflow_id, reason, requested_by)
    }

    /// [`Store::request_cancel`] for async callers (see
    /// [`Store::signal_async`]).
    ///
    /// # Errors
    /// As [`Store::request_cancel`].
    pub async fn request_cancel_async(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        requested_by: Option<&str>,
    ) -> Result<RunId, StoreError> {
        self.inner
            .request_cancel_async(workflow_id, reason, requested_by)
            .await
    }

    /// Ends the latest run of `workflow_id` now, without cleanup: appends
    /// `WorkflowTerminated` and closes the run as `Terminated`, deleting its
    /// timers and activity tasks.
    ///
    /// Not durable until [`Store::durable`] returns.
    ///
    /// # Errors
    /// `WorkflowNotFound`, `WorkflowClosed`; nothing is written on error.
    pub fn terminate(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        now: Timestamp,
    ) -> Result<RunId, StoreError> {
        self.inner.terminate(workflow_id, reason, None, now)
    }

    /// As [`Store::terminate`], recording who terminated the run
    /// (`WorkflowTerminated::terminated_by`).
    ///
    /// # Errors
    /// As [`Store::terminate`].
    pub fn terminate_by(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        terminated_by: Option<&str>,
        now: Timestamp,
    ) -> Result<RunId, StoreError> {
        self.inner
            .terminate(workflow_id, reason, terminated_by, now)
    }

    /// The queries waiting for a worker (see `HistoryStore::query`).
    pub(crate) fn queries(&self) -> &queries::QueryQueue {
        &self.inner.queries
    }

    /// Commits an eager start with the first activation of its run, which
    /// the caller ran with [`EagerStart::run`] and [`EagerStart::started`]
    /// (`commit.expected_last_seq` is the record's `last_seq`, its token
    /// [`LeaseToken::UNLEASED`]), in one operation that joins the
    /// transaction batch like any other. The waiting start is answered
    /// when it is applied; `done` is called exactly once, as for
    /// [`Store::commit_activation_then`] (same rules: short, and no store
    /// calls), with the activities `direct.claim` claimed for the caller;
    /// with `None` if the workflow id stands for another run under the
    /// start's conflict policy (the activation is discarded and the start
    /// answered as an ordinary one); with the error if the operation was
    /// refused, in which case nothing was written and the start is made
    /// the ordinary way.
    ///
    /// Not durable until [`Store::durable`] returns.
    pub fn start_eager_then(
        &self,
        start: EagerStart,
        commit: ActivationCommit,
        direct: DirectActivities,
        done: impl FnOnce(Result<Option<Vec<ActivityTask>>, StoreError>) + Send + 'static,
    ) {
        eager_start::start_eager_detached(&self.inner, start, commit, direct, done)
    }

    /// The latest run of `workflow_id`, if any.
    ///
    /// # Errors
    /// `Corrupt` or `Storage`.
    pub fn latest_run(
        &self,
        workflow_id: &WorkflowId,
    ) -> Result<Option<(RunId, RunRecord)>, StoreError> {
        self.inner.latest_run(workflow_id)
    }

    /// The record of `run`, if it exists.
    ///
    /// # Errors
    /// `Corrupt` or `Storage`.
    pub fn run_record(&self, run: RunId) -> Result<Option<RunRecord>, StoreError> {
        self.inner.run_record(run)
    }

    /// The record of a pending activity task.
    ///
    /// # Errors
    /// `Corrupt` or `Storage`.
    pub fn activity_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
    ) -> Result<Option<ActivityTaskRecord>, StoreError> {
        self.inner.activity_task(run, cmd)
    }

    /// Runs matching `filter`, in run order.
    ///
    /// # Errors
    /// `Corrupt` or `Storage`.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StoreError> {
        self.inner.list_runs(filter)
    }

    /// Up to `limit` runs matching `filter` in `order`, past run `from`
    /// in that order: one page of `HistoryStore::list_runs`.
    pub(crate) fn list_runs_from(
        &self,
        filter: &RunFilter,
        from: Option<RunId>,
        order: api::ListOrder,
        limit: usize,
    ) -> Result<Vec<RunSummary>, StoreError> {
        self.inner.list_runs_from(filter, from, order, limit)
    }

    /// Waits until `run` is closed and its closing is durable, and returns
    /// its record (with `outcome` set, except for a run that continued as
    /// new).
    ///
    /// A run that continued as new is closed: its record has status
    /// `ContinuedAsNew`, no outcome, and `continued_to` naming the next
    /// run. Callers that want the workflow's result follow `continued_to`
    /// (and wait on that run) until a run completes or fails.
    ///
    /// # Errors
    /// `RunNotFound`, `Corrupt`, `Storage`, `Sync`.
    pub async fn wait_closed(&self, run: RunId) -> Result<RunRecord, StoreError> {
        // From the commit that closed the run, when it woke us.
        let mut ticket = None;
        loop {
            // Registered before the read, so a close between the read and
            // the await still wakes us.
            let woken = self.inner.closed.register(run);
            let record = self
                .inner
                .run_record(run)?
                .ok_or(StoreError::RunNotFound { run })?;
            if !record.status.is_open() {
                let flusher = &self.inner.flusher;
                self.inner.closed.wake(run, || flusher.ticket());
                flusher.durable_since(ticket).await?;
                return Ok(record);
            }
            // An error only means the sender was dropped by another waiter's
            // clean-up: look again either way. A run closes once, so a
            // ticket from the commit that closed it covers the close the
            // next read finds.
            ticket = self.inner.woken(woken).await;
        }
    }

    /// The whole history of `run`; element `i` is event `i + 1`.
    ///
    /// # Errors
    /// `RunNotFound`; `Corrupt { what: "history", run: Some(run), .. }` for
    /// undecodable events.
    pub fn read_history(&self, run: RunId) -> Result<Vec<Event>, StoreError> {
        self.inner.read_history(run)
    }

    /// [`Store::read_history`] from event `from` on (the whole history is
    /// still checked against the run's record; only the events asked for
    /// are decoded).
    ///
    /// # Errors
    /// As [`Store::read_history`].
    pub fn read_history_from(&self, run: RunId, from: EventSeq) -> Result<Vec<Event>, StoreError> {
        self.inner.read_history_from(run, from)
    }

    // ----- activations -----

    /// Takes up to `max` runs from the in-process ready queue. A run is
    /// queued (once, deduplicated) when it becomes ready: at start, when an
    /// inbound event enters its inbox, when [`Store::requeue`] is called,
    /// and at open for every run in the `ready` tree; over a shared
    /// storage also when a walk of the `ready` table (every
    /// [`StoreConfig::discovery_interval`]) finds it free of live leases,
    /// however it became ready.
    pub fn take_ready(&self, max: usize) -> Vec<RunId> {
        self.inner.ready_queue.take(max)
    }

    /// Notified whenever a run is queued.
    pub fn ready_notify(&self) -> &Notify {
        self.inner.ready_queue.notify()
    }

    /// Puts `run` back on the ready queue (after a failed task's backoff).
    pub fn requeue(&self, run: RunId) {
        self.inner.ready_queue.push(run);
    }

    /// Claims the activation of `run`: sets a lease (new token, this
    /// store as its owner) and returns the record and the inbox items from
    /// `inbox_head` up to `inbox_tail` at claim time. `None` if the run is
    /// closed, not ready, missing, or already leased by this store; over
    /// a shared storage also while another store's lease on it holds
    /// (until that store stops renewing its leases for
    /// [`StoreConfig::lease_duration`]).
    ///
    /// # Errors
    /// `Corrupt` (run record or an inbox item), `Storage`.
    pub fn claim_activation(&self, run: RunId) -> Result<Option<Activation>, StoreError> {
        self.inner.claim_activation(run)
    }

    /// Takes the activation of `run` without a lease, for a caller that
    /// already guarantees one task per run at a time (the worker's
    /// dispatcher): reads the record and the inbox items from `inbox_head`
    /// up to `inbox_tail`, writes nothing, and returns a task whose token is
    /// [`LeaseToken::UNLEASED`]. Its commit is fenced by
    /// `expected_last_seq` (a run that moved on refuses it with
    /// `Conflict`) and by leases (refused with `LeaseLost` while another
    /// task holds a lease of this epoch). `None` if the run is closed, not
    /// ready, missing, or leased in this epoch.
    ///
    /// Saves the claim transaction of [`Store::claim_activation`]; use
    /// that one where several workers may take the same run.
    ///
    /// Over a storage shared with other stores (a shared
    /// [`MemoryStorage`]), where another store's worker may take the same
    /// run, it takes a lease as [`Store::claim_activation`] does (the
    /// task's token is then a real one, for the commit to present), and
    /// `None` also when another live store holds the run. A run this store
    /// holds is leased again: its tasks are told apart by
    /// `expected_last_seq`, as without leases.
    ///
    /// # Errors
    /// `Corrupt` (run record or an inbox item), `Storage`.
    pub fn begin_activation(&self, run: RunId) -> Result<Option<Activation>, StoreError> {
        self.inner.begin_activation(run, true)
    }

    /// [`Store::begin_activation`] for a caller that brings inbound
    /// events of its own (results of attempts completed in its process,
    /// for [`Store::commit_activation_direct`]): returns a task for an open
    /// run even when its inbox is empty. Over a shared storage it leases
    /// the run, as [`Store::begin_activation`] does.
    ///
    /// # Errors
    /// As [`Store::begin_activation`].
    pub fn begin_activation_with_results(
        &self,
        run: RunId,
    ) -> Result<Option<Activation>, StoreError> {
        self.inner.begin_activation(run, false)
    }

    /// Commits one activation in one transaction: checks the lease token
    /// (or, for [`LeaseToken::UNLEASED`], that no lease is held) and
    /// `expected_last_seq`, appends `events` contiguously, deletes the inbox
    /// items below `inbox_upto`, and applies what the events imply:
    /// `ActivityScheduled` creates an activity task visible now (attempt 1),
    /// `TimerStarted` a timer, `TimerCancelled` removes one, and
    /// `WorkflowCompleted`/`WorkflowFailed` close the run (status, outcome,
    /// closed_at) and delete its pending timers and activity tasks. Adds the
    /// encoded size of the appended events to `history_bytes`. Releases
    /// the lease; keeps or removes the run in `ready` depending on whether
    /// work remains (and queues it if so). Wakes activity pollers, timer
    /// service, and `wait_closed` callers as needed.
    ///
    /// `events` must be one activation: `ActivationStarted` first, then the
    /// inbound events it applied, then the commands it produced, a terminal
    /// command only last. The `ActivationStarted` time is the commit's
    /// clock: new activity tasks become visible and a closing run records
    /// `closed_at` at that time.
    ///
    /// # Continue-as-new
    ///
    /// A terminal `WorkflowContinuedAsNew { input, seed, carried_signals }`
    /// closes the run like the other terminal commands, with status
    /// `ContinuedAsNew` and no outcome, and in the same transaction starts
    /// the next run of the workflow id: a new run number, event 1
    /// `WorkflowStarted` (same type and id, `input`, `seed`, start time =
    /// the commit's clock, `continued_from` = this run, this run's
    /// `parent`), a ready record, and the id mapped to it; this run's
    /// `continued_to` names it. The new run's inbox holds first
    /// `carried_signals` as `SignalReceived`, in order, then the signals
    /// that reached this run after the claim (inbox items from
    /// `inbox_upto` on), moved in arrival order. This run's other late
    /// inbox items (results of its activities and timers) are deleted with
    /// the commands they answer. A concurrent [`Store::signal`] is ordered
    /// before the commit (and moved) or after it (and reaches the new run):
    /// no signal is lost or delivered twice.
    ///
    /// # History limits
    ///
    /// A commit that would take the run past
    /// [`StoreConfig::max_history_events`] events or
    /// [`StoreConfig::max_history_bytes`] encoded bytes is refused with
    /// `HistoryLimitExceeded`, unless its command part is exactly one
    /// `WorkflowFailed`: a worker can always close an over-long run with a
    /// failure. Workflows that would grow past the limits should continue
    /// as new before they reach them (a continue-as-new commit is not
    /// exempt).
    ///
    /// Not durable until [`Store::durable`] returns.
    ///
    /// # Errors
    /// `LeaseLost`, `Conflict`, `InvalidCommit`, `PayloadTooLarge`,
    /// `HistoryLimitExceeded`; `Corrupt` if continuing as new meets an
    /// undecodable late inbox item (it might be a signal). Nothing is
    /// written on error.
    pub fn commit_activation(&self, commit: ActivationCommit) -> Result<(), StoreError> {
        self.inner.commit_activation(commit)
    }

    /// [`Store::commit_activation`] that also resolves attempts completed
    /// in the caller's process and claims, for the caller, activities the
    /// commit schedules, all in the same transaction (see [`DirectActivities`]).
    ///
    /// Each `direct.completed` attempt must be running under its token (as
    /// for [`Store::complete_activity`]) and its `ActivityCompleted` (same
    /// cmd and attempt) must be among the commit's inbound events, exactly
    /// once; the attempt's task is then removed instead of its result
    /// entering the inbox. Activities in `direct.claim` that this commit
    /// schedules are claimed as [`Store::claim_activity_tasks`] would claim
    /// them and returned; the caller runs them (others are left to
    /// pollers).
    ///
    /// # Errors
    /// As [`Store::commit_activation`]; `StaleActivity` if a completed
    /// attempt no longer holds its token, `InvalidCommit` if its result is
    /// not carried. Nothing is written on error.
    pub fn commit_activation_direct(
        &self,
        commit: ActivationCommit,
        direct: DirectActivities,
    ) -> Result<Vec<ActivityTask>, StoreError> {
        self.inner.commit_activation_direct(commit, direct)
    }

    /// [`Store::commit_activation_direct`] for a caller that goes on with
    /// other work meanwhile: the commit joins the transaction batch like
    /// any other, and `done` is called exactly once with its outcome. When
    /// no transaction is in progress the commit is applied at once on this
    /// thread and `done` is called before this returns; otherwise `done`
    /// is called on the store's committer thread after the batch is
    /// applied (`Closed` if the store shuts down first).
    ///
    /// `done` runs while the committer holds the next batch back, so it
    /// must be short and must not call the store (it would wait for
    /// itself): hand the outcome to another thread.
    ///
    /// Not durable until [`Store::durable_since`] the ticket `done` gets
    /// (taken when the commit was applied, so a flush already under way
    /// can answer it) returns.
    pub fn commit_activation_then(
        &self,
        commit: ActivationCommit,
        direct: DirectActivities,
        done: impl FnOnce(Result<(Vec<ActivityTask>, FlushTicket), StoreError>) + Send + 'static,
    ) {
        direct::commit_activation_detached(&self.inner, commit, direct, done)
    }

    /// Releases an activation without committing (the workflow panicked,
    /// diverged from its history, or its history is corrupt) and records
    /// `failure` in `last_task_failure`. The run stays in the `ready` tree
    /// but is not queued: the caller decides when to [`Store::requeue`].
    ///
    /// # Errors
    /// `LeaseLost` if the token no longer holds.
    pub fn release_activation(
        &self,
        run: RunId,
        token: LeaseToken,
        failure: Option<String>,
    ) -> Result<(), StoreError> {
        self.inner.release_activation(run, token, failure)
    }

    // ----- activity tasks -----

    /// Notified when an activity task may have become claimable.
    pub fn activity_notify(&self) -> &Notify {
        &self.inner.activity_notify
    }

    /// Claims up to `max` activity tasks visible at `now`, oldest first:
    /// each becomes `Running` with a new token and a deadline of
    /// min(now + start_to_close, now + heartbeat_timeout,
    /// first_scheduled_at + schedule_to_close), indexed in
    /// `activity_deadlines`. A task whose schedule-to-close has already
    /// passed is failed instead of returned.
    ///
    /// A claimed attempt may start only once [`Store::durable_since`]
    /// returns for its `durable_after` ticket (see [`ActivityTask`]).
    ///
    /// A task whose record cannot be decoded is skipped and logged (and not
    /// offered again until the store is reopened) rather than failing the
    /// claim for every other run.
    ///
    /// # Errors
    /// `Storage`.
    pub fn claim_activity_tasks(
        &self,
        now: Timestamp,
        max: usize,
    ) -> Result<Vec<ActivityTask>, StoreError> {
        self.inner.claim_activity_tasks(now, max)
    }

    /// [`Store::claim_activity_tasks`] for async callers: waits for the
    /// transaction without blocking the thread. If the future is dropped
    /// before it completes, tasks may have been claimed; they are retried
    /// when their attempt deadlines pass.
    ///
    /// # Errors
    /// As [`Store::claim_activity_tasks`].
    pub async fn claim_activity_tasks_async(
        &self,
        now: Timestamp,
        max: usize,
    ) -> Result<Vec<ActivityTask>, StoreError> {
        self.inner.claim_activity_tasks_async(now, max).await
    }

    /// Earliest `visible_at` among scheduled activity tasks, so pollers can
    /// sleep until a retry's backoff ends.
    ///
    /// # Errors
    /// `Storage`.
    pub fn next_activity_visible(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_activity_visible()
    }

    /// Records the outcome of a running attempt presented with its token.
    /// Success enters the inbox as `ActivityCompleted`. A failure is retried
    /// when the task's policy allows it (`allows_retry(attempt, kind)`, not
    /// `non_retryable`, and the next attempt would start before the
    /// schedule-to-close deadline): the task becomes `Scheduled` at
    /// now + `backoff_after(attempt)` with `attempt + 1` and `last_failure`
    /// set. Otherwise it enters the inbox as `ActivityFailed`. Either inbox
    /// entry removes the task and marks the run ready.
    ///
    /// # Errors
    /// `StaleActivity` if the task is gone or not running under `token`
    /// (nothing is written: a late result of a timed-out attempt is never
    /// recorded); `PayloadTooLarge`.
    pub fn complete_activity(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        outcome: Result<Payload, Failure>,
        now: Timestamp,
    ) -> Result<ActivityResolution, StoreError> {
        self.inner.complete_activity(run, cmd, token, outcome, now)
    }

    /// [`Store::complete_activity`] for async callers: while another
    /// transaction is being applied it waits without blocking the thread,
    /// so completions from many tasks share one transaction. If the future
    /// is dropped before it completes, the outcome may still be recorded
    /// (once: the token check holds as always), and the run is then queued
    /// by the next [`Store::open`] rather than by this process.
    ///
    /// # Errors
    /// As [`Store::complete_activity`].
    pub async fn complete_activity_async(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        outcome: Result<Payload, Failure>,
        now: Timestamp,
    ) -> Result<ActivityResolution, StoreError> {
        self.inner
            .complete_activity_async(run, cmd, token, outcome, now)
            .await
    }

    /// Records a heartbeat: stores `details` (if given) for later attempts
    /// and, with a heartbeat timeout, moves the attempt's deadline to
    /// min(now + heartbeat_timeout, start-to-close deadline,
    /// schedule-to-close deadline).
    ///
    /// # Errors
    /// `StaleActivity` if the attempt no longer holds `token`.
    pub fn heartbeat_activity(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
    ) -> Result<api::HeartbeatAck, StoreError> {
        self.inner.heartbeat_activity(run, cmd, token, details, now)
    }

    // ----- human tasks -----

    /// The open human tasks assigned to `assignee` now, by run and command.
    /// A task leaves the list when it is decided, escalated to someone else,
    /// closed, or its run closes.
    ///
    /// # Errors
    /// `Storage`. An undecodable record is logged and left out.
    pub fn list_human_tasks(&self, assignee: &str) -> Result<Vec<HumanTaskRecord>, StoreError> {
        self.inner.list_human_tasks(assignee)
    }

    /// The open human tasks of `run`, in assignment order.
    ///
    /// # Errors
    /// `Corrupt` or `Storage`.
    pub fn human_tasks_of_run(&self, run: RunId) -> Result<Vec<HumanTaskRecord>, StoreError> {
        self.inner.human_tasks_of_run(run)
    }

    /// Records a person's decision on the open human task `cmd` of `run`:
    /// appends `HumanTaskDecided` (with `now` as the time of the decision)
    /// to the run's inbox, removes the task from its assignee's list and
    /// queues the run, in one transaction. Whoever holds the reference may
    /// decide; `decided_by` says who did, for the audit trail.
    ///
    /// Not durable until [`Store::durable`] returns.
    ///
    /// # Errors
    /// `HumanTaskClosed` if the task was already decided or closed, or its
    /// run closed; `HumanTaskNotFound` if the run never assigned a task
    /// `cmd`; `PayloadTooLarge`. Nothing is written on error.
    pub fn decide_human_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
        decision: Payload,
        decided_by: &str,
        comment: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.decide_human_task(human_tasks::Decision {
            run,
            cmd,
            decision,
            decided_by,
            comment,
            expected_assignee: None,
            now,
        })
    }

    // ----- updates -----

    /// Requests update `name` with `input` of the open latest run of
    /// `workflow_id`, under the caller's `update_id`: records the request
    /// and puts an `UpdateRequested` in the run's inbox, in one
    /// transaction. A second request with an id the run already has is
    /// the same request (nothing is written). Returns the run.
    ///
    /// Not durable until [`Store::durable`] returns.
    ///
    /// # Errors
    /// `WorkflowNotFound`, `WorkflowClosed`, `PayloadTooLarge`; nothing is
    /// written on error.
    pub fn request_update(
        &self,
        workflow_id: &WorkflowId,
        update_id: &str,
        name: &str,
        input: Payload,
        now: Timestamp,
    ) -> Result<RunId, StoreError> {
        self.inner
            .request_update(workflow_id, update_id, name, input, now)
    }

    /// The state of update `update_id` of `run`, if it was requested.
    ///
    /// # Errors
    /// `Corrupt` or `Storage`.
    pub fn update_record(
        &self,
        run: RunId,
        update_id: &str,
    ) -> Result<Option<UpdateRecord>, StoreError> {
        self.inner.update_record(run, update_id)
    }

    /// Waits until update `update_id` of `run` is answered (then until the
    /// answer is durable) or the run closes without answering it.
    ///
    /// # Errors
    /// `UpdateNotFound` if it was never requested; `RunNotFound`;
    /// `Corrupt`, `Storage`, `Sync`.
    pub async fn wait_update(&self, run: RunId, update_id: &str) -> Result<UpdateWait, StoreError> {
        loop {
            // Registered before the reads, so an answer between them and
            // the await still wakes us.
            let woken = self.inner.update_waiters.register(run);
            let update = self.inner.update_record(run, update_id)?.ok_or_else(|| {
                StoreError::UpdateNotFound {
                    run,
                    update_id: update_id.to_owned(),
                }
            })?;
            if update.state.is_answered() {
                self.durable().await?;
                return Ok(UpdateWait::Answered(update));
            }
            let record = self
                .inner
                .run_record(run)?
                .ok_or(StoreError::RunNotFound { run })?;
            if !record.status.is_open() {
                self.durable().await?;
                return Ok(UpdateWait::RunClosed {
                    update,
                    record: Box::new(record),
                });
            }
            // An error only means the sender was dropped by another
            // waiter's clean-up: look again either way. The wake-up's
            // flush ticket is not used: it covers the commit that woke us,
            // which may answer another update than the one read next.
            let _ = self.inner.woken(woken).await;
        }
    }

    // ----- time -----

    /// Notified when a timer or attempt deadline earlier than any known may
    /// have been added.
    pub fn timer_notify(&self) -> &Notify {
        &self.inner.timer_notify
    }

    /// Earliest timer fire time or running-attempt deadline.
    ///
    /// # Errors
    /// `Storage`.
    pub fn next_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_deadline()
    }

    /// Fires every timer due at `now` (once: the timer key is removed in
    /// the same transaction that enters `TimerFired` in the inbox) and
    /// expires every running attempt whose deadline passed (a timeout
    /// failure, retried or recorded as in `complete_activity`). Returns how
    /// many were handled.
    ///
    /// # Errors
    /// `Storage`; a corrupt record is skipped and logged, not fatal.
    pub fn fire_due(&self, now: Timestamp) -> Result<usize, StoreError> {
        self.inner.fire_due(now)
    }
}
