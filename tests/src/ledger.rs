//! The side-effect ledger: what activities actually did, as opposed to what
//! the history says they did. Comparing the two is how the tests tell
//! "ran at least once" from "recorded exactly once".

use refrain::ActivityContext;
use refrain_history::Timestamp;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// What an activity attempt was doing when it wrote an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The attempt began.
    Start,
    /// The attempt is about to return (successfully or not).
    End,
    /// The attempt found its lease revoked (a heartbeat was refused).
    Stale,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::End => "end",
            Phase::Stale => "stale",
        }
    }
}

impl FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "start" => Ok(Phase::Start),
            "end" => Ok(Phase::End),
            "stale" => Ok(Phase::Stale),
            other => Err(format!("unknown ledger phase {other:?}")),
        }
    }
}

/// One line of the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Wall-clock milliseconds, the resolution the store schedules with.
    pub at: Timestamp,
    /// What happened.
    pub phase: Phase,
    /// The workflow the attempt belongs to.
    pub workflow_id: String,
    /// The activity type.
    pub activity: String,
    /// The attempt number (1-based).
    pub attempt: u32,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.at.0,
            self.phase.as_str(),
            self.workflow_id,
            self.activity,
            self.attempt
        )
    }
}

impl FromStr for Entry {
    type Err = String;
    fn from_str(line: &str) -> Result<Self, String> {
        let parts: Vec<&str> = line.split(' ').collect();
        let [at, phase, workflow_id, activity, attempt] = parts[..] else {
            return Err(format!("malformed ledger line {line:?}"));
        };
        Ok(Entry {
            at: Timestamp(at.parse().map_err(|e| format!("{line:?}: {e}"))?),
            phase: phase.parse()?,
            workflow_id: workflow_id.to_owned(),
            activity: activity.to_owned(),
            attempt: attempt.parse().map_err(|e| format!("{line:?}: {e}"))?,
        })
    }
}

/// An append-only record of activity attempts, shared by every activity of
/// a worker. In memory for in-process tests; backed by a file (one line
/// per entry, fsync'd before the activity goes on) when a test kills the
/// process that writes it.
#[derive(Clone, Default)]
pub struct Ledger {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: Mutex<Vec<Entry>>,
    file: Option<Mutex<File>>,
}

impl Ledger {
    /// A ledger kept in memory.
    pub fn in_memory() -> Self {
        Ledger::default()
    }

    /// A ledger that also appends to `path`, creating it if needed.
    ///
    /// # Errors
    /// If the file cannot be opened for appending.
    pub fn to_file(path: impl AsRef<Path>) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Ledger {
            inner: Arc::new(Inner {
                entries: Mutex::default(),
                file: Some(Mutex::new(file)),
            }),
        })
    }

    /// Records `phase` of the attempt `ctx` runs and returns the entry.
    ///
    /// # Panics
    /// If a file-backed ledger cannot be written: a lost line would make
    /// the test that reads it wrong rather than failed.
    pub fn record(&self, ctx: &ActivityContext, phase: Phase) -> Entry {
        let entry = Entry {
            at: Timestamp::now(),
            phase,
            workflow_id: ctx.workflow_id().to_string(),
            activity: ctx.task().activity_type.clone(),
            attempt: ctx.attempt(),
        };
        if let Some(file) = &self.inner.file {
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            // One write per line (O_APPEND keeps it whole) and an fsync
            // before the activity goes on, so a SIGKILL right after never
            // loses a line the parent is waiting for.
            file.write_all(format!("{entry}\n").as_bytes())
                .and_then(|()| file.sync_data())
                .expect("writing the ledger file");
        }
        self.inner
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry.clone());
        entry
    }

    /// Every entry recorded through this handle so far, in order.
    pub fn entries(&self) -> Vec<Entry> {
        self.inner
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The entries of one activity type within one workflow, in order.
    pub fn of(&self, workflow_id: &str, activity: &str) -> Vec<Entry> {
        entries_of(&self.entries(), workflow_id, activity)
    }

    /// Reads a ledger file written by (possibly several, possibly killed)
    /// processes. A torn last line cannot occur (one `write` per line), so
    /// every line must parse.
    ///
    /// # Errors
    /// If the file cannot be read or a line does not parse.
    pub fn read_file(path: impl AsRef<Path>) -> io::Result<Vec<Entry>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        text.lines()
            .map(|l| l.parse().map_err(io::Error::other))
            .collect()
    }
}

/// The entries of `activity` within `workflow_id`, in order.
pub fn entries_of(entries: &[Entry], workflow_id: &str, activity: &str) -> Vec<Entry> {
    entries
        .iter()
        .filter(|e| e.workflow_id == workflow_id && e.activity == activity)
        .cloned()
        .collect()
}

/// Attempt numbers of the entries with `phase`, in order.
pub fn attempts(entries: &[Entry], phase: Phase) -> Vec<u32> {
    entries
        .iter()
        .filter(|e| e.phase == phase)
        .map(|e| e.attempt)
        .collect()
}
