//! Group commit. One flusher thread serves every caller of
//! `Store::durable`: callers park a waiter and wake the thread, the thread
//! flushes (and fsyncs) once, and answers every waiter that flush covers.
//!
//! Flushes are numbered. A [`FlushTicket`] taken right after a write names
//! the first flush to start after it, which covers the write; a waiter
//! holding the ticket is answered when that flush completes. A waiter that
//! takes its ticket only when it parks (`durable`) asks for the next flush
//! to start; one that carries a ticket from the moment its write was
//! applied (a commit that closed a run, taken by the committer) also rides
//! a flush that began while it was on its way, instead of waiting for that
//! flush to end and one more to run.
//!
//! sled's I/O errors are sticky, so the first failed flush closes the store
//! for acknowledgements: every later `durable` call gets `Closed` rather
//! than a promise nobody can keep.

use super::integrity::{FlushMarks, Watermark};
use crate::error::StoreError;
use crate::store::api::DurabilityMode;
use crate::telemetry;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A parked caller, and when it parked (for the watchdog).
type Waiter = (oneshot::Sender<Result<(), StoreError>>, Instant);

/// The flusher's progress, for a stall watchdog: a flush that runs, or a
/// waiter left parked, far longer than any should means acknowledgements
/// have stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushProgress {
    /// Flushes begun.
    pub started: u64,
    /// Flushes completed.
    pub done: u64,
    /// How long the flush in progress has run.
    pub flushing_for: Option<Duration>,
    /// How long the longest-parked waiter has waited.
    pub waiting_for: Option<Duration>,
}

/// The number of the first flush that covers writes made before the ticket
/// was taken (see the module docs). Callers outside the store hold one
/// where something must not happen before a write is durable (an activity
/// attempt claimed in a commit starts only once that commit is), and wait
/// for it with `Store::durable_since`: the wait rides the group commit,
/// it never asks for a flush of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlushTicket(u64);

impl FlushTicket {
    /// A ticket every flush covers, so waiting for it returns at once: for
    /// writes already known to be durable.
    pub const DURABLE: FlushTicket = FlushTicket(0);
}

#[derive(Default)]
struct State {
    /// Each waiter with the flush that answers it.
    waiters: Vec<(u64, Waiter)>,
    /// Flushes begun; the one in progress, if any, is number `started`.
    started: u64,
    /// Flushes completed.
    done: u64,
    /// When the flush in progress began.
    flushing_since: Option<Instant>,
    shutdown: bool,
    failed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    /// The flusher never panics while holding the lock, but a poisoned lock
    /// must still not take the process down: the data is a plain list.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle to the flusher thread; dropping it stops the thread after a final
/// flush.
pub(super) struct Flusher {
    mode: DurabilityMode,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Makes everything written so far durable; `true` on the final call at
/// shutdown.
type SyncFn = Box<dyn FnMut(bool) -> Result<(), StoreError> + Send>;

/// Work that follows a successful flush but that nobody waits for.
type AfterFn = Box<dyn FnMut() + Send>;

impl Flusher {
    /// Starts the flusher of a store opened for writing. Each flush is
    /// marked in sled before it begins and recorded in the watermark once
    /// it is durable and its waiters are answered (see `integrity`).
    pub(super) fn start(
        db: sled::Db,
        dir: &Path,
        data_file: File,
        mode: DurabilityMode,
        (mut marks, mut watermark): (FlushMarks, Watermark),
    ) -> Result<Flusher, StoreError> {
        let mut blobs = BlobSync::new(dir.join("blobs"));
        let durable = watermark.durable();
        Flusher::spawn_with(
            mode,
            Box::new(move |closing| {
                // Mode `None` promised nothing, but flushing on a clean close
                // costs little and spares the next open a recovery.
                let mode = match mode {
                    DurabilityMode::None if closing => DurabilityMode::Flush,
                    mode => mode,
                };
                if mode == DurabilityMode::None {
                    return Ok(());
                }
                let mark = marks.before_flush()?;
                flush_once(&db, &data_file, &mut blobs, mode)?;
                durable.set(mark);
                Ok(())
            }),
            // After the waiters are answered: the watermark is not theirs
            // to wait for.
            Box::new(move || watermark.record()),
        )
    }

