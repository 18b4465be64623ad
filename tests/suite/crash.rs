//! Real crashes: a `crash-child` process runs workflows on a store and is
//! killed with SIGKILL at a chosen point, then a new child resumes the same
//! store. Afterwards every workflow has completed, every activity ran at
//! least once (the ledger) and was recorded exactly once (the history), and
//! every history is well formed and replays to its end.
//!
//! Parent and child talk through files and the child's stdout only; the
//! parent opens the store itself only once no child is alive, since sled
//! allows one process per database.

use refrain::replay::{WorkflowMachine, WorkflowType};
use refrain::{Event, RunFilter, RunStatus, Store, StoreConfig};
use refrain_tests::crash::{
    db_dir, hold_file, ledger_file, scenario, CrashFlow, CrashPlan, ALL_DONE, LONG_START_TO_CLOSE,
    READY,
};
use refrain_tests::history::{
    activations, assert_well_formed, completions, kinds, scheduled, strings,
};
use refrain_tests::ledger::{attempts, entries_of, Entry, Ledger, Phase};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CHILD: &str = env!("CARGO_BIN_EXE_crash-child");

/// Bound of every wait on a child.
const WAIT: Duration = Duration::from_secs(30);

/// One `crash-child` process and what it printed so far.
pub(crate) struct RunningChild {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    log: PathBuf,
}

impl RunningChild {
    /// Starts the `n`-th child of a test on `scenario`.
    fn start(dir: &Path, scenario: &str, n: u32) -> Self {
        Self::spawn(dir, &["run", &dir.display().to_string(), scenario], n)
    }

