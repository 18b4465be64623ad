//! A damaged data file never loses data silently. A store with runs in
//! every state is closed, then copies of it are damaged (sled's data file
//! truncated, single bytes flipped, 4 KiB pages overwritten) and each copy
//! must be refused at open by name, or open with `verify` naming what is
//! damaged, or read exactly as before.
//!
//! `REFRAIN_DAMAGE_RUNS` sets how many extra completed runs the store
//! holds (default 40), `REFRAIN_DAMAGE_FLIPS` how many byte flips to try
//! (default 120),
//! `REFRAIN_DAMAGE_SEED` their seed (printed on failure), and
//! `REFRAIN_DAMAGE_VERBOSE` prints what each damaged copy did.

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, DurabilityMode, Event, RetryPolicy,
    RunId, Signal, Store, StoreConfig, StoreError, Workflow, WorkflowContext, WorkflowError,
};
use refrain_history::RunRecord;
use refrain_tests::activities::{Charge, Gate, Reserve};
use refrain_tests::env::{edit_history, eventually, result_of, store_path, task_failure, TestEnv};
use refrain_tests::history::kinds;
use refrain_tests::ledger::{attempts, Ledger, Phase};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct Go;

impl Signal for Go {
    const NAME: &'static str = "go";
}

/// Always fails, retryably: its retry waits an hour.
struct Flaky;

#[async_trait]
impl Activity for Flaky {
    const NAME: &'static str = "flaky";
    type Input = String;
    type Output = String;

    async fn run(&self, _: ActivityContext, _: String) -> Result<String, ActivityError> {
        Err(ActivityError::retryable("not yet"))
    }
}

/// One workflow type that ends in the state its input names.
struct Shaped;

impl Workflow for Shaped {
    const NAME: &'static str = "shaped";
    type Input = (String, u32);
    type Output = String;

    async fn run(ctx: WorkflowContext, (shape, n): (String, u32)) -> Result<String, WorkflowError> {
        let reserved = ctx.activity::<Reserve>(format!("{shape}-{n}")).await?;
        match shape.as_str() {
            "complete" => Ok(reserved),
            "fail" => Err(WorkflowError::new("refused", "the order was refused")),
            "timer" => {
                ctx.sleep(Duration::from_secs(3600)).await;
                Ok(reserved)
            }
            "continue" if n < 2 => match ctx.continue_as_new::<Shaped>((shape, n + 1)).await {},
            "running" => ctx.activity::<Charge>(reserved).await.map_err(Into::into),
            "retrying" => ctx
                .activity::<Flaky>(reserved)
                .retry(RetryPolicy::exponential().initial_interval(Duration::from_secs(3600)))
                .await
                .map_err(Into::into),
            // "signal", "cancel", "terminate", the end of "continue".
            _ => {
                ctx.wait_signal::<Go>().await?;
                Ok(reserved)
            }
        }
    }
}

/// Everything a client can read of one run.
#[derive(Debug, PartialEq)]
struct RunDump {
    record: RunRecord,
    history: Vec<Event>,
}

type Dump = BTreeMap<RunId, RunDump>;

/// Builds the store: runs completed, failed, cancelled, terminated,
/// continued as new, and open on a timer, a signal, a running and a
/// retrying activity. Returns its directory.
async fn build_store() -> tempfile::TempDir {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let gate = Gate::new();
    let worker = Worker::builder(env.store.clone())
        .workflow::<Shaped>()
        .activity(Reserve::new(&ledger))
        .activity(Charge::new(&ledger).gated(&gate))
        .activity(Flaky)
        .start();
    let start = |id: String, shape: &str| {
        let client = env.client.clone();
        let input = (shape.to_owned(), 0);
        async move { client.start::<Shaped>(id, input).await.unwrap() }
    };
    // Enough closed runs that the data file spans many pages.
    let closed: usize = std::env::var("REFRAIN_DAMAGE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    for i in 0..closed {
        let h = start(format!("done-{i}"), "complete").await;
        result_of(&h).await.unwrap();
    }
    let failed = start("failed".into(), "fail").await;
    assert!(result_of(&failed).await.is_err());
    let cont = start("continued".into(), "continue").await;
    for shape in [
        "cancel",
        "terminate",
        "signal",
        "timer",
        "running",
        "retrying",
    ] {
        start(shape.to_owned(), shape).await;
    }
    for id in ["cancel", "terminate", "signal", "timer", "continued"] {
        eventually(&format!("{id} to have its reservation"), async || {
            let h = env.client.history(id).await.ok()?;
            kinds(&h)
                .contains(&"ActivityCompleted(reserve)".to_owned())
                .then_some(())
        })
        .await;
    }
    env.client
        .cancel("cancel", "no longer wanted", None)
        .await
        .unwrap();
    env.client
        .terminate("terminate", "operator", None)
        .await
        .unwrap();
    for id in ["cancel", "terminate"] {
        let h = env.client.handle::<Shaped>(id).await.unwrap();
        assert!(result_of(&h).await.is_err(), "{id} must have closed");
    }
    eventually("the charge to be running", async || {
        (!attempts(&ledger.of("running", "charge"), Phase::Start).is_empty()).then_some(())
    })
    .await;
    eventually("the flaky activity to wait for its retry", async || {
        let run = env.client.describe("retrying").await.ok()?.run;
        let cmd = refrain_history::CommandSeq(2);
        let task = env.store.activity_task(run, cmd).ok()??;
        (task.attempt >= 2).then_some(())
    })
    .await;
    assert_ne!(
        env.client.describe("continued").await.unwrap().run,
        cont.run_id(),
        "the continued run must have moved on"
    );
    worker.shutdown(Duration::from_secs(1)).await;
    drop(cont);
    env.close()
}