    /// A flusher for a store opened read-only: it flushes nothing and
    /// acknowledges nothing (every `durable` call gets `Closed`).
    pub(super) fn read_only() -> Result<Flusher, StoreError> {
        let flusher = Flusher::spawn(DurabilityMode::None, Box::new(|_| Ok(())))?;
        flusher.shared.lock().failed = true;
        Ok(flusher)
    }

    /// The flusher of an in-memory store: there is nothing to flush, but
    /// waiters go through the same group commit as on disk, so tickets,
    /// waits and shutdown behave the same.
    pub(super) fn in_memory(mode: DurabilityMode) -> Result<Flusher, StoreError> {
        Flusher::spawn(mode, Box::new(|_| Ok(())))
    }

    fn spawn(mode: DurabilityMode, sync: SyncFn) -> Result<Flusher, StoreError> {
        Flusher::spawn_with(mode, sync, Box::new(|| {}))
    }

    /// Like `spawn`, calling `after` once the waiters of each successful
    /// flush (and the final one) have been answered.
    fn spawn_with(
        mode: DurabilityMode,
        sync: SyncFn,
        after: AfterFn,
    ) -> Result<Flusher, StoreError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("refrain-flusher".into())
            .spawn(move || run(&thread_shared, sync, after))
            .map_err(StoreError::Sync)?;
        Ok(Flusher {
            mode,
            shared,
            thread: Some(thread),
        })
    }

    /// A ticket for everything written before this call. Taken under the
    /// lock that starts a flush, so the flush it names cannot have begun
    /// before the writes it stands for.
    pub(super) fn ticket(&self) -> FlushTicket {
        FlushTicket(self.shared.lock().started + 1)
    }

    /// Parks a waiter for `ticket` (the next flush when `None`), or answers
    /// at once when there is nothing to wait for.
    fn register(
        &self,
        ticket: Option<FlushTicket>,
    ) -> Result<Option<oneshot::Receiver<Result<(), StoreError>>>, StoreError> {
        let mut state = self.shared.lock();
        if state.failed || state.shutdown {
            return Err(StoreError::Closed);
        }
        if self.mode == DurabilityMode::None {
            return Ok(None);
        }
        let need = ticket.map_or(state.started + 1, |t| t.0);
        if state.done >= need {
            return Ok(None);
        }
        let (tx, rx) = oneshot::channel();
        state.waiters.push((need, (tx, Instant::now())));
        drop(state);
        self.shared.wake.notify_one();
        Ok(Some(rx))
    }

    /// The flusher's progress so far.
    pub(super) fn progress(&self) -> FlushProgress {
        let state = self.shared.lock();
        FlushProgress {
            started: state.started,
            done: state.done,
            flushing_for: state.flushing_since.map(|t| t.elapsed()),
            // Kept in the order they parked: the first waited longest.
            waiting_for: state.waiters.first().map(|(_, (_, at))| at.elapsed()),
        }
    }

    /// Waits until everything written before this call is durable.
    pub(super) async fn durable(&self) -> Result<(), StoreError> {
        self.durable_since(None).await
    }

    /// Waits until everything written before `ticket` was taken is
    /// durable (before this call when `None`).
    pub(super) async fn durable_since(
        &self,
        ticket: Option<FlushTicket>,
    ) -> Result<(), StoreError> {
        match self.register(ticket)? {
            None => Ok(()),
            // A dropped sender means the thread is gone: nothing more will
            // be made durable.
            Some(rx) => rx.await.unwrap_or(Err(StoreError::Closed)),
        }
    }

    pub(super) fn durable_blocking(&self) -> Result<(), StoreError> {
        match self.register(None)? {
            None => Ok(()),
            Some(rx) => rx.blocking_recv().unwrap_or(Err(StoreError::Closed)),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("refrain flusher thread panicked");
            }
        }
    }
}

/// sled 0.34.7 writes values too large for a log segment (and pages that
/// grew that large) to files under `blobs/`, and never fsyncs them; its
/// `flush` only syncs the main data file. In `Fsync` mode every new blob
/// file, and the directory that names it, is synced before an
/// acknowledgement. Files already synced are remembered so each is synced
/// once.
struct BlobSync {
    dir: PathBuf,
    synced: HashSet<OsString>,
}

impl BlobSync {
    fn new(dir: PathBuf) -> BlobSync {
        BlobSync {
            dir,
            synced: HashSet::new(),
        }
    }

