//! Schedules: start a workflow at every tick of an interval or a cron
//! expression (UTC), durably. The store keeps each schedule and records
//! every fire in the same transaction that starts its run; the worker's
//! schedule service fires them, and after a restart catches up on fires
//! missed while the process was down (within the schedule's catch-up
//! window, per its overlap policy).
//!
//! ```no_run
//! # use refrain::{Client, Workflow, WorkflowContext, WorkflowError};
//! use refrain::{schedule_for, OverlapPolicy, Trigger};
//! use std::time::Duration;
//! # struct Reconcile;
//! # impl Workflow for Reconcile {
//! #     const NAME: &'static str = "reconcile";
//! #     type Input = String;
//! #     type Output = u32;
//! #     async fn run(_: WorkflowContext, _: String) -> Result<u32, WorkflowError> { Ok(0) }
//! # }
//! # async fn demo(client: Client) -> Result<(), Box<dyn std::error::Error>> {
//! let spec = schedule_for::<Reconcile>(
//!     "nightly-reconciliation",
//!     Trigger::Cron("0 2 * * *".into()), // 02:00 UTC
//!     &"eu-ledger".to_string(),
//! )?
//! .overlap(OverlapPolicy::BufferOne)
//! .catchup_window(Duration::from_secs(6 * 3600));
//! client.create_schedule(spec).await?;
//! # Ok(()) }
//! ```

use crate::client::Client;
use crate::payload::{self, PayloadError};
use crate::workflow::Workflow;
pub use refrain_history::ScheduleError;
use refrain_history::{ScheduleRecord, ScheduleSpec, Trigger};

/// A [`ScheduleSpec`] that starts workflow `W` with `input`, with the
/// defaults of [`ScheduleSpec::new`] (overlap `Skip`, one-day catch-up
/// window); chain `.overlap(..)` and `.catchup_window(..)` to change them.
///
/// # Errors
/// `PayloadError` if `input` cannot be encoded.
pub fn schedule_for<W: Workflow>(
    id: impl Into<String>,
    trigger: Trigger,
    input: &W::Input,
) -> Result<ScheduleSpec, PayloadError> {
    let input = payload::encode("schedule input", input)?;
    Ok(ScheduleSpec::new(id, W::NAME, input, trigger))
}

/// Schedules. Every call that changes a schedule returns once the change
/// is durable.
impl Client {
    /// Creates a schedule; its first fire is the first fire time after
    /// now.
    ///
    /// # Errors
    /// `AlreadyExists`, `BadCronExpression`, `Invalid` (nothing is
    /// written), or a storage error.
    pub async fn create_schedule(
        &self,
        spec: ScheduleSpec,
    ) -> Result<ScheduleRecord, ScheduleError> {
        self.history_store().create_schedule(spec).await
    }

    /// Pauses schedule `id`: no fires (nor buffered starts) until resumed.
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub async fn pause_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        self.history_store().pause_schedule(id).await
    }

    /// Resumes schedule `id`. Fires that came during the pause act only if
    /// they are within the catch-up window (per the overlap policy); older
    /// ones are counted as missed.
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub async fn resume_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        self.history_store().resume_schedule(id).await
    }

    /// Deletes schedule `id`. Runs it started carry on.
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub async fn delete_schedule(&self, id: &str) -> Result<(), ScheduleError> {
        self.history_store().delete_schedule(id).await
    }

    /// Every schedule, in creation order.
    ///
    /// # Errors
    /// A storage error.
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, ScheduleError> {
        self.history_store().list_schedules().await
    }

    /// Schedule `id`: its spec, whether it is paused, next and last fire,
    /// last run, and how many fires started, were skipped by the overlap
    /// policy, or were missed (older than the catch-up window).
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub async fn describe_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        self.history_store().describe_schedule(id).await
    }
}
