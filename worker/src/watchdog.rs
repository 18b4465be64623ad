//! The stall watchdog: a plain thread (so it still runs when the async
//! runtime does not) that looks every so often at what should be moving
//! and reports whatever has not moved for longer than a threshold:
//!
//! - a store transaction (a batch of commits) still being applied, or an
//!   operation still queued for one;
//! - a flush still running, or a caller still parked for one;
//! - an activity attempt claimed for this worker that has not started,
//!   or one still running that long after its own deadline passed (the
//!   store has voided it and its code was told to stop, yet it holds its
//!   slot), without a heartbeat that changed its record (new details, or
//!   a deadline moved by its heartbeat timeout) meanwhile.
//!
//! Each stuck thing is logged once with `tracing::error!` (what, which
//! run and command, for how long), and [`Worker::health`] shows the
//! current list. By default the watchdog then exits the process with
//! status [`STALL_EXIT_CODE`]: everything acknowledged is durable, and a
//! supervisor that restarts the process resumes the work, which a stalled
//! process never would. Choose [`StallAction::Report`] to only report.
//!
//! An attempt within its deadline is never stuck, however long it runs
//! without heartbeating: its start-to-close timeout is the user's own
//! statement of how long it may take (and one without any timeout is
//! never reported). What stalls a worker is code that ignores that limit:
//! every such attempt keeps an activity slot until it returns.
//!
//! [`Worker::health`]: crate::Worker::health

use refrain_history::{
    ActivityState, ActivityTask, CommandSeq, HistoryStore, LeaseToken, Payload, RunId, Timestamp,
    WorkflowId,
};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tracing::error;

/// Exit status of a process the watchdog stops (`EX_SOFTWARE`).
pub const STALL_EXIT_CODE: i32 = 70;

/// What the watchdog does once it has reported a stall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallAction {
    /// Exit the process with [`STALL_EXIT_CODE`], so that a supervisor
    /// restarts it (the default).
    Exit,
    /// Only log it and show it in [`Worker::health`](crate::Worker::health).
    Report,
}

/// Something that has made no progress for longer than the threshold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Stalled {
    /// A store transaction has been applied for this long.
    Commit,
    /// An operation has waited this long for its transaction.
    CommitQueued,
    /// A flush has run this long.
    Flush,
    /// A caller has waited this long for a flush.
    FlushWaiting,
    /// An attempt claimed for this worker has not started.
    AttemptWaiting(AttemptRef),
    /// An attempt has run past its deadline without returning or
    /// heartbeating.
    AttemptSilent(AttemptRef),
}

/// Which activity attempt.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AttemptRef {
    /// Its workflow.
    pub workflow_id: WorkflowId,
    /// Its run.
    pub run: RunId,
    /// The command that scheduled it.
    pub cmd: CommandSeq,
    /// The attempt, 1-based.
    pub attempt: u32,
}

/// One stuck thing and for how long it has been stuck.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stall {
    /// What is stuck.
    pub what: Stalled,
    /// How long it has made no progress, as of the last check.
    pub stuck_for: Duration,
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.stuck_for.as_secs_f64();
        match &self.what {
            Stalled::Commit => write!(f, "a store transaction has been applied for {secs:.1} s"),
            Stalled::CommitQueued => {
                write!(f, "a store operation has waited {secs:.1} s for its transaction")
            }
            Stalled::Flush => write!(f, "a flush has run for {secs:.1} s"),
            Stalled::FlushWaiting => write!(f, "a caller has waited {secs:.1} s for a flush"),
            Stalled::AttemptWaiting(a) => write!(
                f,
                "activity attempt {} of {} {} {} was claimed {secs:.1} s ago and has not started",
                a.attempt, a.workflow_id, a.run, a.cmd
            ),
            Stalled::AttemptSilent(a) => write!(
                f,
                "activity attempt {} of {} {} {} has run {secs:.1} s past its deadline without returning or heartbeating",
                a.attempt, a.workflow_id, a.run, a.cmd
            ),
        }
    }
}

