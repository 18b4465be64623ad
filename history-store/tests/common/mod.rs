//! Helpers shared by the store's integration tests: a store in a temporary
//! directory (or, under [`on_both_engines!`], in memory: see [`open`]) and
//! short builders for activations. Every time is explicit so the tests
//! never depend on the wall clock.

// Each test file uses a different subset.
#![allow(dead_code)]

use refrain_history::{
    Activation, ActivationCommit, ActivityOptions, Callsite, CommandSeq, DurabilityMode, Event,
    IdConflictPolicy, MemoryStorage, Payload, RunId, StartRequest, Store, StoreConfig, Timestamp,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fixed origin for test clocks.
pub const T0: Timestamp = Timestamp(1_700_000_000_000);

/// `T0` plus `ms` milliseconds.
pub fn at(ms: u64) -> Timestamp {
    Timestamp(T0.0 + ms)
}

/// Config for tests where durability is not the point.
pub fn fast_config() -> StoreConfig {
    StoreConfig {
        durability: DurabilityMode::None,
        cache_capacity_bytes: 4 * 1024 * 1024,
        lock_timeout: Duration::from_secs(5),
        ..StoreConfig::default()
    }
}

/// The engine a test thread's stores open on.
#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Sled,
    Memory,
}

thread_local! {
    static ENGINE: Cell<Engine> = const { Cell::new(Engine::Sled) };
    /// The in-memory "directories" of this test thread: opening the same
    /// path again reopens the same storage, as a restart would.
    static MEMORY: RefCell<HashMap<PathBuf, MemoryStorage>> = RefCell::default();
}

/// Runs `test` with every [`open`] of this thread on `engine`.
pub fn on_engine(engine: Engine, test: impl FnOnce()) {
    ENGINE.with(|e| e.set(engine));
    test();
}

/// [`on_engine`] for an async test, on a current-thread runtime (so that
/// every `open` runs on this thread).
pub fn on_engine_async<F: std::future::Future<Output = ()>>(
    engine: Engine,
    test: impl FnOnce() -> F,
) {
    on_engine(engine, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(test())
    })
}

/// Opens the store "in" `dir`: sled in the directory, or, when the test
/// runs on the memory engine, the memory storage this thread keeps for
/// `dir` (so that opening it again after dropping the store is a restart).
pub fn open(dir: &Path) -> Store {
    match ENGINE.with(Cell::get) {
        Engine::Sled => Store::open(dir, fast_config()).expect("open store"),
        Engine::Memory => {
            let storage =
                MEMORY.with(|m| m.borrow_mut().entry(dir.to_path_buf()).or_default().clone());
            Store::open_in_memory(&storage, fast_config()).expect("open store in memory")
        }
    }
}

/// Turns the listed test functions (written without `#[test]`) into two
/// tests each, `on_sled::name` and `on_memory::name`: the same test of the
/// store's behaviour on either engine. A test that reopens its store with
/// [`open`] restarts it on both.
#[allow(unused_macros)] // Not every test file has tests for both.
macro_rules! on_both_engines {
    ($(fn $name:ident;)* $(async fn $async_name:ident;)*) => {
        mod on_sled {
            $(#[test]
            fn $name() {
                super::common::on_engine(super::common::Engine::Sled, super::$name)
            })*
            $(#[test]
            fn $async_name() {
                super::common::on_engine_async(super::common::Engine::Sled, super::$async_name)
            })*
        }
        mod on_memory {
            $(#[test]
            fn $name() {
                super::common::on_engine(super::common::Engine::Memory, super::$name)
            })*
            $(#[test]
            fn $async_name() {
                super::common::on_engine_async(super::common::Engine::Memory, super::$async_name)
            })*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_engines;

pub fn payload(s: &str) -> Payload {
    Payload::from_bytes(s.as_bytes().to_vec())
}

pub fn start_request(id: &str, now: Timestamp) -> StartRequest {
    StartRequest {
        workflow_id: id.into(),
        workflow_type: "order-to-cash".into(),
        input: payload("{}"),
        on_conflict: IdConflictPolicy::Reject,
        seed: 7,
        now,
    }
}

/// Starts `id` and returns its run.
pub fn start(store: &Store, id: &str, now: Timestamp) -> RunId {
    let out = store.start_workflow(start_request(id, now)).expect("start");
    assert!(out.started);
    out.run
}

pub fn callsite() -> Callsite {
    Callsite {
        file: "tests/order.rs".into(),
        line: 1,
        column: 1,
    }
}

pub fn schedule(cmd: u32, options: ActivityOptions) -> Event {
    Event::ActivityScheduled {
        cmd: CommandSeq(cmd),
        activity_type: "reserve-stock".into(),
        input: payload("\"sku-1\""),
        options,
        callsite: callsite(),
    }
}

pub fn start_timer(cmd: u32, fire_at: Timestamp) -> Event {
    Event::TimerStarted {
        cmd: CommandSeq(cmd),
        fire_at,
        callsite: callsite(),
    }
}

/// The commit a well-behaved worker makes for `task`: the activation
/// marker, every inbox item it was given, then `commands`.
pub fn commit_for(task: &Activation, time: Timestamp, commands: Vec<Event>) -> ActivationCommit {
    let mut events = vec![Event::ActivationStarted { time }];
    events.extend(task.inbox.iter().cloned());
    events.extend(commands);
    ActivationCommit {
        run: task.run,
        token: task.token,
        expected_last_seq: task.record.last_seq,
        inbox_upto: task.inbox_upto,
        events,
        rejected_updates: Vec::new(),
        awaited_signals: Vec::new(),
    }
}

/// Claims `run` and commits one activation at `time` producing `commands`.
/// Returns the task that was claimed (with the inbox it applied).
pub fn activate(store: &Store, run: RunId, time: Timestamp, commands: Vec<Event>) -> Activation {
    let task = store
        .claim_activation(run)
        .expect("claim")
        .expect("run is ready");
    store
        .commit_activation(commit_for(&task, time, commands))
        .expect("commit");
    task
}

/// Inbox items currently waiting for `run` (claims and releases the task).
pub fn peek_inbox(store: &Store, run: RunId) -> Vec<Event> {
    match store.claim_activation(run).expect("claim") {
        None => Vec::new(),
        Some(task) => {
            store
                .release_activation(run, task.token, None)
                .expect("release");
            task.inbox
        }
    }
}

/// Opens the store's sled database directly, retrying while the store's
/// last handle finishes releasing the file lock.
pub fn raw_sled(dir: &Path) -> sled::Db {
    let mut last = None;
    for _ in 0..200 {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("could not open sled directly: {last:?}");
}
