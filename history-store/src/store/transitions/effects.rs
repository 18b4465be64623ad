//! What a committed transition changed that someone in the process may be
//! waiting for, as data: the shell turns it into wake-ups (ready queue,
//! notifications, close and update waiters) once the transaction is
//! applied, and never before.

use crate::ids::RunId;

/// The wake-ups a commit (or a termination) implies.
#[derive(Default)]
pub(in crate::store) struct Effects {
    /// The committing run itself has work for an activation.
    pub(in crate::store) ready: bool,
    /// An activity task became claimable.
    pub(in crate::store) activity_scheduled: bool,
    /// A timer or an attempt deadline was added.
    pub(in crate::store) timer_started: bool,
    /// Some update request of the committing run was answered.
    pub(in crate::store) updates_answered: bool,
    /// Runs closed (the committing one, or children closed with it).
    pub(in crate::store) closed: Vec<RunId>,
    /// Other runs given work: a started child, a parent told of its
    /// child, the run started by `WorkflowContinuedAsNew`.
    pub(in crate::store) also_ready: Vec<RunId>,
}