/// The worker's health as the watchdog last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// What was stuck at the last check; empty when everything moved.
    pub stuck: Vec<Stall>,
    /// Stalls reported since the worker started (each stuck thing once,
    /// however long it stays stuck).
    pub stalls_reported: u64,
    /// Checks made so far.
    pub checks: u64,
}

impl Health {
    /// Whether nothing was stuck at the last check.
    pub fn is_healthy(&self) -> bool {
        self.stuck.is_empty()
    }
}

/// The watchdog's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WatchdogConfig {
    pub threshold: Duration,
    pub action: StallAction,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps and counters: still sound after a panic elsewhere.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The attempts this worker holds, from claim to return.
#[derive(Default)]
pub(crate) struct Attempts {
    by_token: Mutex<HashMap<LeaseToken, Held>>,
}

#[derive(Clone)]
struct Held {
    attempt: AttemptRef,
    since: Instant,
    running: bool,
    /// The record's deadline and heartbeat details when last seen: a
    /// heartbeat that changes either is progress.
    seen: (Timestamp, Option<Payload>),
}

impl Attempts {
    /// An attempt claimed for this worker, not yet started.
    pub fn claimed(&self, task: &ActivityTask) {
        lock(&self.by_token).insert(task.token, held(task, false));
    }

    /// The attempt's code starts now; it is tracked until the guard drops.
    pub fn started(self: &Arc<Self>, task: &ActivityTask) -> Tracked {
        lock(&self.by_token).insert(task.token, held(task, true));
        Tracked(Arc::clone(self), task.token)
    }

    /// A claimed attempt that will never start here (the runner stopped).
    pub fn dropped(&self, token: LeaseToken) {
        lock(&self.by_token).remove(&token);
    }
}

fn held(task: &ActivityTask, running: bool) -> Held {
    Held {
        attempt: AttemptRef {
            workflow_id: task.workflow_id.clone(),
            run: task.run,
            cmd: task.cmd,
            attempt: task.attempt,
        },
        since: Instant::now(),
        running,
        seen: (task.deadline, task.heartbeat_details.clone()),
    }
}

/// Ends tracking of a running attempt when its execution ends, however
/// it ends.
pub(crate) struct Tracked(Arc<Attempts>, LeaseToken);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.dropped(self.1);
    }
}

/// The watchdog thread; stopped when dropped.
pub(crate) struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(
        store: Arc<dyn HistoryStore>,
        attempts: Arc<Attempts>,
        health: Arc<Mutex<Health>>,
        config: WatchdogConfig,
    ) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        // Often enough that a stall is seen soon after the threshold.
        let every = (config.threshold / 4).clamp(Duration::from_millis(10), Duration::from_secs(5));
        let rt = Handle::current();
        let thread = std::thread::Builder::new()
            .name("refrain-watchdog".into())
            .spawn(move || {
                let mut watch = Watch {
                    store,
                    rt,
                    attempts,
                    health,
                    config,
                    reported: HashSet::new(),
                };
                while !stopped.load(Ordering::Acquire) {
                    std::thread::park_timeout(every);
                    if !stopped.load(Ordering::Acquire) {
                        watch.check();
                    }
                }
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                error!(error = %e, "cannot start the stall watchdog");
                None
            }
        };
        Watchdog { stop, thread }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

struct Watch {
    store: Arc<dyn HistoryStore>,
    /// Where the store's reads run (this thread waits for them).
    rt: Handle,
    attempts: Arc<Attempts>,
    health: Arc<Mutex<Health>>,
    config: WatchdogConfig,
    /// Stuck things already reported, so each is reported once.
    reported: HashSet<Stalled>,
}

