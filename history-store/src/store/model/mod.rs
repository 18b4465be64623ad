//! The seeded model test: random sequences of operations through the
//! public `Store` API, applied with the same explicit clock to a sled store
//! and to an in-memory store side by side. After every operation the two
//! must have answered alike (lease tokens aside: they differ between
//! engines and are left out of answers) and hold the same tables (tokens
//! compared by order of first appearance, see [`observe`]), and each must
//! satisfy the store's invariants.
//!
//! `REFRAIN_MODEL_OPS` sets how many operations a run makes in all
//! (default 10,000, in seeds of [`STEPS`]); `REFRAIN_MODEL_SEED` runs that
//! one seed alone. A failure names the seed and step that reproduce it.
//!
//! An engine kept outside this crate runs the same sequences in place of
//! sled with [`external_and_memory_stores_agree`] (feature
//! `test-support`).

mod observe;

use observe::{answer, claims_answer, task_answer};

use super::api::{ActivationCommit, DurabilityMode, IdConflictPolicy, StartRequest, StoreConfig};
use super::engine::external::ExternalEngine;
use super::engine::Engine;
use super::records::RunRecord;
use super::{MemoryStorage, Store};
use crate::event::{Callsite, Event, Failure, ParentClosePolicy, Payload};
use crate::ids::{CommandSeq, LeaseToken, RunId, Timestamp, WorkflowId};
use crate::keys;
use crate::options::{ActivityOptions, RetryPolicy};
use crate::store::api::Activation;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Operations per seed.
const STEPS: u64 = 400;
/// Operations per `cargo test` unless `REFRAIN_MODEL_OPS` says otherwise.
#[cfg(test)]
const DEFAULT_OPS: u64 = 10_000;
/// Workflow ids in play: few, so that starts and children collide.
const IDS: u64 = 5;
const ASSIGNEES: [&str; 2] = ["ann", "bob"];
const T0: u64 = 1_700_000_000_000;

/// splitmix64: small, seedable, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn index(&mut self, len: usize) -> Option<usize> {
        (len > 0).then(|| self.below(len as u64) as usize)
    }
}

fn config() -> StoreConfig {
    StoreConfig {
        durability: DurabilityMode::None,
        cache_capacity_bytes: 1 << 20,
        lock_timeout: Duration::from_secs(10),
        // Low enough that long runs meet it.
        max_history_events: 60,
        ..StoreConfig::default()
    }
}

fn payload(s: &str) -> Payload {
    Payload::from_bytes(s.as_bytes().to_vec())
}

fn site() -> Callsite {
    Callsite {
        file: "model.rs".into(),
        line: 1,
        column: 1,
    }
}

fn workflow_id(i: u64) -> WorkflowId {
    WorkflowId::new(format!("wf-{i}"))
}

/// Which of a pair `store` is: 0 for sled (or an external engine), 1
/// for memory.
fn side(store: &Store) -> usize {
    usize::from(matches!(store.inner.trees.engine, Engine::Memory(_)))
}

/// An activity attempt claimed on both stores, each under its own token.
/// Kept after it is answered or expires, so that late answers are tried.
#[derive(Clone, Copy)]
struct Claim {
    run: RunId,
    cmd: CommandSeq,
    tokens: [LeaseToken; 2],
}

/// Opens an engine over one seed's external storage, the same storage at
/// every call (each open after the first is a restart).
pub type ExternalOpener = Box<dyn Fn() -> Arc<dyn ExternalEngine>>;

/// What the first store of a pair is opened over.
enum First {
    #[cfg_attr(not(test), allow(dead_code))]
    Sled(tempfile::TempDir),
    External(ExternalOpener),
}

/// The two stores, sled (or the external engine) first.
struct Pair {
    first: First,
    storage: MemoryStorage,
    stores: Vec<Store>,
}

impl Pair {
    fn new(first: First, now: Timestamp) -> Pair {
        let mut pair = Pair {
            first,
            storage: MemoryStorage::new(),
            stores: Vec::new(),
        };
        pair.open(now);
        pair
    }

    fn open(&mut self, now: Timestamp) {
        let first = match &self.first {
            First::Sled(dir) => Store::open_at(dir.path(), config(), now).expect("open sled"),
            First::External(open) => {
                Store::open_external_at(open(), config(), now).expect("open the external engine")
            }
        };
        self.stores = vec![
            first,
            Store::open_in_memory_at(&self.storage, config(), now).expect("open memory"),
        ];
    }

