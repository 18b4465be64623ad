//! Group commit at the transaction level: state transitions of different
//! runs that arrive together are applied in one store transaction (see
//! `journal`).
//!
//! Transactions run one at a time, and each costs a fixed amount beyond
//! its writes (a hand-off to the committer, the journal entry written and
//! removed), so ten activation commits in one transaction cost much less
//! than ten transactions.
//!
//! How a caller's operation gets applied:
//!
//! - Nobody is committing: the caller applies its operation at once, on
//!   its own thread, alone in a transaction (no hand-off, so a lone caller
//!   waits no longer than before).
//! - A transaction is in progress: the operation is queued and the caller
//!   waits. When the transaction ends, the committer thread takes *every*
//!   queued operation and applies them in one transaction, in arrival
//!   order, and so on while operations keep arriving.
//!
//! Each operation is the same pure closure it would be in a transaction of
//! its own, with its own checks (lease, expected last seq, attempt token):
//! operations later in a batch see the writes of earlier ones, exactly as
//! if the transactions had run one after another. If one operation aborts,
//! nothing of the batch is written; that operation gets its error and the
//! others are applied again without it, so one refused commit never fails
//! or changes another. A storage error fails every operation of the batch.

use super::engine::TxError;
use super::transitions::tables::Tx;
use super::tx::{Trees, TxResult};
use crate::error::StoreError;
use crate::telemetry;
use std::any::Any;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Most operations applied in one transaction: bounds how long one
/// transaction keeps every other writer waiting.
const MAX_BATCH: usize = 256;

type Output = Box<dyn Any + Send>;
type Op = Box<dyn Fn(&Tx<'_>) -> TxResult<Output> + Send>;
type Outcome = Result<Output, StoreError>;

/// In-process wake-ups to make once the operation is committed, whether
/// or not its caller is still waiting.
type After = Box<dyn FnOnce(&Output) + Send>;

struct Job {
    op: Op,
    after: Option<After>,
    reply: Reply,
    /// For the watchdog's view of how long the queue's head has waited.
    queued_at: Instant,
}

/// Where an operation's outcome goes.
enum Reply {
    /// A caller waiting on it.
    Waiting(oneshot::Sender<Outcome>),
    /// A caller that went on with other work (see
    /// [`Batcher::apply_detached`]).
    Call(Callback),
}

/// Called once with the outcome, by whoever applies the batch. If the
/// batch is dropped unapplied (an operation panicked, the store is
/// closing), it is called with `Closed` on drop, so a caller that went on
/// without waiting still hears of every operation it handed over.
struct Callback(Option<Box<dyn FnOnce(Outcome) + Send>>);

impl Drop for Callback {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(StoreError::Closed));
        }
    }
}

impl Reply {
    fn send(self, outcome: Outcome) {
        match self {
            // The caller may have stopped waiting; that is its right.
            Reply::Waiting(tx) => drop(tx.send(outcome)),
            Reply::Call(mut call) => {
                if let Some(f) = call.0.take() {
                    f(outcome);
                }
            }
        }
    }
}

#[derive(Default)]
struct State {
    queue: Vec<Job>,
    /// A transaction is being applied (inline by a caller, or by the
    /// committer thread); new operations queue behind it.
    busy: bool,
    /// The committer thread owns `busy` and drains the queue.
    thread_turn: bool,
    shutdown: bool,
    /// What a watchdog reads (see [`CommitProgress`]).
    progress: Progress,
}

/// Counters and clocks a stall watchdog reads; written under the state
/// lock that each transaction takes anyway.
#[derive(Default)]
struct Progress {
    started: u64,
    finished: u64,
    applying_since: Option<Instant>,
}

impl Progress {
    fn begin(&mut self) {
        self.started += 1;
        self.applying_since = Some(Instant::now());
    }

    fn end(&mut self) {
        self.finished += 1;
        self.applying_since = None;
    }
}

