//! A run's `waiting_on` list as JSON: each entry's kind, the sentence an
//! operator reads (`text`), and the fields a program acts on.

use super::json;
use crate::error::ApiError;
use refrain::{Client, WorkflowDescription};
use serde_json::Value;

/// What the latest run of the described workflow waits on; empty once it
/// is closed.
///
/// # Errors
/// As `Client::waiting_on`.
pub(crate) async fn describe(
    client: &Client,
    d: &WorkflowDescription,
) -> Result<Vec<Value>, ApiError> {
    let (run, _, waiting) = client.waiting_on(d.workflow_id.clone()).await?;
    Ok(waiting.iter().map(|w| json::waiting(run.0, w)).collect())
}
