//! Leases between owners (stores) over one storage, run directly over
//! fresh memory tables (`testing::Tables`):
//!
//! - another owner's live lease holds; once it expires the run is taken
//!   over, and the old token's commit and release are refused
//! - alone, another owner's lease is void at once (a reopened process)
//! - a store's own tasks are told apart by the history, not the token
//! - an unleased commit is refused while a shared run is leased
//! - recovering a gone owner fails its attempts and leaves a live one's
//! - an owner record is removed only once it expired

use super::activation;
use super::activities::{self, Claim};
use super::leases::{self, owner_key, ClaimBy, Owner};
use super::recovery::{orphan, Orphan, Orphans};
use super::testing::Tables;
use super::tests::{activation, commit, record, scheduled, start, LIMITS, T0, T1, T2};
use crate::error::StoreError;
use crate::ids::{CommandSeq, LeaseToken, RunId, Timestamp};
use crate::keys;
use crate::options::ActivityOptions;
use crate::store::api::{Activation, ActivationCommit};
use crate::store::engine::Bytes;
use crate::store::records::RunLease;

const A: Owner = Owner {
    id: 7,
    shared: true,
};
const B: Owner = Owner {
    id: 8,
    shared: true,
};

/// Records `owner` as holding its leases until `until`.
fn alive_until(t: &Tables, owner: Owner, until: Timestamp) {
    t.run(|tx| {
        tx.meta
            .insert(owner_key(owner.id), &until.0.to_be_bytes()[..])?;
        Ok(())
    })
    .unwrap();
}

fn claim(
    t: &Tables,
    run: RunId,
    owner: Owner,
    token: u64,
    now: Timestamp,
    retake_own: bool,
) -> Option<Activation> {
    let by = ClaimBy {
        token: LeaseToken(token),
        owner,
        now,
        only_if_ready: true,
        retake_own,
    };
    t.run(|tx| {
        let tables = (tx.task.runs, tx.task.inbox, tx.task.ready, tx.meta);
        leases::claim(tables, run, by)
    })
    .unwrap()
}

/// An activation of `run` as it stands that only starts a timer,
/// presenting `token`.
fn timer_commit(t: &Tables, run: RunId, token: u64) -> ActivationCommit {
    let mut commit = activation(t, run, T1, vec![super::tests::timer(1, T2)]);
    commit.token = LeaseToken(token);
    commit
}

fn apply_as(t: &Tables, commit: &ActivationCommit, owner: Owner) -> Result<(), StoreError> {
    let prepared = activation::prepare(commit, LIMITS, owner, T1)?;
    t.run(|tx| activation::apply(tx, commit, &prepared))
        .map(drop)
}

/// Commits [`timer_commit`] as `owner`.
fn commit_as(t: &Tables, run: RunId, owner: Owner, token: u64) -> Result<(), StoreError> {
    apply_as(t, &timer_commit(t, run, token), owner)
}

fn release_as(t: &Tables, run: RunId, owner: Owner, token: u64) -> Result<(), StoreError> {
    t.run(|tx| {
        let tables = (tx.task.runs, tx.task.ready);
        leases::release(tables, run, LeaseToken(token), owner, &None)
    })
}

#[test]
fn another_owners_lease_holds_until_it_expires_then_the_old_token_is_fenced_off() {
    let t = Tables::new();
    let run = start(&t, "order-1");
    alive_until(&t, A, T1);
    alive_until(&t, B, T2);
    assert!(claim(&t, run, A, 10, T0, false).is_some());

    // A is alive: B may not take the run, and trying writes nothing.
    let before = t.snapshot();
    assert!(claim(&t, run, B, 20, T0, false).is_none());
    assert_eq!(t.snapshot(), before);

    // A's leases expire at T1 without a renewal: B takes the run over.
    let taken = claim(&t, run, B, 20, T1, false).expect("taken over");
    assert_eq!(taken.token, LeaseToken(20));
    assert_eq!(
        record(&t, run).lease,
        Some(RunLease {
            token: LeaseToken(20),
            epoch: B.id
        })
    );

    // A comes back (it was paused, not dead): its commit and its release
    // are refused and change nothing; B's commit goes through.
    let before = t.snapshot();
    let late = commit_as(&t, run, A, 10);
    assert!(
        matches!(late, Err(StoreError::LeaseLost { run: r }) if r == run),
        "{late:?}"
    );
    let late = release_as(&t, run, A, 10);
    assert!(
        matches!(late, Err(StoreError::LeaseLost { .. })),
        "{late:?}"
    );
    assert_eq!(t.snapshot(), before);
    commit_as(&t, run, B, 20).unwrap();
    assert_eq!(record(&t, run).lease, None);
}

