//! Direct dispatch: the short path between workflow threads and activities of the same
//! worker, so a step costs one store transaction instead of three:
//!
//! - A commit that schedules activities this worker runs claims them in
//!   the same transaction (as many as there are free activity slots) and
//!   hands them straight to the activity runner; the rest are left to the
//!   poller.
//! - An attempt that succeeds here does not record its result in a
//!   transaction of its own: the result goes to the dispatcher, which runs
//!   the run's next activation with it, and that activation's commit
//!   resolves the attempt (token-checked, so a stale attempt still records
//!   nothing) and appends the result in one transaction.
//!
//! Whenever the short path cannot finish (the run's task fails, its commit
//! is refused, the worker stops), the results go to the store the ordinary
//! way (`complete_activity`), so a result is never dropped while its
//! attempt still holds its token. A crash loses only what it would lose
//! anyway: the attempt is retried when the store reopens.

use crate::registry::Registry;
use crate::watchdog::Attempts;
use refrain_history::{
    ActivityError, ActivityTask, AttemptRef, CommandSeq, Event, HistoryStore, LeaseToken,
    LocalCompletion, Payload, RunId,
};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

/// The result of an attempt that succeeded in this process, on its way to
/// the run's next activation.
#[derive(Debug)]
pub(crate) struct Delivered {
    pub run: RunId,
    pub cmd: CommandSeq,
    pub token: LeaseToken,
    pub attempt: u32,
    pub result: Payload,
}

impl Delivered {
    /// The inbound event the activation applies.
    pub fn event(&self) -> Event {
        Event::ActivityCompleted {
            cmd: self.cmd,
            attempt: self.attempt,
            result: self.result.clone(),
        }
    }

    /// What the commit resolves.
    pub fn completion(&self) -> LocalCompletion {
        LocalCompletion {
            cmd: self.cmd,
            token: self.token,
        }
    }
}

/// An activity attempt claimed by a commit, with the slot reserved for it.
pub(crate) type Handout = (ActivityTask, OwnedSemaphorePermit);

/// What a workflow thread needs to hand activities to the runner.
#[derive(Clone)]
pub(crate) struct ActivityHandoff {
    pub registry: Arc<Registry>,
    pub slots: Arc<Semaphore>,
    pub runner: UnboundedSender<Handout>,
    /// What the stall watchdog sees of attempts handed out and not yet
    /// started.
    pub attempts: Arc<Attempts>,
}

impl ActivityHandoff {
    /// Reserves a free slot for each activity in `events` (of `run`) this
    /// worker can run, in command order, without waiting; reports the
    /// types it cannot run.
    pub fn reserve(
        &self,
        run: RunId,
        events: &[Event],
    ) -> (Vec<CommandSeq>, Vec<OwnedSemaphorePermit>) {
        let mut cmds = Vec::new();
        let mut permits = Vec::new();
        for e in events {
            if let Event::ActivityScheduled {
                cmd, activity_type, ..
            } = e
            {
                if !self.registry.activities.contains_key(activity_type) {
                    self.registry.unknown_activity(activity_type, &run);
                    continue;
                }
                match self.slots.clone().try_acquire_owned() {
                    Ok(p) => {
                        cmds.push(*cmd);
                        permits.push(p);
                    }
                    Err(_) => break,
                }
            }
        }
        (cmds, permits)
    }

    /// Gives claimed attempts to the runner; unused slots are freed.
    pub fn hand_out(&self, tasks: Vec<ActivityTask>, mut permits: Vec<OwnedSemaphorePermit>) {
        for task in tasks {
            let Some(permit) = permits.pop() else {
                // Never more tasks than reserved slots; if it happened, the
                // attempt would time out and be retried.
                warn!(run = %task.run, "claimed activity without a slot");
                break;
            };
            self.attempts.claimed(&task);
            let token = task.token;
            if self.runner.send((task, permit)).is_err() {
                // The runner stopped: the attempt is left to its deadline
                // (or to the next open), as at any shutdown.
                self.attempts.dropped(token);
                debug!("activity runner stopped; claimed attempt left to expire");
            }
        }
    }
}

/// Records results the short path could not apply, the ordinary way.
pub(crate) async fn record_in_store(store: Arc<dyn HistoryStore>, delivered: Vec<Delivered>) {
    for d in delivered {
        let attempt = AttemptRef {
            run: d.run,
            cmd: d.cmd,
            attempt: d.attempt,
            token: d.token,
        };
        match store.complete_activity(attempt, Ok(d.result)).await {
            Ok(_) => {}
            Err(ActivityError::Stale { .. }) => {
                warn!(run = %d.run, cmd = %d.cmd, "late result of a timed-out attempt rejected")
            }
            Err(e) => {
                warn!(run = %d.run, cmd = %d.cmd, error = %e, "cannot record activity outcome")
            }
        }
    }
}
