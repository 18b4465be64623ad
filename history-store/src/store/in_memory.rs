//! A store without a directory: every transition, the batching and group
//! commit, the ready queue, notifications, timers, schedules and the
//! open-time recovery, over the in-memory engine (see `engine::memory`).
//! For tests that need no files, and for comparing the engines.

use super::api::StoreConfig;
use super::durability::Flusher;
pub use super::engine::memory::MemoryStorage;
use super::engine::Engine;
use super::transitions::leases::Owner;
use super::tx::Trees;
use super::{bump_epoch, owners, schedules, Store};
use crate::error::StoreError;
use crate::ids::Timestamp;
use std::path::PathBuf;

impl Store {
    /// A new, empty store held in memory: the same transitions as a store
    /// opened with [`Store::open`], with nothing written to disk. Its
    /// [`DurabilityMode`](crate::DurabilityMode) only decides whether
    /// [`Store::durable`] waits for a (no-op) group flush; nothing survives
    /// the process. [`Store::path`] is empty; [`Store::verify`] checks
    /// its tables as it would a directory's ([`Store::open_read_only`]
    /// opens directories only). To restart it, keep its
    /// [`Store::memory_storage`], drop every handle, and
    /// [`Store::open_in_memory`] again.
    ///
    /// # Panics
    /// If the operating system refuses to start the store's committer or
    /// flusher thread.
    pub fn in_memory(config: StoreConfig) -> Store {
        match Store::open_in_memory(&MemoryStorage::new(), config) {
            Ok(store) => store,
            Err(e) => panic!("cannot start an in-memory store: {e}"),
        }
    }

    /// Opens (or reopens) a store over `storage`, as [`Store::open`] opens
    /// a directory: bumps the epoch (voiding every activation lease of
    /// an earlier store over it), fails every activity attempt still
    /// running (its retry is due at once) and queues every ready run.
    /// Reopening after the last handle of the previous store was dropped
    /// is how a test restarts an in-memory store.
    ///
    /// Over a [`MemoryStorage::shared`] storage, other stores may be open
    /// at the same time, as processes over one database. Each is then an
    /// owner whose leases on runs and attempts hold until it stops
    /// renewing them for [`StoreConfig::lease_duration`] (dropping the
    /// store stops it, as a crash would); only then may another store take
    /// its runs over and fail its running attempts. The open fails only
    /// the attempts of owners already gone, finds work in the `ready`
    /// table every [`StoreConfig::discovery_interval`], and draws run
    /// numbers from blocks no other store draws from.
    ///
    /// # Errors
    /// `StorageLocked` (with an empty path) if another store over
    /// `storage` is still open after `lock_timeout`; `Sync` if the store's
    /// threads cannot be started; `Corrupt` if the meta counters cannot be
    /// read.
    pub fn open_in_memory(
        storage: &MemoryStorage,
        config: StoreConfig,
    ) -> Result<Store, StoreError> {
        let now = config.clock.now();
        Store::open_in_memory_at(storage, config, now)
    }

    /// [`Store::open_in_memory`] with `now` as the time the open fails
    /// orphaned attempts at (a test's clock).
    pub(super) fn open_in_memory_at(
        storage: &MemoryStorage,
        config: StoreConfig,
        now: Timestamp,
    ) -> Result<Store, StoreError> {
        let engine = Engine::memory(storage, config.lock_timeout)?;
        let trees = Trees::open(&engine)?;
        let schedule_trees = schedules::ScheduleTrees::open(&engine)?;
        let owner = if engine.is_shared() {
            owners::register(&trees, now, config.lease_duration)?
        } else {
            Owner {
                id: bump_epoch(&trees)?,
                shared: false,
            }
        };
        let flusher = Flusher::in_memory(config.durability)?;
        Store::start(
            flusher,
            (PathBuf::new(), config, owner),
            (trees, schedule_trees),
            now,
        )
    }

