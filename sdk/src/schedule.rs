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
use refrain_history::{ScheduleRecord, ScheduleSpec, StoreError, Timestamp, Trigger};
use std::fmt;

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
        let record = self.store().create_schedule(spec, Timestamp::now())?;
        self.store().durable().await?;
        Ok(record)
    }

    /// Pauses schedule `id`: no fires (nor buffered starts) until resumed.
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub async fn pause_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        let record = self.store().pause_schedule(id)?;
        self.store().durable().await?;
        Ok(record)
    }

    /// Resumes schedule `id`. Fires that came during the pause act only if
    /// they are within the catch-up window (per the overlap policy); older
    /// ones are counted as missed.
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub async fn resume_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        let record = self.store().resume_schedule(id)?;
        self.store().durable().await?;
        Ok(record)
    }

    /// Deletes schedule `id`. Runs it started carry on.
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub async fn delete_schedule(&self, id: &str) -> Result<(), ScheduleError> {
        self.store().delete_schedule(id)?;
        self.store().durable().await?;
        Ok(())
    }

    /// Every schedule, in creation order.
    ///
    /// # Errors
    /// A storage error.
    pub fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, ScheduleError> {
        Ok(self.store().list_schedules()?)
    }

    /// Schedule `id`: its spec, whether it is paused, next and last fire,
    /// last run, and how many fires started, were skipped by the overlap
    /// policy, or were missed (older than the catch-up window).
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub fn describe_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        Ok(self.store().describe_schedule(id)?)
    }
}

/// Errors of the schedule calls of [`Client`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A schedule with this id exists. Nothing was written.
    AlreadyExists {
        /// The id.
        id: String,
    },
    /// No schedule has this id. Nothing was written.
    NotFound {
        /// The id.
        id: String,
    },
    /// The cron expression does not parse. Nothing was written.
    BadCronExpression {
        /// The expression.
        expression: String,
        /// What the parser objected to.
        reason: String,
    },
    /// The spec cannot be used (empty id or type, zero interval, a pattern
    /// that never fires). Nothing was written.
    Invalid {
        /// The id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The input exceeds the store's payload limit. Nothing was written.
    PayloadTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for ScheduleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ScheduleExists { id } => ScheduleError::AlreadyExists { id },
            StoreError::ScheduleNotFound { id } => ScheduleError::NotFound { id },
            StoreError::BadCronExpression { expression, reason } => {
                ScheduleError::BadCronExpression { expression, reason }
            }
            StoreError::InvalidSchedule { id, reason } => ScheduleError::Invalid { id, reason },
            StoreError::PayloadTooLarge { size, limit } => {
                ScheduleError::PayloadTooLarge { size, limit }
            }
            other => ScheduleError::Store(other),
        }
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::AlreadyExists { id } => {
                write!(f, "a schedule with id {id} already exists")
            }
            ScheduleError::NotFound { id } => write!(f, "no schedule with id {id}"),
            ScheduleError::BadCronExpression { expression, reason } => {
                write!(f, "bad cron expression {expression:?}: {reason}")
            }
            ScheduleError::Invalid { id, reason } => write!(f, "invalid schedule {id}: {reason}"),
            ScheduleError::PayloadTooLarge { size, limit } => write!(
                f,
                "schedule input of {size} bytes exceeds the limit of {limit} bytes"
            ),
            ScheduleError::Store(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for ScheduleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ScheduleError::Store(e) => Some(e),
            _ => None,
        }
    }
}
