//! Runs Refrain workflows and activities.
//!
//! A [`Worker`] runs in the application process on an embedded store. It
//! takes runs with new events, replays or reuses their workflow instances
//! on a few pinned threads, commits each activation in one transaction,
//! runs activities on the tokio runtime within a slot limit, and fires
//! durable timers. A stall watchdog reports any commit, flush or activity
//! attempt that stops making progress, and by default exits the process
//! so that a supervisor restarts it (see [`WorkerBuilder::stall_threshold`]
//! and [`Worker::health`]).
//!
//! ```no_run
//! # use refrain::{Workflow, WorkflowContext, WorkflowError, Store, StoreConfig};
//! # struct Hello;
//! # impl Workflow for Hello {
//! #     const NAME: &'static str = "hello";
//! #     type Input = String;
//! #     type Output = String;
//! #     async fn run(_ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
//! #         Ok(format!("hello {name}"))
//! #     }
//! # }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use refrain_worker::Worker;
//! let store = Store::open("./refrain-data", StoreConfig::default())?;
//! let worker = Worker::builder(store).workflow::<Hello>().start();
//! let client = worker.client();
//! let handle = client.start::<Hello>("greet-ada", "Ada".to_string()).await?;
//! assert_eq!(handle.result().await?, "hello Ada");
//! worker.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

mod activities;
mod cache;
pub mod cli;
mod direct;
mod dispatcher;
mod eager_start;
mod executor;
#[cfg(feature = "otel")]
pub mod otel;
mod registry;
mod replayer;
mod retention;
pub mod shadow;
mod telemetry;
mod timers;
mod watchdog;
mod worker;

pub use registry::{Registered, RegistrationConflict};
pub use replayer::{ReplayError, ReplayReport, Replayer};
pub use timers::TimeService;
pub use watchdog::{AttemptRef, Health, Stall, StallAction, Stalled, STALL_EXIT_CODE};
pub use worker::{Worker, WorkerBuilder};
