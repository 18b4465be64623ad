//! Every state transition of the engine, written once, over one
//! transaction's table views and nothing else.
//!
//! A transition is a plain function: it takes the [`tables::Tx`] of the
//! transaction it runs in (or the few [`TxTree`]s it needs) and plain
//! inputs (`now`, ids, tokens drawn beforehand, config limits), reads and
//! writes through those views, and returns its outcome, together with the
//! wake-ups it implies as data ([`effects::Effects`], or an outcome that
//! names the run to queue). An abort (`TxError::Abort`) writes nothing.
//! Nothing here knows how the transaction is run or what happens after:
//! no `Store` or `Inner`, no batcher or journal, no flusher, no `Notify`,
//! no thread, no tokio, no sled. The shell around it (the operation
//! methods of `Inner` in `store/*.rs`) picks the transition, runs it in a
//! transaction (through the batcher's group commit, or one of its own),
//! and performs the effects once the transaction is applied.
//!
//! Where to look:
//!
//! | file | what happens |
//! |---|---|
//! | `tables` | the table views of one transaction ([`tables::Tx`]), record encoding, run records and their `ready` mirror, inbox appends, run numbers |
//! | `effects` | the wake-ups a commit implies, as data |
//! | `start` | a run started (id conflict policies), and the run a continue-as-new starts |
//! | `activation` | an activation commits: checked, appended, each command applied; the direct variant |
//! | `activities` | an activity scheduled, claimed, completed, failed and retried, heartbeating, cancelled |
//! | `timers` | a timer started, cancelled, fired; an attempt's deadline passed |
//! | `children` | a child started by its parent; a cancellation passed on to it |
//! | `close` | a run closed: what it waited on deleted, its children's parent-close policies, its parent told |
//! | `signals` | a signal or cancellation request delivered; signal-with-start; a run terminated |
//! | `human_tasks` | a human task assigned, escalated, closed, decided |
//! | `updates` | an update requested, accepted, answered, rejected |
//! | `leases` | owners (a store each) and their expiring leases; an activation claimed (a lease on a run) and released |
//! | `schedules` | a schedule created, paused, deleted; one step of a due schedule |
//! | `purge` | closed runs whose retention passed deleted, with everything under their run |
//! | `recovery` | an attempt orphaned by an earlier process (or a store whose leases expired) failed |
//!
//! Module graph (an arrow: "uses"; every file also uses `tables`). It has
//! no cycle: a transition that implies another calls downward only (a
//! commit may close its run, which applies parent-close to the children
//! and tells the parent; a commit may start a child or the next run).
//!
//! ```text
//! activation ──▶ activities, children, close, human_tasks, start, timers, updates, effects
//! signals    ──▶ close, start, effects
//! close      ──▶ activities, children, human_tasks, effects
//! children   ──▶ effects
//! timers     ──▶ activities
//! recovery   ──▶ activities
//! schedules  ──▶ start
//! purge      ──▶ activities, human_tasks
//! start, activities, human_tasks, updates, leases, effects ──▶ (tables only)
//! ```
//!
//! `close_run` and `terminate_child` call each other (a child terminated
//! by its parent's close closes its own children in turn); both are in
//! `close`, so the recursion stays inside one file.
//!
//! Outside the layer, transitions use the store's vocabulary only: the
//! records and API types, the engine's transaction view ([`TxTree`],
//! `TxError`, `Bytes`), and the schedule spec with its trigger arithmetic
//! (`store::schedules`).
//!
//! [`TxTree`]: crate::store::engine::TxTree

pub(super) mod activation;
pub(super) mod activities;
pub(super) mod children;
pub(super) mod close;
pub(super) mod effects;
pub(super) mod human_tasks;
pub(super) mod leases;
pub(super) mod purge;
pub(super) mod recovery;
pub(super) mod schedules;
pub(super) mod signals;
pub(super) mod start;
pub(super) mod tables;
pub(super) mod timers;
pub(super) mod updates;

#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