/// Every run of `store` up to `runs` (record and history), or the first
/// error reading one.
fn dump(store: &Store, runs: u64) -> Result<Dump, StoreError> {
    let mut out = Dump::new();
    for run in (1..=runs).map(RunId) {
        let Some(record) = store.run_record(run)? else {
            continue;
        };
        let history = store.read_history(run)?;
        out.insert(run, RunDump { record, history });
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct Counts {
    refused: usize,
    reported: usize,
    intact: usize,
}

fn config() -> StoreConfig {
    StoreConfig {
        durability: DurabilityMode::Flush,
        ..StoreConfig::default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What a damaged copy did.
enum Outcome {
    /// `Store::open` refused it, naming why.
    Refused(String),
    /// It opened, and `verify` or a read named the damaged runs.
    Reported(String),
    /// Every run reads exactly as before.
    Intact,
}

/// Opens a damaged copy both ways and says which class it falls in, or
/// panics (naming `what`) if it lost data silently.
fn classify(copy: &Path, reference: &Dump, runs: u64, what: &str) -> Outcome {
    let read_only = match Store::open_read_only(copy, config()) {
        Ok(store) => store,
        Err(e @ StoreError::Damaged { .. }) => {
            // The writable open must refuse too, and write nothing.
            assert!(
                Store::open(copy, config()).is_err(),
                "{what}: open after {e}"
            );
            return Outcome::Refused(e.to_string());
        }
        Err(e) => panic!("{what}: read-only open failed with an unexpected error: {e}"),
    };
    let report = read_only.verify().unwrap();
    let seen = dump(&read_only, runs);
    drop(read_only);
    let opened = Store::open(copy, config());
    if let Err(e) = &opened {
        assert!(
            !report.is_intact() || seen.as_ref().is_err(),
            "{what}: open refused ({e}) a store verify finds intact"
        );
        return Outcome::Refused(e.to_string());
    }
    if !report.is_intact() {
        return Outcome::Reported(format!("{report:?}"));
    }
    match seen {
        Ok(seen) if &seen == reference => Outcome::Intact,
        Ok(seen) => {
            let differ: Vec<_> = reference
                .iter()
                .filter(|(run, d)| seen.get(run) != Some(d))
                .map(|(run, _)| *run)
                .collect();
            panic!(
                "{what}: opened, verify found nothing, and runs {differ:?} read differently \
                 ({} runs read, {} expected): data lost silently",
                seen.len(),
                reference.len()
            )
        }
        // Reads refuse the damaged run by name: reported, not silent.
        Err(e) => Outcome::Reported(format!("read: {e}")),
    }
}

/// A small deterministic generator (xorshift64*), so a failure names its
/// seed and position.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

enum Damage {
    Truncate(u64),
    Flip(u64, u8),
    Garbage(u64, u64),
}

impl Damage {
    fn apply(&self, file: &Path) {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        match *self {
            Damage::Truncate(len) => f.set_len(len).unwrap(),
            Damage::Flip(at, mask) => {
                let mut bytes = std::fs::read(file).unwrap();
                bytes[at as usize] ^= mask;
                f.seek(SeekFrom::Start(at)).unwrap();
                f.write_all(&bytes[at as usize..=at as usize]).unwrap();
            }
            Damage::Garbage(at, seed) => {
                let mut rng = Rng(seed | 1);
                let page: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
                f.seek(SeekFrom::Start(at)).unwrap();
                f.write_all(&page).unwrap();
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Damage::Truncate(len) => format!("truncated to {len} bytes"),
            Damage::Flip(at, mask) => format!("byte {at} xor {mask:#04x}"),
            Damage::Garbage(at, seed) => format!("4 KiB garbage (seed {seed}) at {at}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_data_file_is_refused_or_reported_never_read_short() {
    let dir = build_store().await;
    let original = store_path(dir.path());
    let reference_store = Store::open_read_only(&original, config()).unwrap();
    let report = reference_store.verify().unwrap();
    assert!(report.is_intact(), "the undamaged store: {report:?}");
    let runs = 1000;
    let reference = dump(&reference_store, runs).unwrap();
    drop(reference_store);
    assert!(reference.len() >= 22, "{} runs", reference.len());

    let len = std::fs::metadata(original.join("db")).unwrap().len();
    let flips: usize = std::env::var("REFRAIN_DAMAGE_FLIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let seed: u64 = std::env::var("REFRAIN_DAMAGE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_da4a);
    let mut rng = Rng(seed);
    let mut damages: Vec<Damage> = [1, 2, 17, 512, 4096, len / 4, len / 2, len * 3 / 4]
        .into_iter()
        .filter(|&cut| cut < len)
        .map(|cut| Damage::Truncate(len - cut))
        .collect();
    damages.extend(
        [0, len / 4, len / 2, len * 3 / 4, len.saturating_sub(4096)]
            .into_iter()
            .map(|at| Damage::Garbage(at, rng.next())),
    );
    damages.extend((0..flips).map(|_| {
        let at = rng.next() % len;
        Damage::Flip(at, (rng.next() % 255 + 1) as u8)
    }));

    let scratch = tempfile::tempdir().unwrap();
    let mut counts: BTreeMap<&str, Counts> = BTreeMap::new();
    for (i, damage) in damages.iter().enumerate() {
        let copy = scratch.path().join(format!("copy-{i}"));
        copy_dir(&original, &copy);
        damage.apply(&copy.join("db"));
        let what = format!(
            "{} (seed {seed:#x}, data file of {len} bytes)",
            damage.name()
        );
        let kind = match damage {
            Damage::Truncate(_) => "truncation",
            Damage::Flip(..) => "byte flip",
            Damage::Garbage(..) => "garbage page",
        };
        let c = counts.entry(kind).or_default();
        match classify(&copy, &reference, runs, &what) {
            Outcome::Refused(why) => {
                if std::env::var_os("REFRAIN_DAMAGE_VERBOSE").is_some() {
                    println!("{what}: refused: {why}");
                }
                c.refused += 1
            }
            Outcome::Reported(why) => {
                if std::env::var_os("REFRAIN_DAMAGE_VERBOSE").is_some() {
                    println!("{what}: reported: {why}");
                }
                c.reported += 1
            }
            Outcome::Intact => c.intact += 1,
        }
        std::fs::remove_dir_all(&copy).unwrap();
    }
    for (kind, c) in &counts {
        println!(
            "{kind}: {} refused at open, {} opened with damage reported, {} read exactly as before",
            c.refused, c.reported, c.intact
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_history_lost_its_tail_is_refused_by_name_and_others_go_on() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<Shaped>()
        .activity(Reserve::new(&ledger))
        .start();
    let cut = env
        .client
        .start::<Shaped>("cut", ("signal".into(), 0))
        .await
        .unwrap();
    let whole = env
        .client
        .start::<Shaped>("whole", ("signal".into(), 0))
        .await
        .unwrap();
    for id in ["cut", "whole"] {
        eventually(&format!("{id} to wait for its signal"), async || {
            let h = env.client.history(id).await.ok()?;
            kinds(&h)
                .contains(&"ActivityCompleted(reserve)".to_owned())
                .then_some(())
        })
        .await;
    }
    let (run, last) = (
        cut.run_id(),
        env.client.describe("cut").await.unwrap().record.last_seq.0,
    );
    worker.shutdown(Duration::from_secs(1)).await;
    drop((cut, whole));
    let dir = env.close();

    // The history loses its last event; the run's record still counts it.
    edit_history(dir.path(), |history| {
        let key = refrain_history::keys::run_seq_key(run, last);
        assert!(history.remove(key).unwrap().is_some());
    });

    let env = TestEnv::open(dir);
    let worker = Worker::builder(env.store.clone())
        .workflow::<Shaped>()
        .activity(Reserve::new(&ledger))
        .start();
    env.client.signal("cut", &Go).await.unwrap();
    env.client.signal("whole", &Go).await.unwrap();
    let whole = env.client.handle::<Shaped>("whole").await.unwrap();
    assert_eq!(result_of(&whole).await.unwrap(), "reserve(signal-0)");

    let failure = task_failure(
        &env.client,
        "cut",
        "the cut run's task to fail on its history",
    )
    .await;
    assert!(failure.contains("is damaged"), "{failure}");
    assert!(
        failure.contains(&format!("history holds {} events", last - 1)),
        "{failure}"
    );
    match env.store.read_history(run) {
        Err(StoreError::RunDamaged { run: named, .. }) => assert_eq!(named, run),
        other => panic!("expected RunDamaged, got {other:?}"),
    }
    let report = env.store.verify().unwrap();
    assert_eq!(report.runs.len(), 1, "{report:?}");
    assert_eq!(report.runs[0].run, run);
    worker.shutdown(Duration::from_secs(1)).await;
}
