//! Testing Refrain workflows: an in-memory store and a worker whose clock
//! is virtual ([`TestEnv`]), activities replaced by closures per type, and
//! crash-point exploration ([`explore_crashes`]).
//!
//! Add it as a dev-dependency. A workflow that waits 30 days runs in a
//! moment: whenever every run waits (for a timer, a deadline, a retry's
//! backoff, a human task's reminder or escalation, a schedule), the clock
//! jumps to the next due time and fires it.
//!
//! ```
//! use refrain::{Activity, ActivityError, Workflow, WorkflowContext, WorkflowError};
//! use refrain_testkit::TestEnv;
//! use std::time::Duration;
//!
//! struct SendInvoice;
//! #[refrain::async_trait]
//! impl Activity for SendInvoice {
//!     const NAME: &'static str = "send-invoice";
//!     type Input = String;
//!     type Output = String;
//!     async fn run(
//!         &self,
//!         _ctx: refrain::ActivityContext,
//!         customer: String,
//!     ) -> Result<String, ActivityError> {
//!         unreachable!("the test replaces it; the real one would e-mail {customer}")
//!     }
//! }
//!
//! struct Dunning;
//! impl Workflow for Dunning {
//!     const NAME: &'static str = "dunning";
//!     type Input = String;
//!     type Output = String;
//!     async fn run(ctx: WorkflowContext, customer: String) -> Result<String, WorkflowError> {
//!         ctx.sleep(Duration::from_secs(30 * 24 * 3600)).await;
//!         let sent = ctx.activity::<SendInvoice>(customer).await?;
//!         Ok(sent)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let env = TestEnv::new().await;
//! env.register_workflow::<Dunning>();
//! env.mock_activity::<SendInvoice, _, _>(|customer| async move { Ok(format!("invoice to {customer}")) });
//! let started = env.now();
//! let handle = env.start::<Dunning>("dunning-1", "ada".to_string()).await?;
//! assert_eq!(env.result(&handle).await?, "invoice to ada");
//! assert!(env.now().duration_since(started)? >= Duration::from_secs(30 * 24 * 3600));
//! env.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Tests need a multi-threaded tokio runtime
//! (`#[tokio::test(flavor = "multi_thread")]`): the worker's workflow
//! threads wait on it.
//!
//! # Crash points
//!
//! [`explore_crashes`] runs a workflow once to count the durable
//! boundaries it crosses (every transaction the store commits for it),
//! then once per boundary with the process "killed" right after it (the
//! worker's memory dropped, every later write refused, the store opened
//! again over what was committed), and checks that every variant ends
//! with the same outcome and records every activity outcome once.

mod clock;
mod env;
mod explore;
mod mock;

pub use clock::VirtualClock;
pub use env::{TestEnv, TestError, TestHandle};
pub use explore::{explore_crashes, ExploreError};