impl Watch {
    fn check(&mut self) {
        let stuck = self.stuck();
        let mut fresh = 0;
        for s in &stuck {
            if self.reported.insert(s.what.clone()) {
                fresh += 1;
                error!(stuck_for_s = s.stuck_for.as_secs_f64(), "stall: {s}");
            }
        }
        // Reported again if it gets stuck again after moving.
        let now: HashSet<&Stalled> = stuck.iter().map(|s| &s.what).collect();
        self.reported.retain(|w| now.contains(w));
        let exit = !stuck.is_empty() && self.config.action == StallAction::Exit;
        {
            let mut health = lock(&self.health);
            health.checks += 1;
            health.stalls_reported += fresh;
            health.stuck = stuck;
        }
        if exit {
            error!("the engine stalled; exiting with status {STALL_EXIT_CODE} so that a supervisor restarts it");
            // Also straight to stderr, in case the log subscriber buffers.
            eprintln!("refrain: the engine stalled; exiting with status {STALL_EXIT_CODE}");
            std::process::exit(STALL_EXIT_CODE);
        }
    }

    fn stuck(&self) -> Vec<Stall> {
        let limit = self.config.threshold;
        let mut stuck = Vec::new();
        let mut past = |what: Stalled, d: Option<Duration>| {
            if let Some(d) = d.filter(|d| *d >= limit) {
                stuck.push(Stall { what, stuck_for: d });
            }
        };
        // A backend without progress counters is watched through the
        // attempts alone.
        if let Some(p) = self.store.progress() {
            past(Stalled::Commit, p.commits.applying_for);
            past(Stalled::CommitQueued, p.commits.queued_for);
            past(Stalled::Flush, p.flushes.flushing_for);
            past(Stalled::FlushWaiting, p.flushes.waiting_for);
        }
        // A store that stopped committing may have stopped reading too (a
        // hang inside sled): then read nothing from it, so that the
        // report and the exit still happen.
        let read_store = stuck.is_empty();
        stuck.extend(self.stuck_attempts(read_store));
        stuck
    }

    /// Attempts held too long. A running one is looked up in the store
    /// (a heartbeat counts as progress) only when `read_store`; otherwise
    /// only those that have not started are reported.
    fn stuck_attempts(&self, read_store: bool) -> Vec<Stall> {
        let limit = self.config.threshold;
        let old: Vec<(LeaseToken, Held)> = lock(&self.attempts.by_token)
            .iter()
            .filter(|(_, h)| h.since.elapsed() >= limit)
            .map(|(t, h)| (*t, h.clone()))
            .collect();
        let mut stuck = Vec::new();
        for (token, held) in old {
            let Held {
                attempt,
                since,
                running,
                seen,
            } = held;
            let stuck_for = since.elapsed();
            if !running {
                stuck.push(Stall {
                    what: Stalled::AttemptWaiting(attempt),
                    stuck_for,
                });
                continue;
            }
            if !read_store {
                continue;
            }
            // A heartbeat since the last look is progress.
            let read = self
                .rt
                .block_on(self.store.activity_task(attempt.run, attempt.cmd));
            let now = match read {
                Ok(Some(rec)) => match rec.state {
                    ActivityState::Running {
                        token: t, deadline, ..
                    } if t == token => Some((deadline, rec.heartbeat_details)),
                    _ => None,
                },
                _ => None,
            };
            if let Some(now) = now.filter(|now| *now != seen) {
                if let Some(h) = lock(&self.attempts.by_token).get_mut(&token) {
                    h.since = Instant::now();
                    h.seen = now;
                }
                continue;
            }
            // Within its own deadline an attempt may take its time; past
            // it (the store voided the attempt, or will at once), it is
            // stuck once it has overstayed by the threshold.
            let deadline = seen.0;
            // The deadline is the store's: read its clock.
            let now = self.store.now();
            let overstayed = now.saturating_since(deadline);
            if now > deadline && overstayed >= limit {
                stuck.push(Stall {
                    what: Stalled::AttemptSilent(attempt),
                    stuck_for: overstayed,
                });
            }
        }
        stuck
    }
}
