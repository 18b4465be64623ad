//! Owners over a shared storage, the shell: registering this store as an
//! owner at open, and one background thread per store that renews its
//! leases, takes over from owners whose leases expired, and finds work
//! other stores made. The rules themselves (what an owner record is, when
//! a lease stands) are `transitions::leases`.
//!
//! Only a store over a shared storage runs any of this. A store that owns
//! its storage alone voids other owners' leases at open instead, and its
//! in-process wake-ups see every change, since it makes them all.
//!
//! # Finding work made elsewhere
//!
//! A store's in-process ready queue and notifications carry what the store
//! itself did: a start, a signal, a result recorded, a timer fired, a
//! commit that leaves work. Work that another store made (a signal sent
//! through another process, a timer fired by another's timer service, the
//! runs of a store that died) is found by looking: every
//! [`StoreConfig::discovery_interval`] this thread walks the `ready` table
//! and queues each run no live owner holds. Activity tasks need no such
//! walk: a poll claims from the `activity_ready` table itself, and pollers
//! look again at least every quarter second. Timers neither: every timer
//! service reads the earliest deadline from the shared `timers` table at
//! least once a second, and a timer fires in the transaction that removes
//! it, so it fires once whichever store gets there first (as do attempt
//! deadlines and schedule steps, each a transaction that re-checks its
//! entry). Callers waiting for a run to close or an update to be answered
//! look again every discovery interval too (`Inner::woken`), since the
//! commit that ends their wait may be another store's. Queries are the
//! exception: one asked through a store is answered by that store's own
//! workers only.
//!
//! # Which store takes a run's next activation (stickiness)
//!
//! The store whose commit leaves a run with work queues it in its own
//! process at once, and so does the store through which a result or timer
//! reaches the run; another store sees the run only on its next walk of
//! the `ready` table, up to a discovery interval later, and a walk skips
//! runs leased by a live owner. So a run's next activation almost always
//! goes to the store that made it ready, which for activity results,
//! timers and continued work is the store that ran the run last and has
//! it cached; a signal sent through another store's client goes to
//! whichever worker sees it first (usually the sender's, if it runs one),
//! and that worker replays the history. There is no reservation beyond
//! that: a run is never held back for a cache.
//!
//! [`StoreConfig::discovery_interval`]: crate::StoreConfig::discovery_interval

use super::transitions::leases::{
    self, parse_owner_key, register_owner, renew_owner, Owner, OWNER_PREFIX,
};
use super::tx::{decode_u64, finish, Trees};
use super::Inner;
use crate::error::StoreError;
use crate::ids::Timestamp;
use crate::keys;
use crate::store::records::RunRecord;
use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Registers a new owner over the shared storage of `trees`, alive until
/// `now + lease`.
pub(super) fn register(
    trees: &Trees,
    now: Timestamp,
    lease: Duration,
) -> Result<Owner, StoreError> {
    let until = now.saturating_add(lease);
    let id = finish(
        trees
            .engine
            .transaction([&trees.meta], |[meta]| register_owner(meta, Some(until))),
    )?;
    Ok(Owner { id, shared: true })
}

/// Starts the store's renewal thread. It holds the store weakly and ends
/// once the store is dropped, after which the store's leases expire as a
/// dead process's would.
///
/// # Errors
/// `Sync` if the thread cannot be started.
pub(super) fn start_renewal(inner: &Arc<Inner>) -> Result<(), StoreError> {
    let weak = Arc::downgrade(inner);
    let renew_every = inner.config.lease_duration / 3;
    let tick = inner
        .config
        .discovery_interval
        .min(renew_every)
        .max(Duration::from_millis(1));
    std::thread::Builder::new()
        .name("refrain-owner".into())
        .spawn(move || renewal(weak, tick, renew_every))
        .map_err(StoreError::Sync)?;
    Ok(())
}

fn renewal(weak: Weak<Inner>, tick: Duration, renew_every: Duration) {
    let mut next_renewal = Instant::now() + renew_every;
    loop {
        std::thread::sleep(tick);
        let Some(inner) = weak.upgrade() else {
            return;
        };
        if Instant::now() >= next_renewal {
            next_renewal = Instant::now() + renew_every;
            let now = Timestamp::now();
            if let Err(e) = inner.renew(now) {
                tracing::error!(error = %e, "cannot renew this store's leases");
            }
            if let Err(e) = inner.take_over_expired(now) {
                tracing::error!(error = %e, "cannot take over from stores whose leases expired");
            }
        }
        if let Err(e) = inner.discover(Timestamp::now()) {
            tracing::warn!(error = %e, "cannot look for work in the ready table");
        }
    }
}

