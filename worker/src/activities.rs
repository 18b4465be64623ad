//! Claims activity tasks and runs them on the tokio runtime, bounded by a
//! slot count, and reports each outcome to the store, which decides about
//! retries.

use crate::direct::{Delivered, Handout};
use crate::registry::Registry;
use crate::telemetry;
use crate::watchdog::Attempts;
use futures::FutureExt;
use refrain::{ActivityContext, CancelHandle};
use refrain_history::{
    ActivityError, ActivityResolution, ActivityTask, AttemptRef, CommandSeq, Failure, FailureCause,
    HistoryStore, RunId,
};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, info_span, warn, Instrument};

/// How long the poller's idle long-poll waits before it is made again.
const MAX_IDLE: Duration = Duration::from_secs(1);

type Running = Arc<Mutex<HashMap<(RunId, CommandSeq), CancelHandle>>>;

/// Where the activity runner sends what it has to.
#[derive(Clone)]
pub(crate) struct RunnerLinks {
    /// Results of successful attempts, for the run's next activation
    /// (see `direct`); `None` records every outcome in the store at once.
    pub delivered: Option<UnboundedSender<Delivered>>,
    /// What the stall watchdog sees of running attempts.
    pub attempts: Arc<Attempts>,
}

pub(crate) async fn run_activity_poller(
    store: Arc<dyn HistoryStore>,
    registry: Arc<Registry>,
    sem: Arc<Semaphore>,
    handouts: UnboundedReceiver<Handout>,
    links: RunnerLinks,
    grace: watch::Receiver<Option<Duration>>,
) {
    let claims = store.clone();
    let claim = move |max: usize, wait: Duration| {
        let store = claims.clone();
        async move { store.poll_activity_tasks(max, wait).await }
    };
    poll_activities(store, claim, registry, sem, handouts, links, grace).await;
}

