//! Several stores over one shared storage, as several processes over one
//! database: three with a worker each, and one that only serves clients.
//! Runs with activities, timers and signals, started through the workers'
//! stores and signalled through the clients' one, complete; one worker's
//! store stops dead in the middle of its work and the others finish its
//! runs once its leases expire; every activity result is recorded once.

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, Signal, Workflow,
    WorkflowContext, WorkflowError,
};
use refrain_history::Event;
use refrain_history::{MemoryStorage, Store, StoreConfig};
use refrain_tests::env::eventually;
use refrain_tests::history::{assert_well_formed, completions, scheduled};
use refrain_tests::ledger::{Ledger, Phase};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Runs started; a third through each store.
const RUNS: usize = 24;

/// Short leases, so a dead store's work moves within the test's wait.
fn config() -> StoreConfig {
    StoreConfig {
        lease_duration: Duration::from_millis(900),
        discovery_interval: Duration::from_millis(50),
        ..StoreConfig::default()
    }
}

/// Takes `pause` and echoes its input; the store that ran it is told
/// apart by the ledger it writes to.
struct Step {
    ledger: Ledger,
    pause: Duration,
}

#[async_trait]
impl Activity for Step {
    const NAME: &'static str = "step";
    type Input = String;
    type Output = String;

    async fn run(&self, ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
        self.ledger.record(&ctx, Phase::Start);
        tokio::time::sleep(self.pause).await;
        self.ledger.record(&ctx, Phase::End);
        Ok(input)
    }
}

#[derive(Serialize, Deserialize)]
struct Go(String);

impl Signal for Go {
    const NAME: &'static str = "go";
}

/// An activity, a timer, a signal, then an activity with what it said.
struct Order;

impl Workflow for Order {
    const NAME: &'static str = "fleet-order";
    type Input = String;
    type Output = String;

    async fn run(ctx: WorkflowContext, id: String) -> Result<String, WorkflowError> {
        let first = ctx.activity::<Step>(format!("{id}:reserved")).await?;
        ctx.sleep(Duration::from_millis(100)).await;
        let Go(word) = ctx.wait_signal::<Go>().await?;
        let second = ctx.activity::<Step>(format!("{id}:{word}")).await?;
        Ok(format!("{first}+{second}"))
    }
}

fn worker(store: &Store, ledger: &Ledger, pause: Duration) -> Worker {
    Worker::builder(store.clone())
        .workflow::<Order>()
        .activity(Step {
            ledger: ledger.clone(),
            pause,
        })
        .start()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn runs_finish_and_record_each_result_once_when_one_of_three_stores_dies_mid_run() {
    let storage = MemoryStorage::shared();
    let open = || Store::open_in_memory(&storage, config()).expect("a store over the storage");
    let (a, b) = (open(), open());
    let ledgers = [
        Ledger::in_memory(),
        Ledger::in_memory(),
        Ledger::in_memory(),
    ];
    let main = runtime();
    // The store that dies runs on a runtime of its own: shutting that down
    // drops its worker's tasks mid-attempt, as a killed process would.
    let doomed = runtime();
    let c = open();
    let ids: Vec<String> = (0..RUNS).map(|i| format!("order-{i}")).collect();

    let (worker_a, worker_b) = main.block_on(async {
        let fast = Duration::from_millis(5);
        (worker(&a, &ledgers[0], fast), worker(&b, &ledgers[1], fast))
    });
    // C's attempts take long enough to be cut off.
    let worker_c = doomed.block_on(async { worker(&c, &ledgers[2], Duration::from_secs(3)) });
    let clients = [Client::new(a.clone()), Client::new(b.clone())];
    main.block_on(async {
        for (i, id) in ids.iter().enumerate() {
            let client = &clients[i % 2];
            client
                .start::<Order>(id.as_str(), id.clone())
                .await
                .unwrap();
        }
    });
    // Starts through C too, and C's own worker at work.
    let client_c = Client::new(c.clone());
    doomed.block_on(async {
        for i in 0..RUNS / 3 {
            let id = format!("order-c-{i}");
            client_c
                .start::<Order>(id.as_str(), id.clone())
                .await
                .unwrap();
        }
        while ledgers[2].entries().len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let ids: Vec<String> = ids
        .into_iter()
        .chain((0..RUNS / 3).map(|i| format!("order-c-{i}")))
        .collect();

    // C dies: its tasks stop where they are and it renews nothing more.
    drop((worker_c, client_c, c));
    doomed.shutdown_background();
    let cut_off = ledgers[2].entries();
    assert!(
        cut_off.iter().any(|e| e.phase == Phase::Start)
            && !cut_off.iter().any(|e| e.phase == Phase::End),
        "C was stopped mid-attempt: {cut_off:?}"
    );

    main.block_on(async {
        // Signals through a store with no worker: the workers' stores
        // find the runs they made ready by looking in the ready table.
        // Each is signalled once it waits for nothing else, so that
        // nothing but the signal can make it ready.
        let d = open();
        let client_d = Client::new(d.clone());
        for (i, id) in ids.iter().enumerate() {
            eventually(&format!("{id} waiting for its signal"), async || {
                // In the history once the activation that saw it has
                // committed: the run then waits for the signal alone.
                let history = client_d.history(id.as_str()).await.unwrap();
                let fired = history
                    .iter()
                    .any(|e| matches!(e, Event::TimerFired { .. }));
                fired.then_some(())
            })
            .await;
            let go = Go(format!("go-{i}"));
            client_d.signal(id.as_str(), &go).await.unwrap();
        }
        for (i, id) in ids.iter().enumerate() {
            let handle = clients[i % 2].handle::<Order>(id.as_str()).await.unwrap();
            let result = refrain_tests::env::result_of(&handle)
                .await
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(result, format!("{id}:reserved+{id}:go-{i}"));
            let history = clients[0].history(id.as_str()).await.unwrap();
            assert_well_formed(&history);
            let recorded = completions(&history);
            for cmd in scheduled(&history) {
                assert_eq!(
                    recorded.get(&cmd).map(Vec::len),
                    Some(1),
                    "{id}: activity {cmd} recorded once: {recorded:?}"
                );
            }
        }
        worker_a.shutdown(Duration::from_secs(1)).await;
        worker_b.shutdown(Duration::from_secs(1)).await;
    });

    // What C had started was run again elsewhere, under the same attempt
    // count's successor, and its results were the ones recorded.
    let elsewhere: Vec<_> = ledgers[..2].iter().flat_map(Ledger::entries).collect();
    for cut in cut_off.iter().filter(|e| e.phase == Phase::Start) {
        assert!(
            elsewhere.iter().any(|e| e.workflow_id == cut.workflow_id
                && e.phase == Phase::End
                && e.attempt > cut.attempt),
            "{} attempt {} was retried after C died",
            cut.workflow_id,
            cut.attempt
        );
    }
}
