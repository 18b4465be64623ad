//! Claims activity tasks and runs them on the tokio runtime, bounded by a
//! slot count, and reports each outcome to the store, which decides about
//! retries.

use crate::eager::{Delivered, Handout};
use crate::registry::{not_registered, Registry};
use futures::FutureExt;
use refrain::{ActivityContext, CancelHandle};
use refrain_history::{
    ActivityResolution, ActivityTask, CommandSeq, Failure, FailureCause, RunId, Store, StoreError,
    Timestamp,
};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, info_span, warn, Instrument};

/// Longest the poller sleeps without looking at the store, as a safety net
/// against a missed notification or a clock jump.
const MAX_IDLE: Duration = Duration::from_secs(1);

type Running = Arc<Mutex<HashMap<(RunId, CommandSeq), CancelHandle>>>;

/// Where the activity runner sends what it has to.
#[derive(Clone)]
pub(crate) struct RunnerLinks {
    /// Results of successful attempts, for the run's next activation
    /// (see `eager`); `None` records every outcome in the store at once.
    pub delivered: Option<UnboundedSender<Delivered>>,
}

pub(crate) async fn run_activity_poller(
    store: Store,
    registry: Arc<Registry>,
    sem: Arc<Semaphore>,
    mut handouts: UnboundedReceiver<Handout>,
    links: RunnerLinks,
    grace: watch::Receiver<Option<Duration>>,
) {
    let running: Running = Arc::default();
    let mut tasks = JoinSet::new();
    let mut stop = grace.clone();
    let spawn = |tasks: &mut JoinSet<()>, task: ActivityTask, permit: OwnedSemaphorePermit| {
        let store = store.clone();
        let registry = registry.clone();
        let running = running.clone();
        let links = links.clone();
        tasks.spawn(async move {
            execute(store, registry, running, links, task).await;
            drop(permit);
        });
    };
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            biased;
            _ = stop.wait_for(Option::is_some) => break,
            Some((task, p)) = handouts.recv() => {
                spawn(&mut tasks, task, p);
                continue;
            }
            p = sem.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let want = 1 + sem.available_permits();
        let claimed = match store
            .claim_activity_tasks_async(Timestamp::now(), want)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot claim activity tasks");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            drop(permit);
            let idle = match store.next_activity_visible() {
                Ok(Some(at)) => at.saturating_since(Timestamp::now()).min(MAX_IDLE),
                _ => MAX_IDLE,
            };
            tokio::select! {
                biased;
                _ = stop.wait_for(Option::is_some) => break,
                Some((task, p)) = handouts.recv() => spawn(&mut tasks, task, p),
                _ = store.activity_notify().notified() => {}
                _ = tokio::time::sleep(idle) => {}
            }
            continue;
        }
        let mut permit = Some(permit);
        for task in claimed {
            // Slots are taken by this poller and by commits that hand out
            // attempts; wait for one if a commit took the last.
            let p = match permit.take() {
                Some(p) => p,
                None => match sem.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => sem.clone().acquire_owned().await.expect("semaphore open"),
                },
            };
            spawn(&mut tasks, task, p);
        }
    }
    // Shutdown: ask running activities to stop, give them the grace
    // period, then drop the rest; their attempts time out in the store and
    // are retried by whichever worker runs next.
    for c in running.lock().expect("running map").values() {
        c.cancel();
    }
    let grace = grace.borrow().unwrap_or_default();
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(
            left = tasks.len(),
            "activities still running after the grace period were dropped"
        );
        tasks.abort_all();
    }
}

async fn execute(
    store: Store,
    registry: Arc<Registry>,
    running: Running,
    links: RunnerLinks,
    task: ActivityTask,
) {
    let span = info_span!(
        "activity",
        workflow_id = %task.workflow_id,
        run = task.run.0,
        cmd = task.cmd.0,
        activity_type = %task.activity_type,
        attempt = task.attempt,
    );
    async move {
        // The attempt starts only once the history that schedules it and its
        // claim are durable (usually the group flush already under way):
        // otherwise a crash could undo them after the code's side effects
        // began, and the call would run again as the same attempt, or
        // under another run's idempotency key.
        if let Err(e) = store.durable_since(task.durable_after).await {
            warn!(error = %e, "claimed attempt not started: its claim could not be made durable");
            return;
        }
        let key = (task.run, task.cmd);
        let outcome = match registry.activities.get(&task.activity_type) {
            None => Err(not_registered(&task.activity_type)),
            Some(activity) => {
                let (ctx, cancel) = ActivityContext::new(task.clone(), Some(store.clone()));
                running
                    .lock()
                    .expect("running map")
                    .insert(key, cancel.clone());
                // Past its deadline the attempt is void in the store; tell
                // the code so it can stop. It is not killed: only the code
                // knows whether stopping midway is safe.
                let until = task.deadline.saturating_since(Timestamp::now());
                let watchdog = tokio::spawn(async move {
                    tokio::time::sleep(until).await;
                    cancel.cancel();
                });
                let result = AssertUnwindSafe(activity.run(ctx, task.input.clone()))
                    .catch_unwind()
                    .await;
                watchdog.abort();
                running.lock().expect("running map").remove(&key);
                match result {
                    Ok(r) => r,
                    Err(panic) => Err(panicked(panic.as_ref())),
                }
            }
        };
        let outcome = match (outcome, &links.delivered) {
            // Within the payload limit, a result can ride on the run's next
            // activation; the store path handles the rest.
            (Ok(result), Some(delivered)) if result.len() <= store.config().max_payload_bytes => {
                let d = Delivered {
                    run: task.run,
                    cmd: task.cmd,
                    token: task.token,
                    attempt: task.attempt,
                    result,
                };
                match delivered.send(d) {
                    Ok(()) => return,
                    Err(returned) => Ok(returned.0.result),
                }
            }
            (outcome, _) => outcome,
        };
        report(&store, &task, outcome).await;
    }
    .instrument(span)
    .await
}

async fn report(
    store: &Store,
    task: &ActivityTask,
    outcome: Result<refrain_history::Payload, Failure>,
) {
    let failed = outcome.is_err();
    let result = store
        .complete_activity_async(task.run, task.cmd, task.token, outcome, Timestamp::now())
        .await;
    match result {
        Ok(ActivityResolution::Recorded) => debug!(failed, "activity outcome recorded"),
        Ok(ActivityResolution::RetryScheduled { attempt, at }) => {
            info!(
                next_attempt = attempt,
                at = at.0,
                "activity attempt failed; retry scheduled"
            )
        }
        Err(StoreError::StaleActivity { .. }) => {
            warn!("late result of a timed-out attempt rejected")
        }
        Err(StoreError::PayloadTooLarge { size, limit }) => {
            let mut f = Failure::application(
                "payload-too-large",
                format!("activity result of {size} bytes exceeds the limit of {limit} bytes"),
            );
            f.non_retryable = true;
            if let Err(e) =
                store.complete_activity(task.run, task.cmd, task.token, Err(f), Timestamp::now())
            {
                warn!(error = %e, "cannot record oversized-result failure");
            }
        }
        Err(e) => warn!(error = %e, "cannot record activity outcome"),
    }
}

fn panicked(payload: &(dyn std::any::Any + Send)) -> Failure {
    let message = refrain::replay::panic_message(payload);
    Failure {
        kind: "panic".into(),
        message: format!("activity panicked: {message}"),
        non_retryable: false,
        cause: FailureCause::Panicked,
        details: None,
    }
}