    fn sync_new(&mut self) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut present = HashSet::new();
        let mut added = false;
        for entry in entries {
            let name = entry?.file_name();
            if !self.synced.contains(&name) {
                match File::open(self.dir.join(&name)) {
                    Ok(f) => f.sync_all()?,
                    // Garbage-collected by sled since the listing.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                added = true;
            }
            present.insert(name);
        }
        if added {
            File::open(&self.dir)?.sync_all()?;
        }
        self.synced = present;
        Ok(())
    }
}

fn flush_once(
    db: &sled::Db,
    data_file: &File,
    blobs: &mut BlobSync,
    mode: DurabilityMode,
) -> Result<(), StoreError> {
    match mode {
        DurabilityMode::None => Ok(()),
        DurabilityMode::Flush => db.flush().map(drop).map_err(StoreError::Storage),
        DurabilityMode::Fsync => {
            db.flush().map_err(StoreError::Storage)?;
            blobs.sync_new().map_err(StoreError::Sync)?;
            data_file.sync_all().map_err(StoreError::Sync)
        }
    }
}

/// A copy of `e` for each waiter of a failed batch (io errors do not
/// clone).
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Storage(e) => StoreError::Storage(e.clone()),
        StoreError::Sync(e) => StoreError::Sync(std::io::Error::new(e.kind(), e.to_string())),
        _ => StoreError::Closed,
    }
}

/// Takes the waiters that flush `flush` answers.
fn covered(state: &mut State, flush: u64) -> Vec<Waiter> {
    let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.waiters)
        .into_iter()
        .partition(|(need, _)| *need <= flush);
    state.waiters = later;
    now.into_iter().map(|(_, w)| w).collect()
}