impl Inner {
    /// Waits for an in-process wake-up (`CloseWaiters`). Over a shared
    /// storage the change may be made by another store, whose wake-ups
    /// never reach this one, so the wait also ends after a discovery
    /// interval and the caller looks again.
    pub(super) async fn woken<T>(&self, woken: oneshot::Receiver<T>) -> Option<T> {
        if !self.owner.shared {
            return woken.await.ok();
        }
        let interval = self.config.discovery_interval;
        tokio::time::timeout(interval, woken).await.ok()?.ok()
    }

    /// Renews this store's leases for another lease duration.
    fn renew(&self, now: Timestamp) -> Result<(), StoreError> {
        let (id, until) = (
            self.owner.id,
            now.saturating_add(self.config.lease_duration),
        );
        let t = &self.trees;
        let held = finish(
            t.engine
                .transaction([&t.meta], |[meta]| renew_owner(meta, id, now, until)),
        )?;
        if !held {
            tracing::warn!(
                owner = id,
                "this store's leases expired before it renewed them: other stores may have \
                 taken its runs and failed its activity attempts (its later commits and \
                 results for those are refused)"
            );
        }
        Ok(())
    }

    /// The owners whose leases hold at `now`, by their records in `meta`.
    pub(super) fn live_owners(&self, now: Timestamp) -> Result<HashSet<u64>, StoreError> {
        Ok(self
            .owner_records()?
            .into_iter()
            .filter(|&(_, until)| until > now.0)
            .map(|(id, _)| id)
            .collect())
    }

    /// Every owner record: owner id and until when its leases hold.
    fn owner_records(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        let mut records = Vec::new();
        for item in self.trees.meta.scan_prefix(OWNER_PREFIX) {
            let (key, value) = item?;
            let Some(id) = parse_owner_key(&key) else {
                tracing::warn!(key = ?key, "skipping a malformed owner record key");
                continue;
            };
            records.push((id, decode_u64(&value, "owner record", None)?));
        }
        Ok(records)
    }

    /// Takes over from every other owner whose leases expired at `now`:
    /// fails its running attempts (their retries are due at once), then
    /// removes its record, which frees its run leases for any claim, and
    /// queues the runs with work. In that order, so that a crash in
    /// between leaves the record for the next store to find.
    fn take_over_expired(&self, now: Timestamp) -> Result<(), StoreError> {
        let expired: Vec<u64> = self
            .owner_records()?
            .into_iter()
            .filter(|&(id, until)| id != self.owner.id && until <= now.0)
            .map(|(id, _)| id)
            .collect();
        if expired.is_empty() {
            return Ok(());
        }
        self.expire_orphaned_attempts(now)?;
        let t = &self.trees;
        for id in expired {
            let reaped = finish(
                t.engine
                    .transaction([&t.meta], |[meta]| leases::reap_owner(meta, id, now)),
            )?;
            if reaped {
                tracing::info!(owner = id, "took over from a store whose leases expired");
            }
        }
        self.discover(now)
    }

    /// Queues every run in the `ready` table that no live owner holds,
    /// this store included (its own task is running). One read per run
    /// and no transaction: the claim decides.
    fn discover(&self, now: Timestamp) -> Result<(), StoreError> {
        let live = self.live_owners(now)?;
        for key in self.trees.ready.iter().keys() {
            let key = key?;
            let Ok(run) = keys::parse_run_key(&key) else {
                continue;
            };
            let Some(bytes) = self.trees.runs.get(keys::run_key(run))? else {
                continue;
            };
            let Ok(record) = super::tx::decode::<RunRecord>(&bytes, "run", Some(run)) else {
                // Whoever claims it reports the damage.
                self.ready_queue.push(run);
                continue;
            };
            let held = record
                .lease
                .is_some_and(|l| l.epoch == self.owner.id || live.contains(&l.epoch));
            if !held {
                self.ready_queue.push(run);
            }
        }
        Ok(())
    }
}