    /// Drops every in-process piece of both stores and opens them again.
    fn restart(&mut self, now: Timestamp) {
        self.stores.clear();
        self.open(now);
    }
}

/// One seed's run: the world the operations are drawn from.
struct Model {
    rng: Rng,
    pair: Pair,
    /// Milliseconds after `T0`.
    clock: u64,
    next_cmd: HashMap<RunId, u32>,
    held: Vec<[Activation; 2]>,
    claims: Vec<Claim>,
}

impl Model {
    fn now(&self) -> Timestamp {
        Timestamp(T0 + self.clock)
    }

    fn stores(&self) -> &[Store] {
        &self.pair.stores
    }

    /// Applies `op` to both stores and checks that they answered alike.
    fn both<T>(
        &self,
        what: &str,
        op: impl Fn(&Store) -> T,
        show: impl Fn(&T) -> String,
    ) -> Result<[T; 2], String> {
        let a = op(&self.stores()[0]);
        let b = op(&self.stores()[1]);
        let (sa, sb) = (show(&a), show(&b));
        if sa != sb {
            return Err(format!(
                "{what}: sled answered\n  {sa}\nmemory answered\n  {sb}"
            ));
        }
        Ok([a, b])
    }

    /// [`Model::both`] when only the agreement matters.
    fn agree<T>(
        &self,
        what: &str,
        op: impl Fn(&Store) -> T,
        show: impl Fn(&T) -> String,
    ) -> Result<(), String> {
        self.both(what, op, show).map(drop)
    }

    /// A new command number of `run`; now and then one it may have used
    /// already, which the store must refuse without writing anything.
    fn cmd(&mut self, run: RunId) -> CommandSeq {
        let next = *self.next_cmd.entry(run).or_insert(1);
        if next > 1 && self.rng.chance(4) {
            return CommandSeq(1 + self.rng.below(u64::from(next - 1)) as u32);
        }
        self.next_cmd.insert(run, next + 1);
        CommandSeq(next)
    }

    /// Runs known to the sled store, and those of them whose record is
    /// ready (the stores are compared after every step, so either would
    /// do).
    fn runs(&self) -> (Vec<(RunId, RunRecord)>, Vec<RunId>) {
        let mut runs = Vec::new();
        for item in self.stores()[0].inner.trees.runs.iter() {
            let (k, v) = item.expect("read");
            let run = keys::parse_run_key(&k).expect("run key");
            let record: RunRecord = super::tx::decode(&v, "run", Some(run)).expect("record");
            runs.push((run, record));
        }
        let ready = runs
            .iter()
            .filter(|(_, r)| r.is_ready())
            .map(|(run, _)| *run)
            .collect();
        (runs, ready)
    }

    /// A run to claim: mostly a ready one, sometimes any number at all.
    fn pick_run(&mut self) -> RunId {
        let (runs, ready) = self.runs();
        match self.rng.index(ready.len()) {
            Some(i) if self.rng.chance(90) => ready[i],
            _ => RunId(1 + self.rng.below(runs.len() as u64 + 1)),
        }
    }

    fn options(&mut self) -> ActivityOptions {
        let r = &mut self.rng;
        ActivityOptions {
            start_to_close: r
                .chance(80)
                .then(|| Duration::from_millis(500 + r.below(20_000))),
            schedule_to_close: r
                .chance(20)
                .then(|| Duration::from_millis(1_000 + r.below(30_000))),
            heartbeat_timeout: r
                .chance(20)
                .then(|| Duration::from_millis(300 + r.below(5_000))),
            retry: RetryPolicy::exponential()
                .initial_interval(Duration::from_millis(100 + r.below(2_000)))
                .max_attempts(1 + r.below(4) as u32),
        }
    }