/// The poller's loop, claiming through `claim(max, wait)` (the store's
/// activity poll, or a test's stand-in that plays a commit racing the
/// claim).
///
/// It claims what is there at once with every free slot in hand, and
/// when nothing is, waits in a long-poll holding one slot only: the other
/// free slots stay with the commits, which claim the activities they
/// schedule in their own transaction (see `direct`).
async fn poll_activities<C, F>(
    store: Arc<dyn HistoryStore>,
    claim: C,
    registry: Arc<Registry>,
    sem: Arc<Semaphore>,
    mut handouts: UnboundedReceiver<Handout>,
    links: RunnerLinks,
    grace: watch::Receiver<Option<Duration>>,
) where
    C: Fn(usize, Duration) -> F,
    F: std::future::Future<Output = Result<Vec<ActivityTask>, ActivityError>>,
{
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
        // Every claimed attempt must have its slot in hand before the
        // claim. Slots freed meanwhile can go to commits, which hand out
        // the attempts they claim through `handouts`; a poller that
        // claimed more than it held and then waited for a slot would wait
        // on slots held by attempts only it can start (issue 14: the
        // engine stalled under sustained load).
        let mut slots = vec![permit];
        while let Ok(p) = sem.clone().try_acquire_owned() {
            slots.push(p);
        }
        let mut claimed = match claim(slots.len(), Duration::ZERO).await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot claim activity tasks");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            slots.truncate(1);
            // Hand-outs go on meanwhile; the poll is never dropped halfway
            // (a claim it made would wait for its timeout), except at
            // shutdown.
            let idle = claim(1, MAX_IDLE);
            tokio::pin!(idle);
            let polled = loop {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(Option::is_some) => break None,
                    Some((task, p)) = handouts.recv() => spawn(&mut tasks, task, p),
                    polled = &mut idle => break Some(polled),
                }
            };
            match polled {
                None => break,
                Some(Ok(found)) => claimed = found,
                Some(Err(e)) => {
                    warn!(error = %e, "cannot claim activity tasks");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        for task in claimed {
            let Some(p) = slots.pop() else {
                // The claim returns at most what it was asked for; if it
                // ever did not, the attempt would time out and be retried.
                warn!(run = %task.run, "claimed activity without a slot");
                continue;
            };
            spawn(&mut tasks, task, p);
        }
        // Slots the claim did not need go back at once.
        drop(slots);
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
    store: Arc<dyn HistoryStore>,
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
    let _tracked = links.attempts.started(&task);
    async move {
        // The attempt may start at once: the store returns a claim only
        // once the history that schedules it and the claim are durable, so
        // a crash cannot undo them after the code's side effects began.
        let key = (task.run, task.cmd);
        let outcome = match registry.activities.get(&task.activity_type) {
            None => {
                registry.unknown_activity(
                    &task.activity_type,
                    &format_args!("workflow {}", task.workflow_id),
                );
                Err(registry.not_registered(&task.activity_type))
            }
            Some(activity) => {
                let (ctx, cancel) = ActivityContext::new(task.clone(), Some(store.clone()));
                running
                    .lock()
                    .expect("running map")
                    .insert(key, cancel.clone());
                // Past its deadline the attempt is void in the store; tell
                // the code so it can stop. It is not killed: only the code
                // knows whether stopping midway is safe.
                let until = task.deadline.saturating_since(store.now());
                let watchdog = tokio::spawn(async move {
                    tokio::time::sleep(until).await;
                    cancel.cancel();
                });
                let began = Instant::now();
                let result = AssertUnwindSafe(activity.run(ctx, task.input.clone()))
                    .catch_unwind()
                    .await;
                let failed = !matches!(result, Ok(Ok(_)));
                telemetry::attempt(activity.labels(), began.elapsed(), failed);
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
            (Ok(result), Some(delivered)) if result.len() <= store.limits().max_payload_bytes => {
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
    store: &Arc<dyn HistoryStore>,
    task: &ActivityTask,
    outcome: Result<refrain_history::Payload, Failure>,
) {
    let failed = outcome.is_err();
    let attempt = AttemptRef::from(task);
    let result = store.complete_activity(attempt, outcome).await;
    match result {
        Ok(ActivityResolution::Recorded) => debug!(failed, "activity outcome recorded"),
        Ok(ActivityResolution::RetryScheduled { attempt, at }) => {
            info!(
                next_attempt = attempt,
                at = at.0,
                "activity attempt failed; retry scheduled"
            )
        }
        Err(ActivityError::Stale { .. }) => {
            warn!("late result of a timed-out attempt rejected")
        }
        Err(ActivityError::PayloadTooLarge { size, limit }) => {
            let mut f = Failure::application(
                "payload-too-large",
                format!("activity result of {size} bytes exceeds the limit of {limit} bytes"),
            );
            f.non_retryable = true;
            if let Err(e) = store.complete_activity(attempt, Err(f)).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use refrain::{async_trait, Activity, ActivityError};
    use refrain_history::{LeaseToken, Store, StoreConfig, Timestamp, WorkflowId};
    use std::collections::HashSet;
    use tokio::sync::mpsc::unbounded_channel;
    use tokio::sync::Notify;

    /// Which attempts (by run number) have started.
    #[derive(Default)]
    struct Started {
        runs: Mutex<HashSet<u64>>,
        changed: Notify,
    }

    /// Run 1 is a long activity: it returns only once every other attempt
    /// in `others` has started. The rest return at once.
    struct Gate {
        started: Arc<Started>,
        others: Arc<Mutex<Vec<u64>>>,
    }

    #[async_trait]
    impl Activity for Gate {
        const NAME: &'static str = "gate";
        type Input = u64;
        type Output = u64;
        async fn run(&self, _: ActivityContext, run: u64) -> Result<u64, ActivityError> {
            self.started.runs.lock().unwrap().insert(run);
            self.started.changed.notify_waiters();
            if run == 1 {
                loop {
                    let changed = self.started.changed.notified();
                    let all = {
                        let others = self.others.lock().unwrap();
                        let started = self.started.runs.lock().unwrap();
                        others.iter().all(|r| started.contains(r))
                    };
                    if all {
                        break;
                    }
                    changed.await;
                }
            }
            Ok(run)
        }
    }

    fn attempt(run: u64) -> ActivityTask {
        ActivityTask {
            run: RunId(run),
            cmd: CommandSeq(1),
            workflow_id: WorkflowId::new(format!("wf-{run}")),
            activity_type: "gate".into(),
            input: refrain::payload::encode("input", &run).unwrap(),
            attempt: 1,
            token: LeaseToken(run),
            deadline: Timestamp(u64::MAX),
            heartbeat_timeout: None,
            heartbeat_details: None,
            durable_after: refrain_history::FlushTicket::DURABLE,
        }
    }

    /// Issue 14, "the engine can stall under sustained load": the poller
    /// claimed more attempts than it held slots for, then waited for a
    /// slot with the rest in hand, while commits applied during its claim
    /// had taken the free slots for attempts they handed out, which sit in
    /// the channel only the poller reads. Once the slot holders were busy
    /// (here, a long activity waiting for the others to start) or had
    /// given their slots to more hand-outs, nothing could ever move.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue_14_stall_claimed_attempts_never_wait_for_slots_held_by_unread_handouts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let started = Arc::new(Started::default());
        let others = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::default();
        registry.add_activity(Gate {
            started: started.clone(),
            others: others.clone(),
        });
        let slots = Arc::new(Semaphore::new(2));
        let (handout_tx, handout_rx) = unbounded_channel();
        let (delivered_tx, mut delivered_rx) = unbounded_channel();
        let (_grace_tx, grace_rx) = watch::channel(None);

        // The first claim finds two attempts (runs 1 and 2); while it is
        // applied, a commit takes every free slot for an attempt it
        // schedules and hands it out, as `direct` does (runs 100 on).
        let racing = slots.clone();
        let expected = others.clone();
        let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let claim = move |max: usize, wait: Duration| {
            let mut found = Vec::new();
            if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                let mut run = 100;
                while let Ok(slot) = racing.clone().try_acquire_owned() {
                    expected.lock().unwrap().push(run);
                    handout_tx.send((attempt(run), slot)).unwrap();
                    run += 1;
                }
                found = (1..=2).take(max).map(attempt).collect();
                let mut expected = expected.lock().unwrap();
                expected.extend(found.iter().map(|t| t.run.0).filter(|r| *r != 1));
            }
            async move {
                if found.is_empty() {
                    // As the store's poll: nothing came within the wait.
                    tokio::time::sleep(wait).await;
                }
                Ok(found)
            }
        };
        let poller = tokio::spawn(poll_activities(
            Arc::new(store.clone()),
            claim,
            Arc::new(registry),
            slots,
            handout_rx,
            RunnerLinks {
                delivered: Some(delivered_tx),
                attempts: Arc::default(),
            },
            grace_rx,
        ));

        // Every attempt claimed or handed out runs to the end.
        let finished = tokio::time::timeout(Duration::from_secs(30), async {
            let mut done = HashSet::new();
            loop {
                let want: HashSet<u64> =
                    others.lock().unwrap().iter().copied().chain([1]).collect();
                if !want.is_empty() && want.is_subset(&done) {
                    return done;
                }
                let d = delivered_rx.recv().await.expect("the runner is running");
                done.insert(d.run.0);
            }
        })
        .await;
        poller.abort();
        let started = started.runs.lock().unwrap().clone();
        assert!(
            finished.is_ok(),
            "attempts never ran: the poller waits for a slot; started: {started:?}, expected: {:?}",
            others.lock().unwrap()
        );
    }
}
