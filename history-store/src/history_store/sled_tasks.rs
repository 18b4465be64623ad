//! How workflow work reaches a worker on the sled store: the activation
//! poll (queries first, then runs from the ready queue) and starts that
//! carry their first activation (`start_eager_then`).

use super::{HistoryStore, ReadError, ReservedStart, StartError, StartedWith, WorkflowTask};
use crate::error::StoreError;
use crate::ids::RunId;
use crate::store::api::{Activation, ActivationCommit};
use crate::store::{DirectActivities, EagerStart, EagerStartAnswer, Store};
use std::time::Duration;
use tokio::time::Instant;

/// How long a poll sleeps at most between looks, in case a wake-up was
/// for another poller (a notification wakes one waiter).
pub(super) const RECHECK: Duration = Duration::from_millis(250);

pub(super) async fn poll_workflow_tasks(
    store: &Store,
    max: usize,
    wait: Duration,
) -> Result<Vec<WorkflowTask>, ReadError> {
    let deadline = Instant::now() + wait;
    let max = max.max(1);
    loop {
        // Registered before the queues are read: a run or a query
        // queued in between still wakes this poll (each queue stores a
        // permit).
        let ready = store.ready_notify().notified();
        let asked = store.queries().notify().notified();
        let mut polled: Vec<WorkflowTask> = store
            .queries()
            .take(max)
            .into_iter()
            .map(WorkflowTask::Query)
            .collect();
        if polled.len() < max {
            match tasks_of(store, store.take_ready(max - polled.len())) {
                Ok(tasks) => polled.extend(
                    tasks
                        .into_iter()
                        .map(|t| WorkflowTask::Activation(Box::new(t))),
                ),
                Err(e) if polled.is_empty() => return Err(e),
                // The queries taken are answered; the runs went back.
                Err(e) => tracing::warn!(error = %e, "activations not read"),
            }
        }
        if !polled.is_empty() {
            return Ok(polled);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Vec::new());
        }
        let pause = (deadline - now).min(RECHECK);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = ready => {}
            _ = asked => {}
        }
    }
}

pub(super) async fn start_with_activation(
    store: &Store,
    reserved: ReservedStart,
    first: ActivationCommit,
    local: DirectActivities,
) -> Result<StartedWith, StartError> {
    let request = reserved.request.clone();
    let Ok(backend) = reserved
        .into_backend()
        .downcast::<(EagerStart, EagerStartAnswer)>()
    else {
        // Reserved by another backend: nothing of it is here.
        let outcome = HistoryStore::start(store, request).await?;
        return Ok(StartedWith {
            outcome,
            claimed: None,
        });
    };
    let (start, answer) = *backend;
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.start_eager_then(start, first, local, move |applied| {
        let _ = tx.send(applied);
    });
    let applied = rx.await.map_err(|_| StoreError::Closed)?;
    match answer.outcome().await {
        Some(Ok(outcome)) => {
            let claimed = applied.ok().flatten();
            match claimed.as_ref().and_then(|c| c.first()) {
                // Taken when the start was applied (see
                // `commit_activation`).
                Some(task) => store.durable_since(task.durable_after).await?,
                None => store.durable().await?,
            }
            Ok(StartedWith { outcome, claimed })
        }
        Some(Err(e)) => Err(e.into()),
        // Nothing was written: the ordinary start.
        None => {
            let outcome = HistoryStore::start(store, request).await?;
            Ok(StartedWith {
                outcome,
                claimed: None,
            })
        }
    }
}

/// Activations of `runs`, taken from the ready queue. A run whose data
/// cannot be read is left out (logged; a restart offers it again), so it
/// does not block the others; on any other failure every run goes back to
/// the queue.
fn tasks_of(store: &Store, runs: Vec<RunId>) -> Result<Vec<Activation>, ReadError> {
    let mut tasks = Vec::with_capacity(runs.len());
    for (i, &run) in runs.iter().enumerate() {
        // A task that needs the run to have work: with nothing in its
        // inbox and no first activation due, a queued run has no task.
        match store.begin_activation(run) {
            Ok(Some(task)) => tasks.push(task),
            Ok(None) => {}
            Err(e @ (StoreError::Corrupt { .. } | StoreError::RunDamaged { .. })) => {
                tracing::warn!(%run, error = %e, "activation not offered: its data is damaged");
            }
            Err(e) => {
                for &run in &runs[i..] {
                    store.requeue(run);
                }
                for task in &tasks {
                    store.requeue(task.run);
                }
                return Err(e.into());
            }
        }
    }
    Ok(tasks)
}