    /// Commands for an activation of `run` (whose record at the claim is
    /// `record`), a terminal one last now and then.
    fn commands(&mut self, run: RunId, record: &RunRecord) -> Vec<Event> {
        let mut events = Vec::new();
        for _ in 0..self.rng.below(4) {
            let event = match self.rng.below(8) {
                0..=2 => Event::ActivityScheduled {
                    cmd: self.cmd(run),
                    activity_type: "charge".into(),
                    input: payload("in"),
                    options: self.options(),
                    callsite: site(),
                },
                3 => Event::TimerStarted {
                    cmd: self.cmd(run),
                    fire_at: Timestamp(self.now().0 + self.rng.below(6_000)),
                    callsite: site(),
                },
                4 => match self.rng.index(record.pending_timers.len()) {
                    Some(i) => Event::TimerCancelled {
                        cmd: record.pending_timers[i].cmd,
                    },
                    None => continue,
                },
                5 => Event::ChildWorkflowStarted {
                    cmd: self.cmd(run),
                    workflow_type: "child".into(),
                    workflow_id: workflow_id(self.rng.below(IDS)),
                    input: payload("child"),
                    seed: self.rng.below(1_000),
                    parent_close: [
                        ParentClosePolicy::Terminate,
                        ParentClosePolicy::RequestCancel,
                        ParentClosePolicy::Abandon,
                    ][self.rng.below(3) as usize],
                    callsite: site(),
                },
                6 => Event::HumanTaskAssigned {
                    cmd: self.cmd(run),
                    task: "approve".into(),
                    assignee: ASSIGNEES[self.rng.below(2) as usize].into(),
                    form: None,
                    deadline: None,
                    level: 0,
                    callsite: site(),
                    escalations: Vec::new(),
                },
                _ => match self.rng.index(record.pending_activities.len()) {
                    Some(i) => Event::ActivityCancelRequested {
                        cmd: record.pending_activities[i],
                    },
                    None => continue,
                },
            };
            events.push(event);
        }
        if self.rng.chance(15) {
            events.push(match self.rng.below(4) {
                0 => Event::WorkflowCompleted {
                    result: payload("done"),
                },
                1 => Event::WorkflowFailed {
                    failure: Failure::application("model", "gave up"),
                },
                2 => Event::WorkflowContinuedAsNew {
                    input: payload("again"),
                    seed: 1,
                    carried_signals: Vec::new(),
                },
                _ => Event::WorkflowCancelled {
                    reason: "asked to".into(),
                },
            });
        }
        events
    }

    /// Commits an activation of the claimed `tasks` (one per store).
    fn commit(&mut self, tasks: &[Activation; 2]) -> Result<(), String> {
        let time = self.now();
        let commands = self.commands(tasks[0].run, &tasks[0].record);
        let commit = |task: &Activation| {
            let mut events = vec![Event::ActivationStarted { time }];
            events.extend(task.inbox.iter().cloned());
            events.extend(commands.iter().cloned());
            ActivationCommit {
                run: task.run,
                token: task.token,
                expected_last_seq: task.record.last_seq,
                inbox_upto: task.inbox_upto,
                events,
                rejected_updates: Vec::new(),
                awaited_signals: Vec::new(),
            }
        };
        let [a, b] = [commit(&tasks[0]), commit(&tasks[1])];
        let ra = self.stores()[0].commit_activation(a);
        let rb = self.stores()[1].commit_activation(b);
        if answer(&ra) != answer(&rb) {
            return Err(format!(
                "commit of {:?} ({commands:?}): sled {ra:?}, memory {rb:?}",
                tasks[0].run
            ));
        }
        Ok(())
    }

    fn claim_task(&mut self) -> Result<Option<[Activation; 2]>, String> {
        let run = self.pick_run();
        let [a, b] = self.both(
            &format!("claim_activation({run:?})"),
            |s| s.claim_activation(run),
            task_answer,
        )?;
        Ok(match (a, b) {
            (Ok(Some(a)), Ok(Some(b))) => Some([a, b]),
            _ => None,
        })
    }