/// The group committer's progress, for a stall watchdog: a transaction
/// that runs, or an operation that stays queued, far longer than any
/// should means commits have stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitProgress {
    /// Transactions begun (inline or by the committer thread).
    pub started: u64,
    /// Transactions ended, applied or not.
    pub finished: u64,
    /// How long the transaction in progress has run.
    pub applying_for: Option<Duration>,
    /// How long the oldest queued operation has waited.
    pub queued_for: Option<Duration>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    /// Nothing panics while holding the lock; a poisoned lock still guards
    /// a structurally sound queue.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends an inline transaction: hands whatever queued meanwhile to the
    /// committer thread.
    fn release(&self) {
        let mut state = self.lock();
        state.progress.end();
        if state.queue.is_empty() {
            state.busy = false;
        } else {
            state.thread_turn = true;
            drop(state);
            self.wake.notify_one();
        }
    }
}

/// The batching committer; dropping it applies what is queued and stops
/// its thread.
pub(super) struct Batcher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Batcher {
    /// Starts the committer thread, which applies batches through `trees`.
    pub(super) fn start(trees: Trees) -> Result<Batcher, StoreError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("refrain-committer".into())
            .spawn(move || committer(&thread_shared, &trees))
            .map_err(StoreError::Sync)?;
        Ok(Batcher {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `job` behind a transaction in progress, or hands it back for
    /// the caller to apply inline when there is none.
    fn admit(&self, job: Job) -> Option<Job> {
        let mut state = self.shared.lock();
        if state.busy {
            state.queue.push(job);
            None
        } else {
            state.busy = true;
            state.progress.begin();
            Some(job)
        }
    }

    /// The committer's progress so far.
    pub(super) fn progress(&self) -> CommitProgress {
        let state = self.shared.lock();
        let p = &state.progress;
        CommitProgress {
            started: p.started,
            finished: p.finished,
            applying_for: p.applying_since.map(|t| t.elapsed()),
            queued_for: state.queue.first().map(|j| j.queued_at.elapsed()),
        }
    }

    /// Applies `op` in a transaction, alone or batched with concurrent
    /// operations, and returns its result. Blocks the calling thread.
    pub(super) fn apply<T, F>(&self, trees: &Trees, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Tx<'_>) -> TxResult<T> + Send + 'static,
    {
        block_on(self.apply_async(trees, op))
    }

    /// [`Batcher::apply`] for async callers: while a transaction is in
    /// progress it waits without blocking its thread, so many tasks of one
    /// runtime can join the same batch.
    pub(super) async fn apply_async<T, F>(&self, trees: &Trees, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Tx<'_>) -> TxResult<T> + Send + 'static,
    {
        self.submit(trees, erase(op), None).await
    }

    /// [`Batcher::apply_async`] whose in-process wake-ups (`after`, given
    /// the result) are made by whoever commits the batch, right after the
    /// commit: a caller that stops waiting cannot lose them.
    pub(super) async fn apply_async_then<T, F, A>(
        &self,
        trees: &Trees,
        op: F,
        after: A,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Tx<'_>) -> TxResult<T> + Send + 'static,
        A: FnOnce(&T) + Send + 'static,
    {
        let after: After = Box::new(move |out: &Output| {
            if let Some(v) = out.downcast_ref::<T>() {
                after(v);
            }
        });
        self.submit(trees, erase(op), Some(after)).await
    }

    /// Applies `op` without waiting for it: at once on this thread when no
    /// transaction is in progress (then `done` is called before this
    /// returns), otherwise in the committer's next batch (then `done` is
    /// called on the committer thread). `done` is called exactly once; it
    /// must not wait for the store, or the committer would wait for itself.
    pub(super) fn apply_detached<T, F, D>(&self, trees: &Trees, op: F, done: D)
    where
        T: Send + 'static,
        F: Fn(&Tx<'_>) -> TxResult<T> + Send + 'static,
        D: FnOnce(Result<T, StoreError>) + Send + 'static,
    {
        let call = Box::new(move |outcome: Outcome| done(unerase(outcome)));
        let job = Job {
            op: erase(op),
            after: None,
            reply: Reply::Call(Callback(Some(call))),
            queued_at: Instant::now(),
        };
        self.apply_or_queue(trees, job);
    }

    async fn submit<T: 'static>(
        &self,
        trees: &Trees,
        op: Op,
        after: Option<After>,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            op,
            after,
            reply: Reply::Waiting(tx),
            queued_at: Instant::now(),
        };
        self.apply_or_queue(trees, job);
        unerase(rx.await.unwrap_or(Err(StoreError::Closed)))
    }

    /// Applies `job` alone on this thread when no transaction is in
    /// progress; otherwise leaves it queued for the committer.
    fn apply_or_queue(&self, trees: &Trees, job: Job) {
        if let Some(job) = self.admit(job) {
            // Released even if the operation panics, so one bug cannot
            // leave every later caller queued behind it.
            let _release = Release(&self.shared);
            execute(trees, vec![job]);
        }
    }
}

/// Runs a future that only waits on the committer to completion on this
/// thread (parking between wake-ups), so blocking callers share the async
/// path. Safe inside an async runtime's thread: it waits on no runtime
/// resource. The future runs outside tokio's cooperative budget: a task
/// that has used up its budget gets `Pending` (and an immediate wake) from
/// every tokio resource until it yields to the scheduler, which a thread
/// blocked here never does.
pub(super) fn block_on<F: Future>(fut: F) -> F::Output {
    let fut = tokio::task::unconstrained(fut);
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// Ends an inline transaction when dropped.
struct Release<'a>(&'a Shared);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("refrain committer thread panicked");
            }
        }
    }
}