    /// Starts the `n`-th child of a test in `dir` with `args`.
    pub(crate) fn spawn(dir: &Path, args: &[&str], n: u32) -> Self {
        let log = dir.join(format!("child-{n}.log"));
        let mut child = Command::new(CHILD)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("creating the child's log"))
            .spawn()
            .expect("spawning crash-child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        RunningChild {
            child,
            lines,
            seen: Vec::new(),
            log,
        }
    }

    /// Everything the child said, for failure messages.
    fn transcript(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!(
            "stdout:\n{}\nstderr ({}):\n{log}",
            self.seen.join("\n"),
            self.log.display()
        )
    }

    /// Waits for a stdout line that satisfies `pred` and returns it.
    pub(crate) fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let give_up = Instant::now() + WAIT;
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("timed out waiting for {what}\n{}", self.transcript())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!(
                        "the child exited ({status:?}) before {what}\n{}",
                        self.transcript()
                    )
                }
            }
        }
    }

    /// Waits for the `STATE` line of `id` that satisfies `pred`.
    fn wait_for_state(&mut self, id: &str, what: &str, pred: impl Fn(&State) -> bool) -> State {
        let line = self.wait_for(&format!("{id}: {what}"), |line| {
            State::parse(line).is_some_and(|s| s.id == id && pred(&s))
        });
        State::parse(&line).expect("parsed above")
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap. Returns the
    /// last `STATE` line the child printed for each run, i.e. the durable
    /// state the kill interrupted.
    pub(crate) fn kill(mut self) -> BTreeMap<String, String> {
        self.child.kill().expect("killing the child");
        self.child.wait().expect("reaping the child");
        // The reader thread ends at EOF, so everything printed is here now.
        self.seen.extend(self.lines.iter());
        let mut last = BTreeMap::new();
        for line in &self.seen {
            if let Some(s) = State::parse(line) {
                last.insert(s.id, line.clone());
            }
        }
        last
    }

    /// Waits for the child to finish every workflow and exit cleanly;
    /// returns the results it printed, by workflow id.
    pub(crate) fn finish(mut self) -> HashMap<String, String> {
        self.wait_for("every workflow to complete", |l| l == ALL_DONE);
        let give_up = Instant::now() + WAIT;
        loop {
            match self.child.try_wait().expect("polling the child") {
                Some(status) if status.success() => break,
                Some(status) => panic!("the child exited with {status}\n{}", self.transcript()),
                None if Instant::now() > give_up => {
                    panic!("the child did not exit\n{}", self.transcript())
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        self.seen
            .iter()
            .filter_map(|l| {
                let rest = l.strip_prefix("RESULT ")?;
                let (id, json) = rest.split_once(' ')?;
                let result: String = serde_json::from_str(json).expect("a JSON result");
                Some((id.to_owned(), result))
            })
            .collect()
    }
}

impl Drop for RunningChild {
    fn drop(&mut self) {
        // A failing test must not leave a child holding the store.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `STATE` line: what the child had durably recorded for one run.
#[derive(Debug)]
struct State {
    id: String,
    inbox: u64,
    failing: bool,
    kinds: Vec<String>,
}

impl State {
    fn parse(line: &str) -> Option<State> {
        let mut parts = line.strip_prefix("STATE ")?.split(' ');
        let id = parts.next()?.to_owned();
        let mut state = State {
            id,
            inbox: 0,
            failing: false,
            kinds: Vec::new(),
        };
        for part in parts {
            let (key, value) = part.split_once('=')?;
            match key {
                "inbox" => state.inbox = value.parse().ok()?,
                "failing" => state.failing = value == "1",
                "kinds" => state.kinds = value.split(',').map(str::to_owned).collect(),
                _ => {}
            }
        }
        Some(state)
    }
}

/// Asks the running child (through `crash-child signal`) to signal `id`,
/// and returns once it acknowledged the signal as durable.
fn send_signal(dir: &Path, id: &str, value: &str) {
    let out = Command::new(CHILD)
        .arg("signal")
        .arg(dir)
        .args([id, value])
        .stdin(Stdio::null())
        .output()
        .expect("running crash-child signal");
    assert!(
        out.status.success(),
        "signal to {id} not acknowledged: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until the ledger file has an entry that satisfies `pred`.
fn wait_for_ledger(dir: &Path, what: &str, pred: impl Fn(&Entry) -> bool) -> Entry {
    let give_up = Instant::now() + WAIT;
    loop {
        let entries = Ledger::read_file(ledger_file(dir)).expect("reading the ledger");
        if let Some(e) = entries.into_iter().find(|e| pred(e)) {
            return e;
        }
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn ledger(dir: &Path) -> Vec<Entry> {
    Ledger::read_file(ledger_file(dir)).expect("reading the ledger")
}

/// Attempt numbers recorded in `history` for activities of `activity_type`.
fn recorded_attempts(history: &[Event], activity_type: &str) -> Vec<u32> {
    let cmds: Vec<u32> = history
        .iter()
        .filter_map(|e| match e {
            Event::ActivityScheduled {
                cmd,
                activity_type: t,
                ..
            } if t == activity_type => Some(cmd.0),
            _ => None,
        })
        .collect();
    let done = completions(history);
    cmds.iter()
        .flat_map(|c| done.get(c).cloned().unwrap_or_default())
        .collect()
}

/// The checks every crash test ends with, on the store the last child left
/// behind. Returns each workflow's history.
fn verify(
    dir: &Path,
    plans: &[CrashPlan],
    results: &HashMap<String, String>,
    signals: &HashMap<&str, &str>,
) -> BTreeMap<String, Vec<Event>> {
    let entries = ledger(dir);
    let store = Store::open(db_dir(dir), StoreConfig::default()).expect("reopening the store");
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(
        runs.len(),
        plans.len(),
        "a restart must resume runs, not start new ones: {runs:?}"
    );
    let mut histories = BTreeMap::new();
    for plan in plans {
        let id = plan.id.as_str();
        let expected = plan.expected_result(signals.get(id).copied());
        assert_eq!(results.get(id), Some(&expected), "result of {id}");

        let (run, record) = store.latest_run(&id.into()).unwrap().expect("a run");
        assert_eq!(record.status, RunStatus::Completed, "{id}");
        let outcome = record.outcome.expect("a closed run has an outcome");
        let result = outcome.expect("completed successfully");
        assert_eq!(
            serde_json::from_slice::<String>(result.as_bytes()).unwrap(),
            expected
        );

        let history = store.read_history(run).expect("a readable history");
        assert_well_formed(&history);
        assert!(matches!(
            history.last(),
            Some(Event::WorkflowCompleted { .. })
        ));
        let done = completions(&history);
        for cmd in scheduled(&history) {
            assert_eq!(
                done.get(&cmd).map(Vec::len),
                Some(1),
                "{id}: cmd {cmd} must be recorded exactly once\n{:#?}",
                kinds(&history)
            );
        }
        let mut replayed =
            WorkflowMachine::new(&WorkflowType::<CrashFlow>::new(), run, &history[0]).unwrap();
        replayed
            .replay(&history[1..])
            .unwrap_or_else(|e| panic!("{id} does not replay: {e}"));
        assert!(replayed.is_closed());

        for step in ["step-1", "step-2"] {
            let mine = entries_of(&entries, id, step);
            let starts = attempts(&mine, Phase::Start);
            let ends = attempts(&mine, Phase::End);
            assert!(!starts.is_empty(), "{id} {step} never ran");
            let mut unique = starts.clone();
            unique.dedup();
            assert_eq!(unique, starts, "{id} {step}: an attempt ran twice");
            for attempt in recorded_attempts(&history, step) {
                assert!(
                    ends.contains(&attempt),
                    "{id} {step}: recorded attempt {attempt} never finished: {mine:?}"
                );
            }
        }
        histories.insert(plan.id.clone(), history);
    }
    histories
}

pub(crate) fn tempdir() -> tempfile::TempDir {
    refrain_tests::env::init_tracing();
    tempfile::tempdir().expect("creating a temporary directory")
}

/// The killed attempt's start-to-close is an hour (`LONG_START_TO_CLOSE`)
/// and every wait of this test is bounded by `WAIT`, far less: the second
/// child can only finish because reopening the store failed the orphaned
/// attempt and made its retry due at once.
#[test]
fn killed_mid_activity_the_attempt_is_retried_as_soon_as_the_store_reopens() {
    let dir = tempdir();
    let plans = scenario("mid-activity", dir.path());
    assert_eq!(
        plans[0].start_to_close_ms,
        LONG_START_TO_CLOSE.as_millis() as u64
    );
    let first = RunningChild::start(dir.path(), "mid-activity", 1);
    let started = wait_for_ledger(dir.path(), "step 1 to start", |e| {
        e.activity == "step-1" && e.phase == Phase::Start
    });
    first.kill();
    assert_eq!(started.attempt, 1);
    assert!(
        attempts(
            &entries_of(&ledger(dir.path()), "wf-a", "step-1"),
            Phase::End
        )
        .is_empty(),
        "the first attempt was killed before it ended"
    );

    let results = RunningChild::start(dir.path(), "mid-activity", 2).finish();
    let histories = verify(dir.path(), &plans, &results, &HashMap::new());

    // Ran twice (at least once per process), recorded once: the retry's
    // result.
    assert_eq!(recorded_attempts(&histories["wf-a"], "step-1"), [2]);
    let steps = entries_of(&ledger(dir.path()), "wf-a", "step-1");
    assert_eq!(attempts(&steps, Phase::Start), [1, 2]);
    assert_eq!(attempts(&steps, Phase::End), [2]);
}

#[test]
fn killed_with_a_result_recorded_but_not_applied_the_activity_does_not_run_again() {
    let dir = tempdir();
    let plans = scenario("result-held", dir.path());
    let hold = hold_file(dir.path(), "wf-b");
    std::fs::write(&hold, b"").unwrap();
    let mut first = RunningChild::start(dir.path(), "result-held", 1);
    first.wait_for_state("wf-b", "step 1's result durable in the inbox", |s| {
        s.inbox == 1 && s.failing
    });
    first.kill();
    std::fs::remove_file(&hold).unwrap();
    assert_eq!(
        attempts(
            &entries_of(&ledger(dir.path()), "wf-b", "step-1"),
            Phase::End
        ),
        [1]
    );

    let results = RunningChild::start(dir.path(), "result-held", 2).finish();
    let histories = verify(dir.path(), &plans, &results, &HashMap::new());

    let history = &histories["wf-b"];
    assert_eq!(recorded_attempts(history, "step-1"), [1]);
    assert_eq!(
        attempts(
            &entries_of(&ledger(dir.path()), "wf-b", "step-1"),
            Phase::Start
        ),
        [1],
        "a recorded result must never be produced again"
    );
    assert_eq!(
        kinds(history),
        strings(&[
            "WorkflowStarted",
            "ActivationStarted",
            "ActivityScheduled(step-1)",
            "ActivationStarted",
            "ActivityCompleted(step-1)",
            "ActivityScheduled(step-2)",
            "ActivationStarted",
            "ActivityCompleted(step-2)",
            "WorkflowCompleted",
        ])
    );
}

#[test]
fn killed_while_sleeping_on_a_timer_the_timer_fires_once_after_restart() {
    let dir = tempdir();
    let plans = scenario("timer", dir.path());
    let mut first = RunningChild::start(dir.path(), "timer", 1);
    first.wait_for_state("wf-c", "the timer to be started", |s| {
        s.kinds.iter().any(|k| k == "TimerStarted")
    });
    first.kill();
    // Let the deadline pass while no process runs: the restart must fire
    // the overdue timer, once.
    std::thread::sleep(Duration::from_millis(600));

    let results = RunningChild::start(dir.path(), "timer", 2).finish();
    let histories = verify(dir.path(), &plans, &results, &HashMap::new());

    let history = &histories["wf-c"];
    let fire_at = history
        .iter()
        .find_map(|e| match e {
            Event::TimerStarted { fire_at, .. } => Some(*fire_at),
            _ => None,
        })
        .expect("a started timer");
    let fired_in: Vec<_> = activations(history)
        .into_iter()
        .filter(|a| a.iter().any(|e| matches!(e, Event::TimerFired { .. })))
        .collect();
    assert_eq!(fired_in.len(), 1, "the timer fires exactly once");
    let Event::ActivationStarted { time } = fired_in[0][0] else {
        unreachable!("activations start with ActivationStarted")
    };
    assert!(
        time >= fire_at,
        "the timer fired at {time}, before {fire_at}"
    );
    assert_eq!(
        attempts(
            &entries_of(&ledger(dir.path()), "wf-c", "step-1"),
            Phase::Start
        ),
        [1],
        "replaying recorded history runs no activity"
    );
}

#[test]
fn killed_after_a_signal_was_acknowledged_the_signal_is_delivered_once() {
    let dir = tempdir();
    let plans = scenario("signal", dir.path());
    let mut first = RunningChild::start(dir.path(), "signal", 1);
    first.wait_for_state("wf-d", "the workflow to wait for its signal", |s| {
        s.kinds.last().map(String::as_str) == Some("ActivityCompleted(step-1)")
    });
    send_signal(dir.path(), "wf-d", "hello");
    first.kill();

    let results = RunningChild::start(dir.path(), "signal", 2).finish();
    let signals = HashMap::from([("wf-d", "hello")]);
    let histories = verify(dir.path(), &plans, &results, &signals);

    let received: Vec<_> = histories["wf-d"]
        .iter()
        .filter_map(|e| match e {
            Event::SignalReceived { name, payload, .. } => Some((name.clone(), payload.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].0, "proceed");
    assert_eq!(received[0].1.as_bytes(), b"\"hello\"");
}

#[test]
fn repeated_kills_at_arbitrary_points_lose_and_duplicate_nothing() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    // Printed so that a failing interleaving can be named; libtest shows it
    // only when the test fails.
    println!("crash loop seed {seed}");
    let mut rng = seed;
    let mut next_delay = || {
        // xorshift64: enough to spread the kills.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        Duration::from_millis(100 + rng % 600)
    };

    let dir = tempdir();
    let plans = scenario("loop", dir.path());
    let signals = HashMap::from([("loop-4", "four"), ("loop-8", "eight")]);
    for round in 1..=4u32 {
        let mut child = RunningChild::start(dir.path(), "loop", round);
        child.wait_for("the workflows to be started", |l| l == READY);
        match round {
            1 => send_signal(dir.path(), "loop-4", signals["loop-4"]),
            3 => send_signal(dir.path(), "loop-8", signals["loop-8"]),
            _ => {}
        }
        let delay = next_delay();
        std::thread::sleep(delay);
        let states = child.kill();
        println!("round {round}: killed {delay:?} after READY, at");
        for line in states.values() {
            println!("  {line}");
        }
    }
    let results = RunningChild::start(dir.path(), "loop", 5).finish();
    let histories = verify(dir.path(), &plans, &results, &signals);
    for id in ["loop-4", "loop-8"] {
        let received = histories[id]
            .iter()
            .filter(|e| matches!(e, Event::SignalReceived { .. }))
            .count();
        assert_eq!(received, 1, "{id} (seed {seed})");
    }
}