    /// One random operation on both stores; returns what it was.
    fn step(&mut self) -> Result<String, String> {
        let now = self.now();
        let roll = self.rng.below(1_000);
        let op = match roll {
            0..=79 => {
                let id = workflow_id(self.rng.below(IDS));
                let on_conflict = [
                    IdConflictPolicy::Reject,
                    IdConflictPolicy::AttachToOpen,
                    IdConflictPolicy::UseExisting,
                ][self.rng.below(3) as usize];
                let req = StartRequest {
                    workflow_id: id.clone(),
                    workflow_type: "order".into(),
                    input: payload("{}"),
                    on_conflict,
                    seed: 7,
                    now,
                };
                self.agree("start", |s| s.start_workflow(req.clone()), answer)?;
                format!("start {id} {on_conflict:?}")
            }
            80..=299 => {
                if let Some(tasks) = self.claim_task()? {
                    self.commit(&tasks)?;
                }
                "activate".into()
            }
            300..=339 => {
                if let Some(tasks) = self.claim_task()? {
                    self.held.push(tasks);
                }
                "claim and hold".into()
            }
            340..=379 => match self.rng.index(self.held.len()) {
                Some(i) => {
                    let tasks = self.held.swap_remove(i);
                    if self.rng.chance(75) {
                        self.commit(&tasks)?;
                        format!("commit held {:?}", tasks[0].run)
                    } else {
                        let run = tasks[0].run;
                        let release = |s: &Store| {
                            let token = tasks[side(s)].token;
                            s.release_activation(run, token, Some("panicked".into()))
                        };
                        self.agree("release", release, answer)?;
                        format!("release held {run:?}")
                    }
                }
                None => "nothing held".into(),
            },
            380..=439 => {
                let id = workflow_id(self.rng.below(IDS));
                self.agree("signal", |s| s.signal(&id, "poke", payload("p")), answer)?;
                format!("signal {id}")
            }
            440..=469 => {
                let id = workflow_id(self.rng.below(IDS));
                self.agree(
                    "request_cancel",
                    |s| s.request_cancel(&id, "stop", Some("ops")),
                    answer,
                )?;
                format!("request cancel {id}")
            }
            470..=489 => {
                let id = workflow_id(self.rng.below(IDS));
                self.agree("terminate", |s| s.terminate(&id, "kill", now), answer)?;
                format!("terminate {id}")
            }
            490..=589 => {
                let max = 1 + self.rng.below(3) as usize;
                let [a, b] = self.both(
                    "claim_activity_tasks",
                    |s| s.claim_activity_tasks(now, max),
                    claims_answer,
                )?;
                if let (Ok(a), Ok(b)) = (a, b) {
                    for (a, b) in a.iter().zip(&b) {
                        self.claims.push(Claim {
                            run: a.run,
                            cmd: a.cmd,
                            tokens: [a.token, b.token],
                        });
                    }
                }
                format!("claim activities max {max}")
            }
            590..=699 => match self.rng.index(self.claims.len()) {
                Some(i) => {
                    let outcome = match self.rng.below(3) {
                        0 | 1 => Ok(payload("ok")),
                        _ => Err(Failure::application("io", "reset")),
                    };
                    let claim = if self.rng.chance(70) {
                        self.claims.swap_remove(i)
                    } else {
                        self.claims[i]
                    };
                    let (run, cmd) = (claim.run, claim.cmd);
                    let complete = |s: &Store| {
                        let token = claim.tokens[side(s)];
                        s.complete_activity(run, cmd, token, outcome.clone(), now)
                    };
                    self.agree("complete_activity", complete, answer)?;
                    format!("complete {run:?} {cmd:?} ok={}", outcome.is_ok())
                }
                None => "no claim to complete".into(),
            },
            700..=739 => match self.rng.index(self.claims.len()) {
                Some(i) => {
                    let c = &self.claims[i];
                    let (run, cmd, tokens) = (c.run, c.cmd, c.tokens);
                    let details = self.rng.chance(50).then(|| payload("progress"));
                    let beat = |s: &Store| {
                        let token = tokens[side(s)];
                        s.heartbeat_activity(run, cmd, token, details.clone(), now)
                    };
                    self.agree("heartbeat_activity", beat, answer)?;
                    format!("heartbeat {run:?} {cmd:?}")
                }
                None => "no claim to heartbeat".into(),
            },
            740..=869 => {
                self.clock += self.rng.below(4_000);
                let now = self.now();
                self.agree("fire_due", |s| s.fire_due(now), answer)?;
                self.agree("next_deadline", Store::next_deadline, answer)?;
                self.agree(
                    "next_activity_visible",
                    Store::next_activity_visible,
                    answer,
                )?;
                format!("fire due at +{}", self.clock)
            }
            870..=919 => {
                let assignee = ASSIGNEES[self.rng.below(2) as usize];
                let [open, _] =
                    self.both("list_human_tasks", |s| s.list_human_tasks(assignee), answer)?;
                let open = open.unwrap_or_default();
                let (run, cmd) = match self.rng.index(open.len()) {
                    Some(i) if self.rng.chance(90) => (open[i].run, open[i].cmd),
                    _ => (
                        RunId(1 + self.rng.below(8)),
                        CommandSeq(self.rng.below(6) as u32),
                    ),
                };
                self.agree(
                    "decide_human_task",
                    |s| s.decide_human_task(run, cmd, payload("yes"), assignee, None, now),
                    answer,
                )?;
                format!("decide {run:?} {cmd:?}")
            }
            920..=989 => {
                let max = 1 + self.rng.below(8) as usize;
                self.agree("take_ready", |s| s.take_ready(max), |r| format!("{r:?}"))?;
                format!("take ready {max}")
            }
            _ => {
                self.pair.restart(now);
                "restart".into()
            }
        };
        Ok(op)
    }