    /// The storage of a store opened in memory (to open it again after a
    /// restart); `None` for a store in a directory.
    pub fn memory_storage(&self) -> Option<MemoryStorage> {
        match &self.inner.trees.engine {
            Engine::Memory(e) => Some(e.storage().clone()),
            Engine::Disk(_) | Engine::External(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Callsite, Event, FailureCause, Payload, TimeoutKind};
    use crate::ids::{CommandSeq, Timestamp};
    use crate::options::{ActivityOptions, RetryPolicy};
    use crate::store::api::{ActivationCommit, ActivityResolution, IdConflictPolicy, StartRequest};
    use crate::store::records::ActivityState;
    use std::time::Duration;

    fn payload(s: &str) -> Payload {
        Payload::from_bytes(s.as_bytes().to_vec())
    }

    /// A run whose first activation (at `t`) schedules activity 1 with a
    /// ten-second start-to-close and retries 500 ms apart.
    fn with_activity(store: &Store, t: Timestamp) -> crate::ids::RunId {
        let run = store
            .start_workflow(StartRequest {
                workflow_id: "order-1".into(),
                workflow_type: "order-to-cash".into(),
                input: payload("{}"),
                on_conflict: IdConflictPolicy::Reject,
                seed: 7,
                now: t,
            })
            .unwrap()
            .run;
        let task = store.claim_activation(run).unwrap().unwrap();
        let mut events = vec![Event::ActivationStarted { time: t }];
        events.extend(task.inbox.iter().cloned());
        events.push(Event::ActivityScheduled {
            cmd: CommandSeq(1),
            activity_type: "reserve-stock".into(),
            input: payload("\"sku-1\""),
            options: ActivityOptions {
                start_to_close: Some(Duration::from_secs(10)),
                schedule_to_close: None,
                heartbeat_timeout: None,
                retry: RetryPolicy::exponential()
                    .initial_interval(Duration::from_millis(500))
                    .max_attempts(0),
            },
            callsite: Callsite {
                file: "order.rs".into(),
                line: 1,
                column: 1,
            },
        });
        store
            .commit_activation(ActivationCommit {
                run,
                token: task.token,
                expected_last_seq: task.record.last_seq,
                inbox_upto: task.inbox_upto,
                events,
                rejected_updates: Vec::new(),
                awaited_signals: Vec::new(),
            })
            .unwrap();
        run
    }

    #[test]
    fn a_timed_out_attempt_is_retried_and_only_the_retry_may_answer() {
        let store = Store::in_memory(StoreConfig::default());
        assert_eq!(store.path(), std::path::Path::new(""));
        let t0 = Timestamp(1_700_000_000_000);
        let at = |ms: u64| Timestamp(t0.0 + ms);
        let run = with_activity(&store, t0);

        let slow = store.claim_activity_tasks(t0, 10).unwrap().remove(0);
        assert_eq!(slow.deadline, at(10_000));
        assert_eq!(store.fire_due(at(9_999)).unwrap(), 0);
        assert_eq!(
            store.fire_due(at(10_000)).unwrap(),
            1,
            "the attempt expires"
        );
        let task = store.activity_task(run, slow.cmd).unwrap().unwrap();
        assert_eq!(task.attempt, 2);
        assert_eq!(
            task.state,
            ActivityState::Scheduled {
                visible_at: at(10_500)
            }
        );
        assert_eq!(
            task.last_failure.map(|f| f.cause),
            Some(FailureCause::Timeout(TimeoutKind::StartToClose))
        );

        // The retry is running when the first attempt's result arrives:
        // only its token tells the two apart.
        let retry = store
            .claim_activity_tasks(at(10_500), 10)
            .unwrap()
            .remove(0);
        assert_eq!((retry.cmd, retry.attempt), (slow.cmd, 2));
        let late =
            store.complete_activity(run, slow.cmd, slow.token, Ok(payload("late")), at(10_501));
        assert!(
            matches!(late, Err(StoreError::StaleActivity { run: r, cmd }) if r == run && cmd == slow.cmd),
            "{late:?}"
        );
        let done =
            store.complete_activity(run, retry.cmd, retry.token, Ok(payload("ok")), at(10_600));
        assert_eq!(done.unwrap(), ActivityResolution::Recorded);
        let task = store.claim_activation(run).unwrap().unwrap();
        assert_eq!(
            task.inbox,
            vec![Event::ActivityCompleted {
                cmd: CommandSeq(1),
                attempt: 2,
                result: payload("ok"),
            }]
        );
    }

    #[test]
    fn opening_beside_a_live_store_leaves_its_attempts_running() {
        let storage = MemoryStorage::shared();
        let t0 = Timestamp::now();
        let a = Store::open_in_memory(&storage, StoreConfig::default()).unwrap();
        let run = with_activity(&a, t0);
        let attempt = a.claim_activity_tasks(t0, 10).unwrap().remove(0);

        let b = Store::open_in_memory(&storage, StoreConfig::default()).unwrap();
        let task = b.activity_task(run, attempt.cmd).unwrap().unwrap();
        assert!(
            matches!(task.state, ActivityState::Running { token, .. } if token == attempt.token),
            "{task:?}"
        );
        let done = a.complete_activity(run, attempt.cmd, attempt.token, Ok(payload("ok")), t0);
        assert_eq!(done.unwrap(), ActivityResolution::Recorded);
    }

    #[test]
    fn the_attempts_of_a_store_gone_past_its_lease_are_failed_by_the_next_open() {
        let storage = MemoryStorage::shared();
        let t0 = Timestamp::now();
        let a = Store::open_in_memory(&storage, StoreConfig::default()).unwrap();
        let run = with_activity(&a, t0);
        let attempt = a.claim_activity_tasks(t0, 10).unwrap().remove(0);
        drop(a);

        // Opened once the dead store's leases have expired.
        let later = t0.saturating_add(Duration::from_secs(3600));
        let b = Store::open_in_memory_at(&storage, StoreConfig::default(), later).unwrap();
        let task = b.activity_task(run, attempt.cmd).unwrap().unwrap();
        assert_eq!(task.attempt, 2, "{task:?}");
        assert_eq!(task.state, ActivityState::Scheduled { visible_at: later });
        let late = b.complete_activity(run, attempt.cmd, attempt.token, Ok(payload("late")), later);
        assert!(
            matches!(late, Err(StoreError::StaleActivity { .. })),
            "{late:?}"
        );
    }
}