fn erase<T, F>(op: F) -> Op
where
    T: Send + 'static,
    F: Fn(&Tx<'_>) -> TxResult<T> + Send + 'static,
{
    Box::new(move |tx| op(tx).map(|v| Box::new(v) as Output))
}

fn unerase<T: 'static>(outcome: Outcome) -> Result<T, StoreError> {
    outcome.map(|v| {
        *v.downcast::<T>()
            .expect("batch output of the submitted type")
    })
}

fn committer(shared: &Shared, trees: &Trees) {
    loop {
        let batch = {
            let mut state = shared.lock();
            while !state.thread_turn && !state.shutdown {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if !state.thread_turn {
                return;
            }
            let n = state.queue.len().min(MAX_BATCH);
            state.progress.begin();
            state.queue.drain(..n).collect::<Vec<_>>()
        };
        // A panicking operation (a bug) drops the batch's reply senders, so
        // its callers get `Closed`; the committer itself carries on.
        let applied =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(trees, batch)));
        if applied.is_err() {
            tracing::error!("a batched store operation panicked; its batch was not applied");
        }
        let mut state = shared.lock();
        state.progress.end();
        if state.queue.is_empty() {
            state.thread_turn = false;
            state.busy = false;
        }
    }
}

/// Applies `jobs` in one transaction; an operation that aborts is answered
/// with its error and the transaction is applied again without it.
fn execute(trees: &Trees, mut jobs: Vec<Job>) {
    while !jobs.is_empty() {
        let began = Instant::now();
        let applied = transaction(trees, |tx| {
            let mut outputs = Vec::with_capacity(jobs.len());
            for (i, job) in jobs.iter().enumerate() {
                match (job.op)(tx) {
                    Ok(v) => outputs.push(v),
                    Err(TxError::Abort(e)) => return Err(TxError::Abort((i, e))),
                    Err(TxError::Storage(e)) => return Err(TxError::Storage(e)),
                }
            }
            Ok(outputs)
        });
        telemetry::histogram(telemetry::STORE_COMMIT_SECONDS, &[])
            .record(began.elapsed().as_secs_f64());
        match applied {
            Ok(outputs) => {
                for (job, output) in jobs.drain(..).zip(outputs) {
                    if let Some(after) = job.after {
                        after(&output);
                    }
                    job.reply.send(Ok(output));
                }
            }
            Err(TxError::Abort((i, e))) => {
                jobs.remove(i).reply.send(Err(e));
            }
            Err(TxError::Storage(e)) => {
                for job in jobs.drain(..) {
                    job.reply.send(Err(e.clone().into()));
                }
            }
        }
    }
}