    /// Compares the two stores' tables and checks each one's invariants.
    fn check(&self) -> Result<(), String> {
        let first = match self.pair.first {
            First::Sled(_) => "sled",
            First::External(_) => "external",
        };
        for (store, name) in self.stores().iter().zip([first, "memory"]) {
            observe::invariants(store).map_err(|e| format!("{name} store: {e}"))?;
        }
        let a = observe::snapshot(&self.stores()[0]);
        let b = observe::snapshot(&self.stores()[1]);
        if a != b {
            let at = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            return Err(format!(
                "the stores differ at line {at}:\n  sled:   {}\n  memory: {}",
                a.get(at).map_or("(end)", String::as_str),
                b.get(at).map_or("(end)", String::as_str),
            ));
        }
        Ok(())
    }
}

/// Runs `steps` operations from `seed`; on a failure, the step it
/// happened at and why.
fn run_seed(first: First, seed: u64, steps: u64) -> Result<(), (u64, String)> {
    let mut model = Model {
        rng: Rng(seed),
        pair: Pair::new(first, Timestamp(T0)),
        clock: 0,
        next_cmd: HashMap::new(),
        held: Vec::new(),
        claims: Vec::new(),
    };
    for step in 0..steps {
        let op = model.step().map_err(|e| (step, e))?;
        model
            .check()
            .map_err(|e| (step, format!("after {op}: {e}")))?;
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

/// Runs the seeded sequences (`REFRAIN_MODEL_OPS` operations in all,
/// `default_ops` unless it is set; `REFRAIN_MODEL_SEED` for one seed) on
/// pairs whose first store `first` opens for each seed.
fn run_model(default_ops: u64, first: &dyn Fn() -> First) {
    let ops = env_u64("REFRAIN_MODEL_OPS").unwrap_or(default_ops);
    // One seed runs as many operations as asked; otherwise seeds of STEPS.
    let (seeds, steps): (Vec<u64>, u64) = match env_u64("REFRAIN_MODEL_SEED") {
        Some(seed) => (vec![seed], env_u64("REFRAIN_MODEL_OPS").unwrap_or(STEPS)),
        None => ((0..ops.div_ceil(STEPS)).collect(), STEPS),
    };
    for seed in seeds {
        if let Err((step, why)) = run_seed(first(), seed, steps) {
            panic!(
                "seed {seed}, step {step}: {why}\n\
                 (reproduce with REFRAIN_MODEL_SEED={seed} REFRAIN_MODEL_OPS={})",
                step + 1
            );
        }
    }
}

/// The seeded model test with a store over an external engine in place of
/// sled, against the in-memory store: `fresh` makes a new, empty storage
/// for each seed and returns how to open an engine over it (again at each
/// restart). `default_ops` operations in all unless `REFRAIN_MODEL_OPS`
/// says otherwise; `REFRAIN_MODEL_SEED` runs one seed.
///
/// # Panics
/// On the first disagreement or broken invariant, naming the seed and
/// step that reproduce it.
pub fn external_and_memory_stores_agree(default_ops: u64, fresh: &dyn Fn() -> ExternalOpener) {
    run_model(default_ops, &|| First::External(fresh()));
}

#[cfg(test)]
#[test]
fn sled_and_memory_stores_agree_on_random_operations() {
    run_model(DEFAULT_OPS, &|| {
        First::Sled(tempfile::tempdir().expect("temp dir"))
    });
}