#[test]
fn alone_another_owners_lease_is_void_at_once() {
    let t = Tables::new();
    let run = start(&t, "order-1");
    let (old, new) = (
        Owner {
            id: 1,
            shared: false,
        },
        Owner {
            id: 2,
            shared: false,
        },
    );
    // No owner records at all: a store alone never writes them.
    assert!(claim(&t, run, old, 10, T0, false).is_some());
    assert!(claim(&t, run, new, 20, T0, false).is_some());
    let late = commit_as(&t, run, old, 10);
    assert!(
        matches!(late, Err(StoreError::LeaseLost { .. })),
        "{late:?}"
    );
    commit_as(&t, run, new, 20).unwrap();
}

#[test]
fn a_stores_own_tasks_are_told_apart_by_the_history_not_the_token() {
    let t = Tables::new();
    let run = start(&t, "order-1");
    alive_until(&t, A, T2);
    assert!(claim(&t, run, A, 10, T0, false).is_some());
    // `claim_activation` leaves a run the store already holds.
    assert!(claim(&t, run, A, 11, T0, false).is_none());
    // A caller that runs one task per run at a time leases it again (a
    // lease its earlier task left must not strand the run)...
    assert!(claim(&t, run, A, 12, T0, true).is_some());
    // ...and whichever of its tasks commits first goes through; the other
    // meets a moved history.
    let (first, second) = (timer_commit(&t, run, 10), timer_commit(&t, run, 12));
    apply_as(&t, &first, A).unwrap();
    let stale = apply_as(&t, &second, A);
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
}

#[test]
fn an_unleased_commit_is_refused_while_a_shared_run_is_leased() {
    let t = Tables::new();
    let run = start(&t, "order-1");
    alive_until(&t, A, T1);
    assert!(claim(&t, run, A, 10, T0, false).is_some());
    // Even once A's leases expired: a lease changes hands by a claim only.
    let unleased = commit_as(&t, run, B, LeaseToken::UNLEASED.0);
    assert!(
        matches!(unleased, Err(StoreError::LeaseLost { .. })),
        "{unleased:?}"
    );
}

/// Claims the scheduled activity `cmd` of `run` (visible at `T1`) for
/// `owner`, returning its `activity_deadlines` key.
fn claim_attempt(t: &Tables, run: RunId, cmd: u32, owner: Owner, token: u64) -> Bytes {
    let key = Bytes::from(&keys::time_key(T1, run, CommandSeq(cmd))[..]);
    let claim = t
        .run(|tx| activities::claim_one(&tx.task, &key, (LeaseToken(token), owner.id), T1))
        .unwrap();
    let Claim::Claimed(attempt) = claim else {
        panic!("activity {cmd} was not claimed");
    };
    Bytes::from(&keys::time_key(attempt.deadline, run, CommandSeq(cmd))[..])
}

#[test]
fn recovering_a_gone_owner_fails_its_attempts_and_leaves_a_live_ones() {
    let t = Tables::new();
    let run = start(&t, "order-1");
    let options = ActivityOptions::default;
    commit(
        &t,
        run,
        T1,
        vec![scheduled(1, options()), scheduled(2, options())],
    );
    let of_a = claim_attempt(&t, run, 1, A, 10);
    let of_b = claim_attempt(&t, run, 2, B, 20);

    let before = t.snapshot();
    let left = t
        .run(|tx| orphan(&tx.task, &of_b, Orphans::Of(A.id), T2))
        .unwrap();
    assert!(matches!(left, Orphan::Alive));
    assert_eq!(t.snapshot(), before, "B's attempt is untouched");

    let failed = t
        .run(|tx| orphan(&tx.task, &of_a, Orphans::Of(A.id), T2))
        .unwrap();
    assert!(matches!(failed, Orphan::Failed(r, _) if r == run));
    let task = |cmd| {
        t.run(|tx| {
            let bytes = tx.task.tasks.get(keys::task_key(run, CommandSeq(cmd)))?;
            Ok(bytes.map(|b| b.to_vec()))
        })
        .unwrap()
    };
    let a: crate::store::records::ActivityTaskRecord =
        super::tables::decode(&task(1).unwrap(), "task", None).unwrap();
    assert_eq!(a.attempt, 2, "A's attempt failed and its retry scheduled");
    // A's old attempt can no longer answer; B's still can.
    let ok = Ok(crate::event::Payload(b"done".to_vec()));
    let stale =
        t.run(|tx| activities::complete(&tx.task, run, CommandSeq(1), LeaseToken(10), &ok, T2));
    assert!(
        matches!(stale, Err(StoreError::StaleActivity { .. })),
        "{stale:?}"
    );
    t.run(|tx| activities::complete(&tx.task, run, CommandSeq(2), LeaseToken(20), &ok, T2))
        .unwrap();
}

#[test]
fn an_owner_record_is_removed_only_once_it_expired() {
    let t = Tables::new();
    alive_until(&t, A, T1);
    let reap = |now| t.run(|tx| leases::reap_owner(tx.meta, A.id, now)).unwrap();
    assert!(!reap(T0), "A is alive at T0");
    assert!(reap(T1), "A's leases expired at T1");
    assert!(!reap(T2), "nothing left to remove");
    assert!(t
        .run(|tx| leases::owner_alive(tx.meta, A.id, T0))
        .map(|alive| !alive)
        .unwrap());
}
