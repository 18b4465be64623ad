//! Looking at a store without changing it, and listing what is damaged.
//!
//! sled 0.34.7 cannot open a database read-only: opening recovers its log
//! and may rewrite the log's tail. [`Store::open_read_only`] therefore
//! copies the directory to a scratch directory (removed when the store is
//! dropped) and opens the copy, skipping every write Refrain itself makes
//! at open (epoch bump, recovery of orphaned attempts) and acknowledging
//! nothing. A store that [`Store::open`] refuses as
//! [`StoreError::Damaged`] opens this way, with the reason kept in
//! [`VerifyReport::store`]; the runs that are intact can still be read and
//! exported.
//!
//! [`Store::verify`] checks every run: its record decodes, its history is
//! contiguous, decodes and holds the events and bytes the record counts,
//! its inbox items are present and decode, the runs it names (continued
//! from or to, its parent) exist, and its workflow id maps to a run of that
//! id. Entries of the other trees that belong to a run without a record
//! are reported under that run. A store is only as intact as the watermark
//! can tell: see `integrity`.

use super::tx::decode;
use super::{Inner, Store};
use crate::error::StoreError;
use crate::event::Event;
use crate::ids::{RunId, WorkflowId};
use crate::keys;
use crate::store::records::RunRecord;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What [`Store::verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Runs whose record was read and checked.
    pub runs_checked: usize,
    /// Damage that belongs to no one run: data missing from the store as
    /// a whole (the watermark), trees that cannot be read.
    pub store: Vec<String>,
    /// Every damaged run, in run order, with what is wrong with it.
    pub runs: Vec<RunDamage>,
}

impl VerifyReport {
    /// Whether nothing was found wrong.
    pub fn is_intact(&self) -> bool {
        self.store.is_empty() && self.runs.is_empty()
    }
}

/// One damaged run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunDamage {
    /// The run.
    pub run: RunId,
    /// Its workflow id, when it could be read.
    pub workflow_id: Option<WorkflowId>,
    /// What is wrong.
    pub reason: String,
}

/// A copy of a store directory, deleted on drop.
pub(super) struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Copies the store in `dir` (files and the `blobs` folder), again
    /// while the data file changes under the copy, for up to
    /// `lock_timeout`: a handle dropped a moment ago in this process may
    /// still be flushing on a sled thread (as `open_db` waits for its
    /// lock), while a running application keeps changing it and is refused.
    pub(super) fn copy_of(dir: &Path, lock_timeout: Duration) -> Result<Scratch, StoreError> {
        let give_up = Instant::now() + lock_timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            match Scratch::copy_once(dir)? {
                Some(scratch) => return Ok(scratch),
                None if Instant::now() >= give_up => {
                    return Err(StoreError::StorageLocked {
                        path: dir.to_path_buf(),
                    })
                }
                None => {
                    std::thread::sleep(
                        pause.min(give_up.saturating_duration_since(Instant::now())),
                    );
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
            }
        }
    }

    /// One copy of the store in `dir`, or `None` if the data file changed
    /// while it was copied (the copy may be torn; it is removed).
    fn copy_once(dir: &Path) -> Result<Option<Scratch>, StoreError> {
        let io = |e: std::io::Error| StoreError::Storage(sled::Error::Io(e));
        let before = stamp(dir).map_err(io)?;
        let base = std::env::temp_dir();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut n = 0u32;
        let path = loop {
            let candidate = base.join(format!(
                "refrain-read-only-{}-{nanos}-{n}",
                std::process::id()
            ));
            match std::fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(io(e)),
            }
        };
        let scratch = Scratch { path };
        copy_dir(dir, &scratch.path).map_err(io)?;
        // sled's lock cannot be taken without writing; a store that changed
        // while it was copied has an owner, and the copy may be torn.
        if stamp(dir).map_err(io)? != before {
            return Ok(None);
        }
        Ok(Some(scratch))
    }
}

impl Scratch {
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a store copy");
        }
    }
}

/// Size and modification time of the data file.
fn stamp(dir: &Path) -> std::io::Result<(u64, Option<SystemTime>)> {
    let meta = std::fs::metadata(dir.join("db"))?;
    Ok((meta.len(), meta.modified().ok()))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// How a store opened read-only came to be.
pub(super) struct ReadOnly {
    /// What the open found missing, if anything.
    pub(super) damage_at_open: Option<String>,
    /// Dropped after the database (it is the last field of `Inner`).
    pub(super) _scratch: Scratch,
}

impl Store {
    /// Opens a copy of the store in `path` for reading (see the module
    /// docs): nothing is ever written to `path`, and a store that
    /// [`Store::open`] would refuse as damaged opens, so that its intact
    /// runs can be read. Writes made through the returned handle go to the
    /// copy and are never acknowledged ([`Store::durable`] returns
    /// `Closed`).
    ///
    /// # Errors
    /// `StorageLocked` if the data file kept changing under every copy
    /// for `config.lock_timeout` (the application is running); `Damaged` if sled cannot read the copy at
    /// all; `Storage` if `path` holds no store or cannot be copied.
    pub fn open_read_only(
        path: impl AsRef<Path>,
        config: super::StoreConfig,
    ) -> Result<Store, StoreError> {
        let path = path.as_ref();
        if !path.join("db").is_file() {
            return Err(StoreError::Storage(sled::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no store at {}", path.display()),
            ))));
        }
        let scratch = Scratch::copy_of(path, config.lock_timeout)?;
        Store::open_copy(path, config, scratch)
    }

    /// Whether this handle was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only.is_some()
    }

    /// Checks every run of the store and lists the damaged ones (see the
    /// module docs). Reads only; on a store opened with
    /// [`Store::open_read_only`] it includes what the open found missing.
    ///
    /// # Errors
    /// None for damage, which is reported; `Storage` only if sled fails in
    /// a way that is not about the data read.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.inner.verify()
    }
}

impl Inner {
    fn verify(&self) -> Result<VerifyReport, StoreError> {
        let _whole = self.trees.engine.consistent();
        let mut report = VerifyReport::default();
        if let Some(found) = self
            .read_only
            .as_ref()
            .and_then(|r| r.damage_at_open.clone())
        {
            report.store.push(found);
        }
        let mut damage = Damages::new();

        let mut records: BTreeMap<RunId, RunRecord> = BTreeMap::new();
        let mut highest = 0u64;
        for item in self.trees.runs.iter() {
            let (key, bytes) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    report
                        .store
                        .push(format!("cannot read every run record: {e}"));
                    break;
                }
            };
            let Ok(run) = keys::parse_run_key(&key) else {
                report.store.push(format!("malformed run key {key:?}"));
                continue;
            };
            highest = highest.max(run.0);
            match decode::<RunRecord>(&bytes, "run", Some(run)) {
                Ok(record) => {
                    records.insert(run, record);
                }
                Err(e) => note(&mut damage, run, None, format!("record unreadable: {e}")),
            }
        }
        report.runs_checked = records.len();

        for (&run, record) in &records {
            let id = Some(&record.workflow_id);
            if let Err(e) = self.read_history(run) {
                note(&mut damage, run, id, reason(e));
            }
            for n in record.inbox_head..record.inbox_tail {
                match self.trees.inbox.get(keys::run_seq_key(run, n)) {
                    Ok(Some(bytes)) => {
                        if let Err(e) = decode::<Event>(&bytes, "inbox", Some(run)) {
                            note(&mut damage, run, id, reason(e));
                        }
                    }
                    Ok(None) => note(&mut damage, run, id, format!("inbox item {n} is missing")),
                    Err(e) => note(
                        &mut damage,
                        run,
                        id,
                        format!("inbox item {n} unreadable: {e}"),
                    ),
                }
            }
            let named = [
                ("continued from", record.continued_from),
                ("continued to", record.continued_to),
                ("started by parent", record.parent.as_ref().map(|p| p.run)),
            ];
            for (how, other) in named {
                if let Some(other) = other.filter(|o| !records.contains_key(o)) {
                    note(
                        &mut damage,
                        run,
                        id,
                        format!("{how} {other}, which is missing"),
                    );
                }
            }
        }

        for item in self.trees.workflow_ids.iter() {
            let (key, value) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    report
                        .store
                        .push(format!("cannot read every workflow id: {e}"));
                    break;
                }
            };
            let id = WorkflowId::new(String::from_utf8_lossy(&key).into_owned());
            let run = match super::tx::decode_u64(&value, "workflow id", None) {
                Ok(run) => RunId(run),
                Err(e) => {
                    report
                        .store
                        .push(format!("workflow id {id}: unreadable run number: {e}"));
                    continue;
                }
            };
            match records.get(&run) {
                Some(record) if record.workflow_id != id => note(
                    &mut damage,
                    run,
                    Some(&id),
                    format!(
                        "workflow id {id} maps to it, but it is a run of {}",
                        record.workflow_id
                    ),
                ),
                Some(_) => {}
                None if damage.contains_key(&run) => {}
                None => note(
                    &mut damage,
                    run,
                    Some(&id),
                    format!("workflow id {id} maps to it, but its record is missing"),
                ),
            }
        }

        // Entries of runs that have no record.
        let by_run: [(&str, &super::engine::Table, RunOfKey); 9] = [
            ("history", &self.trees.history, run_prefix),
            ("inbox", &self.trees.inbox, run_prefix),
            ("ready", &self.trees.ready, run_prefix),
            ("activity task", &self.trees.activity_tasks, run_prefix),
            ("open human task", &self.trees.run_human_tasks, run_prefix),
            ("update", &self.trees.updates, run_prefix),
            ("timer", &self.trees.timers, time_key_run),
            ("activity queue", &self.trees.activity_ready, time_key_run),
            (
                "activity deadline",
                &self.trees.activity_deadlines,
                time_key_run,
            ),
        ];
        for (what, tree, run_of) in by_run {
            let mut orphans = BTreeSet::new();
            for key in tree.iter().keys() {
                match key {
                    Ok(key) => match run_of(&key) {
                        Some(run) if !records.contains_key(&run) => {
                            orphans.insert(run);
                        }
                        Some(_) => {}
                        None => report.store.push(format!("malformed {what} key {key:?}")),
                    },
                    Err(e) => {
                        report
                            .store
                            .push(format!("cannot read every {what} entry: {e}"));
                        break;
                    }
                }
            }
            for run in orphans {
                highest = highest.max(run.0);
                if !damage.contains_key(&run) {
                    note(
                        &mut damage,
                        run,
                        None,
                        format!("{what} entries but no run record"),
                    );
                }
            }
        }

        match self.trees.meta.get(super::tx::META_NEXT_RUN) {
            Ok(Some(bytes)) => match super::tx::decode_u64(&bytes, "meta", None) {
                Ok(next) if next <= highest => report.store.push(format!(
                    "the next run number is {next}, but run-{highest} exists: the counter went back"
                )),
                Ok(_) => {}
                Err(e) => report
                    .store
                    .push(format!("next run number unreadable: {e}")),
            },
            Ok(None) if highest > 0 => report
                .store
                .push("the next run number is missing, but runs exist".to_owned()),
            Ok(None) => {}
            Err(e) => report
                .store
                .push(format!("next run number unreadable: {e}")),
        }

        report.runs = damage
            .into_iter()
            .map(|(run, (workflow_id, reasons))| RunDamage {
                run,
                workflow_id,
                reason: reasons.join("; "),
            })
            .collect();
        Ok(report)
    }
}

/// Damaged runs found so far: the workflow id and every reason.
type Damages = BTreeMap<RunId, (Option<WorkflowId>, Vec<String>)>;

fn note(damage: &mut Damages, run: RunId, id: Option<&WorkflowId>, why: String) {
    let entry = damage.entry(run).or_default();
    if entry.0.is_none() {
        entry.0 = id.cloned();
    }
    entry.1.push(why);
}

/// The reason in a per-run error, without the run (the report names it).
fn reason(e: StoreError) -> String {
    match e {
        StoreError::RunDamaged { reason, .. } => reason,
        StoreError::Corrupt { what, source, .. } => format!("{what} unreadable: {source}"),
        e => e.to_string(),
    }
}

/// The run an index key belongs to, if the key is well formed.
type RunOfKey = fn(&[u8]) -> Option<RunId>;

fn run_prefix(key: &[u8]) -> Option<RunId> {
    key.get(..8).and_then(|k| keys::parse_run_key(k).ok())
}

fn time_key_run(key: &[u8]) -> Option<RunId> {
    keys::parse_time_key(key).ok().map(|(_, run, _)| run)
}