fn run(shared: &Shared, mut sync: SyncFn, mut after: AfterFn) {
    loop {
        let flush = {
            let mut state = shared.lock();
            while state.waiters.is_empty() && !state.shutdown {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.waiters.is_empty() {
                break;
            }
            // No waiter asks for more than the next flush: tickets are
            // taken as `started + 1`.
            state.started += 1;
            state.flushing_since = Some(Instant::now());
            state.started
        };
        let began = Instant::now();
        match sync(false) {
            Ok(()) => {
                telemetry::histogram(telemetry::STORE_FLUSH_SECONDS, &[])
                    .record(began.elapsed().as_secs_f64());
                let answered = {
                    let mut state = shared.lock();
                    state.done = flush;
                    state.flushing_since = None;
                    covered(&mut state, flush)
                };
                for (w, _) in answered {
                    // The caller may have stopped waiting; that is its right.
                    let _ = w.send(Ok(()));
                }
                after();
            }
            Err(e) => {
                tracing::error!(error = %e, "flush failed; the store acknowledges nothing more");
                let (batch, late) = {
                    let mut state = shared.lock();
                    state.failed = true;
                    let batch = covered(&mut state, flush);
                    (batch, std::mem::take(&mut state.waiters))
                };
                for (w, _) in batch {
                    let _ = w.send(Err(copy_error(&e)));
                }
                for (_, (w, _)) in late {
                    let _ = w.send(Err(StoreError::Closed));
                }
                // sled's errors are sticky: a final flush would fail too.
                return;
            }
        }
    }
    // Last handle dropped: leave nothing for sled's background flush to
    // finish after the process may already be gone.
    match sync(true) {
        Ok(()) => after(),
        Err(e) => tracing::warn!(error = %e, "final flush on close failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Polls until `n` waiters are parked, counting any the flush in
    /// progress will answer (registration is synchronous, so this only
    /// waits for the spawned threads to get that far).
    fn wait_for_parked(f: &Flusher, n: usize) {
        while f.shared.lock().waiters.len() < n {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A flusher whose every flush (but the final one) announces itself
    /// on `entered`, then waits for a message on `release`; `flushes`
    /// counts them.
    struct Gated {
        flusher: Flusher,
        entered: mpsc::Receiver<()>,
        release: mpsc::Sender<()>,
        flushes: Arc<Mutex<u32>>,
    }

    fn gated() -> Gated {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let flushes = Arc::new(Mutex::new(0));
        let count = Arc::clone(&flushes);
        let flusher = Flusher::spawn(
            DurabilityMode::Fsync,
            Box::new(move |closing| {
                if !closing {
                    *count.lock().unwrap() += 1;
                    let _ = entered_tx.send(());
                    let _ = release_rx.recv();
                }
                Ok(())
            }),
        )
        .unwrap();
        Gated {
            flusher,
            entered,
            release,
            flushes,
        }
    }

    #[test]
    fn waiters_parked_during_a_flush_share_the_next_one() {
        let Gated {
            flusher,
            entered,
            release,
            flushes,
        } = gated();
        std::thread::scope(|s| {
            let first = s.spawn(|| flusher.durable_blocking());
            entered.recv().unwrap();
            let later: Vec<_> = (0..5)
                .map(|_| s.spawn(|| flusher.durable_blocking()))
                .collect();
            // The first waiter stays parked until its flush ends.
            wait_for_parked(&flusher, 6);
            release.send(()).unwrap();
            entered.recv().unwrap();
            release.send(()).unwrap();
            assert!(first.join().unwrap().is_ok());
            for w in later {
                assert!(w.join().unwrap().is_ok());
            }
        });
        assert_eq!(*flushes.lock().unwrap(), 2, "five waiters, one flush");
    }

    #[test]
    fn a_ticket_taken_before_a_flush_began_is_answered_by_that_flush() {
        let Gated {
            flusher,
            entered,
            release,
            flushes,
        } = gated();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // Taken "right after a write", before any flush began.
        let early = flusher.ticket();
        let (rode_tx, rode_rx) = mpsc::channel();
        std::thread::scope(|s| {
            let first = s.spawn(|| flusher.durable_blocking());
            entered.recv().unwrap();
            // Parked while flush 1 runs: the early ticket rides it, a
            // fresh wait needs flush 2.
            s.spawn(|| {
                let _ = rode_tx.send(rt.block_on(flusher.durable_since(Some(early))));
            });
            let fresh = s.spawn(|| flusher.durable_blocking());
            wait_for_parked(&flusher, 3);
            release.send(()).unwrap();
            // Flush 2 cannot end before the next release, so an answer now
            // came from flush 1.
            let rode = rode_rx.recv_timeout(Duration::from_secs(10));
            entered.recv().unwrap();
            release.send(()).unwrap();
            assert!(first.join().unwrap().is_ok());
            assert!(fresh.join().unwrap().is_ok());
            assert!(
                matches!(rode, Ok(Ok(()))),
                "the early ticket rides the flush in progress: {rode:?}"
            );
        });
        assert_eq!(*flushes.lock().unwrap(), 2);
        // Everything before it is durable now: answered without a flush.
        assert!(rt.block_on(flusher.durable_since(Some(early))).is_ok());
        assert_eq!(*flushes.lock().unwrap(), 2);
    }

    #[test]
    fn progress_shows_a_flush_under_way_and_its_waiter_until_it_ends() {
        let Gated {
            flusher,
            entered,
            release,
            ..
        } = gated();
        assert_eq!(flusher.progress(), FlushProgress::default());
        std::thread::scope(|s| {
            let waiter = s.spawn(|| flusher.durable_blocking());
            entered.recv().unwrap();
            let during = flusher.progress();
            assert_eq!((during.started, during.done), (1, 0));
            assert!(during.flushing_for.is_some() && during.waiting_for.is_some());
            release.send(()).unwrap();
            assert!(waiter.join().unwrap().is_ok());
        });
        let after = flusher.progress();
        assert_eq!((after.started, after.done), (1, 1));
        assert_eq!((after.flushing_for, after.waiting_for), (None, None));
    }

    #[test]
    fn a_failed_flush_is_reported_once_then_the_store_is_closed() {
        let flusher = Flusher::spawn(
            DurabilityMode::Fsync,
            Box::new(|_| Err(StoreError::Sync(std::io::Error::other("disk full")))),
        )
        .unwrap();
        assert!(matches!(
            flusher.durable_blocking(),
            Err(StoreError::Sync(_))
        ));
        assert!(matches!(
            flusher.durable_blocking(),
            Err(StoreError::Closed)
        ));
    }

    #[test]
    fn mode_none_answers_without_flushing_and_flushes_on_close() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        let flusher = Flusher::spawn(
            DurabilityMode::None,
            Box::new(move |closing| {
                seen.lock().unwrap().push(closing);
                Ok(())
            }),
        )
        .unwrap();
        assert!(flusher.durable_blocking().is_ok());
        drop(flusher);
        assert_eq!(*calls.lock().unwrap(), [true]);
    }
}