/// One transaction over every tree an operation may touch.
pub(super) fn transaction<A, E>(
    t: &Trees,
    f: impl Fn(&Tx<'_>) -> Result<A, TxError<E>>,
) -> Result<A, TxError<E>> {
    t.engine.transaction(
        [
            &t.meta,
            &t.workflow_ids,
            &t.runs,
            &t.inbox,
            &t.ready,
            &t.activity_tasks,
            &t.activity_ready,
            &t.activity_deadlines,
            &t.history,
            &t.timers,
            &t.human_tasks,
            &t.run_human_tasks,
            &t.updates,
        ],
        |views| f(&Tx::over(views, &*t.run_ids)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::engine::Engine;
    use crate::store::transitions::tables::abort;
    use std::time::Duration;

    type TestOp<T> = Box<dyn Fn(&Tx<'_>) -> TxResult<T> + Send>;

    fn open() -> (tempfile::TempDir, Engine, Trees) {
        let dir = tempfile::tempdir().unwrap();
        let db = super::super::open_db(dir.path(), &Default::default()).unwrap();
        let engine = Engine::disk(&db).unwrap();
        let trees = Trees::open(&engine).unwrap();
        (dir, engine, trees)
    }

    /// Holds the batcher as if a transaction were in progress, lets `n`
    /// threads queue one operation each, then releases them as one batch.
    fn one_batch<T: Send + 'static>(
        batcher: &Batcher,
        trees: &Trees,
        ops: Vec<TestOp<T>>,
    ) -> Vec<Result<T, StoreError>> {
        batcher.shared.lock().busy = true;
        let n = ops.len();
        std::thread::scope(|s| {
            let waiting: Vec<_> = ops
                .into_iter()
                .enumerate()
                .map(|(i, op)| {
                    // Queue in order, so the batch order is the list order.
                    while batcher.shared.lock().queue.len() < i {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    s.spawn(move || batcher.apply(trees, op))
                })
                .collect();
            while batcher.shared.lock().queue.len() < n {
                std::thread::sleep(Duration::from_millis(1));
            }
            batcher.shared.release();
            waiting.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn an_aborting_operation_fails_alone_and_the_rest_of_its_batch_commits() {
        let (_dir, _db, trees) = open();
        let batcher = Batcher::start(Trees::open(&_db).unwrap()).unwrap();
        let ops: Vec<TestOp<u8>> = (0u8..4)
            .map(|i| {
                Box::new(move |tx: &Tx<'_>| {
                    tx.meta.insert(&[i][..], &[i][..])?;
                    if i == 2 {
                        return Err(abort(StoreError::Closed));
                    }
                    Ok(i)
                }) as TestOp<u8>
            })
            .collect();
        let results = one_batch(&batcher, &trees, ops);
        assert!(matches!(results[2], Err(StoreError::Closed)));
        for i in [0u8, 1, 3] {
            assert_eq!(*results[usize::from(i)].as_ref().unwrap(), i);
            assert!(trees.meta.get([i]).unwrap().is_some(), "op {i} committed");
        }
        assert!(
            trees.meta.get([2u8]).unwrap().is_none(),
            "nothing of the aborted op is written"
        );
    }

    #[test]
    fn operations_in_one_batch_see_the_writes_of_earlier_ones() {
        let (_dir, _db, trees) = open();
        let batcher = Batcher::start(Trees::open(&_db).unwrap()).unwrap();
        // Each op reads the counter and writes it plus one, as separate
        // transactions run one after another would.
        let ops: Vec<TestOp<u64>> = (0..5)
            .map(|_| {
                Box::new(|tx: &Tx<'_>| {
                    let n = match tx.meta.get("n")? {
                        Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap()),
                        None => 0,
                    };
                    tx.meta.insert("n", &(n + 1).to_be_bytes()[..])?;
                    Ok(n + 1)
                }) as TestOp<u64>
            })
            .collect();
        let results: Vec<u64> = one_batch(&batcher, &trees, ops)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(results, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_detached_operation_with_nobody_committing_is_answered_before_the_call_returns() {
        let (_dir, db, trees) = open();
        let batcher = Batcher::start(Trees::open(&db).unwrap()).unwrap();
        let caller = std::thread::current().id();
        let answered = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&answered);
        batcher.apply_detached(
            &trees,
            |tx| {
                tx.meta.insert("k", "v")?;
                Ok(7u8)
            },
            move |out| *slot.lock().unwrap() = Some((out.unwrap(), std::thread::current().id())),
        );
        assert_eq!(*answered.lock().unwrap(), Some((7, caller)));
        assert!(trees.meta.get("k").unwrap().is_some());
        assert!(!batcher.shared.lock().busy);
    }

    #[test]
    fn detached_operations_queued_behind_a_transaction_return_at_once_and_commit_in_order() {
        let (_dir, db, trees) = open();
        let batcher = Batcher::start(Trees::open(&db).unwrap()).unwrap();
        batcher.shared.lock().busy = true;
        let (tx_out, answers) = std::sync::mpsc::channel();
        for _ in 0..3 {
            let tx_out = tx_out.clone();
            batcher.apply_detached(
                &trees,
                |tx| {
                    let n = tx.meta.get("n")?.map_or(0, |v| v[0]);
                    tx.meta.insert("n", &[n + 1][..])?;
                    Ok(n + 1)
                },
                move |out| {
                    let on = std::thread::current().name().map(str::to_owned);
                    tx_out.send((out.unwrap(), on)).unwrap();
                },
            );
        }
        assert!(
            answers.try_recv().is_err(),
            "queued, not applied, while the transaction is in progress"
        );
        batcher.shared.release();
        let got: Vec<_> = (0..3)
            .map(|_| answers.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        let committer = Some("refrain-committer".to_owned());
        assert_eq!(
            got,
            [
                (1, committer.clone()),
                (2, committer.clone()),
                (3, committer)
            ]
        );
    }

    #[test]
    fn a_detached_operation_in_a_batch_that_is_never_applied_is_answered_closed() {
        let (_dir, db, trees) = open();
        let batcher = Batcher::start(Trees::open(&db).unwrap()).unwrap();
        batcher.shared.lock().busy = true;
        let (tx_out, answers) = std::sync::mpsc::channel();
        let bug = tx_out.clone();
        batcher.apply_detached(
            &trees,
            |_tx| -> TxResult<()> { panic!("a bug in a store operation") },
            move |out| bug.send(out.map_err(|e| e.to_string())).unwrap(),
        );
        batcher.apply_detached(
            &trees,
            |tx| {
                tx.meta.insert("k", "v")?;
                Ok(())
            },
            move |out| tx_out.send(out.map_err(|e| e.to_string())).unwrap(),
        );
        batcher.shared.release();
        let closed = StoreError::Closed.to_string();
        for _ in 0..2 {
            let got = answers.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(got, Err(closed.clone()), "the caller hears of it");
        }
        assert!(
            trees.meta.get("k").unwrap().is_none(),
            "nothing was written"
        );
        // The committer carries on with later operations.
        let ok = batcher.apply(&trees, |tx| {
            tx.meta.insert("k", "v")?;
            Ok(())
        });
        assert!(ok.is_ok());
    }

    #[test]
    fn progress_shows_a_queued_operation_until_its_transaction_ends() {
        let (_dir, db, trees) = open();
        let batcher = Batcher::start(Trees::open(&db).unwrap()).unwrap();
        let before = batcher.progress();
        assert_eq!((before.applying_for, before.queued_for), (None, None));
        batcher.shared.lock().busy = true;
        let (tx_out, answers) = std::sync::mpsc::channel();
        batcher.apply_detached(
            &trees,
            |tx| {
                tx.meta.insert("k", "v")?;
                Ok(())
            },
            move |out| tx_out.send(out.is_ok()).unwrap(),
        );
        assert!(
            batcher.progress().queued_for.is_some(),
            "waiting is visible"
        );
        batcher.shared.release();
        assert_eq!(answers.recv_timeout(Duration::from_secs(10)), Ok(true));
        // The committer records the end just after answering.
        let mut after = batcher.progress();
        while after.applying_for.is_some() {
            std::thread::sleep(Duration::from_millis(1));
            after = batcher.progress();
        }
        assert_eq!(after.queued_for, None);
        assert_eq!(after.started, before.started + 1, "one transaction began");
    }

    #[test]
    fn a_lone_operation_is_applied_on_the_callers_thread() {
        let (_dir, _db, trees) = open();
        let batcher = Batcher::start(Trees::open(&_db).unwrap()).unwrap();
        let caller = std::thread::current().id();
        let ran_on = batcher
            .apply(&trees, |_tx| Ok(std::thread::current().id()))
            .unwrap();
        assert_eq!(ran_on, caller);
        assert!(!batcher.shared.lock().busy);
    }
}
