//! A store in a temporary directory, and bounded waits, so that a bug fails
//! a test instead of hanging it.

use refrain::{Client, ClientError, Store, StoreConfig, Workflow, WorkflowHandle};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

/// How long any single wait in the suite may take before the test fails.
/// Generous: it only bounds a failing test, it never slows a passing one.
pub const WAIT: Duration = Duration::from_secs(20);

/// Installs a log subscriber once per process. Logs go through the test
/// writer, so libtest shows them only for failing tests; `RUST_LOG`
/// selects them (errors only by default).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// An open store in its own temporary directory, and a client of it.
pub struct TestEnv {
    /// Owns the directory; dropping it deletes the store.
    pub dir: TempDir,
    /// The store.
    pub store: Store,
    /// A client of `store`.
    pub client: Client,
}

impl TestEnv {
    /// Opens a fresh store (default settings: `DurabilityMode::Fsync`).
    ///
    /// # Panics
    /// If the temporary directory or the store cannot be created.
    pub fn new() -> Self {
        init_tracing();
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        TestEnv::open(dir)
    }

    /// Opens the store kept in `dir` (as left by [`TestEnv::close`]).
    ///
    /// # Panics
    /// If the store cannot be opened.
    pub fn open(dir: TempDir) -> Self {
        let store =
            Store::open(store_path(dir.path()), StoreConfig::default()).expect("open store");
        let client = Client::new(store.clone());
        TestEnv { dir, store, client }
    }

    /// Drops this process's handles on the store and returns its directory.
    /// Every worker on the store must have been shut down first, or sled's
    /// file lock stays held.
    pub fn close(self) -> TempDir {
        self.dir
    }

    /// Where the sled database lives.
    pub fn store_path(&self) -> PathBuf {
        store_path(self.dir.path())
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

/// The sled directory inside a test directory.
pub fn store_path(dir: &Path) -> PathBuf {
    dir.join("db")
}

/// Opens the closed store in test directory `dir` with sled itself and
/// lets `edit` change its `history` tree (to damage it on purpose), then
/// flushes. Retries the open while a handle dropped a moment ago still
/// holds sled's file lock.
///
/// # Panics
/// If sled cannot open the store within a few seconds, or cannot flush.
pub fn edit_history(dir: &Path, edit: impl FnOnce(&sled::Tree)) {
    let path = store_path(dir);
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let db = loop {
        match sled::open(&path) {
            Ok(db) => break db,
            Err(_) if std::time::Instant::now() < give_up => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("cannot open {}: {e}", path.display()),
        }
    };
    edit(&db.open_tree("history").expect("the history tree"));
    db.flush().expect("flushing the edit");
}

/// The failure recorded on the latest run of `id` once one of its
/// activations has failed (waiting for it as [`eventually`] does); `what`
/// names the wait in the timeout message.
pub async fn task_failure(client: &Client, id: &str, what: &str) -> String {
    eventually(what, async || {
        client.describe(id).await.ok()?.record.last_task_failure
    })
    .await
}

/// Polls `probe` every few milliseconds until it returns `Some`, for at
/// most [`WAIT`].
///
/// # Panics
/// With `what` in the message when the wait runs out.
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let polled = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    match polled {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Awaits `fut` for at most [`WAIT`].
///
/// # Panics
/// With `what` in the message when the wait runs out.
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// The result of the run behind `handle`, waited for at most [`WAIT`].
///
/// # Panics
/// When the wait runs out.
pub async fn result_of<W: Workflow>(handle: &WorkflowHandle<W>) -> Result<W::Output, ClientError> {
    within(
        &format!("the result of workflow {}", handle.workflow_id()),
        handle.result(),
    )
    .await
}
