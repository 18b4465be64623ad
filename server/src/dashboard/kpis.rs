//! `/kpis`: per workflow type, what operators ask for: runs started,
//! completed and failed, cycle time p50 and p95, error rate, automation
//! rate, and human tasks overdue or escalated.
//!
//! Counts and cycle times come from the run records (the shared
//! [`Snapshot`](super::snapshot::Snapshot)). The automation rate needs to
//! know whether a person decided anything in a run, which only its history
//! says, and open human tasks are found run by run; both are bounded to
//! the most recent runs of each type ([`AUTOMATION_SAMPLE`],
//! [`OPEN_SAMPLE`]), the page says so, and the result is kept
//! [`FRESH_FOR`] like the counts.

use super::fmt::{human, STATUSES};
use super::layout::page;
use super::respond::{enc, PageError, PageResult};
use super::snapshot::{last_n, percentile, Snapshot, FRESH_FOR};
use super::Dash;
use crate::auth::WebCaller;
use crate::state::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Extension;
use maud::html;
use refrain::ClientError;
use refrain_history::{Event, EventSeq, ReadError, RunStatus, Timestamp};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Closed runs per type whose histories are read for the automation
/// rate.
pub(crate) const AUTOMATION_SAMPLE: usize = 200;

/// Open runs per type whose human tasks are counted.
pub(crate) const OPEN_SAMPLE: usize = 500;

/// One workflow type's figures.
#[derive(Debug)]
struct Row {
    workflow_type: String,
    started: u64,
    running: u64,
    completed: u64,
    failed: u64,
    closed: u64,
    p50: Option<u64>,
    p95: Option<u64>,
    /// Runs read, and those among them with no human decision.
    automation: (usize, usize),
    /// Open runs looked at; open tasks overdue; open tasks escalated.
    tasks: (usize, usize, usize),
}

/// The figures of every type, and when they were computed.
#[derive(Default)]
pub(crate) struct KpiCache {
    last: Mutex<Option<(Instant, Arc<Vec<Row>>)>>,
}

impl std::fmt::Debug for KpiCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KpiCache")
    }
}

impl KpiCache {
    async fn get(
        &self,
        state: &AppState,
        snap: &Snapshot,
    ) -> Result<(Arc<Vec<Row>>, Duration), ReadError> {
        let mut last = self.last.lock().await;
        if let Some((at, rows)) = last.as_ref() {
            if at.elapsed() < FRESH_FOR {
                return Ok((rows.clone(), at.elapsed()));
            }
        }
        let rows = Arc::new(compute(state, snap).await?);
        *last = Some((Instant::now(), rows.clone()));
        Ok((rows, Duration::ZERO))
    }
}

async fn compute(state: &AppState, snap: &Snapshot) -> Result<Vec<Row>, ReadError> {
    let store = state.store();
    let now = Timestamp::now();
    let mut rows = Vec::new();
    for (workflow_type, t) in &snap.types {
        let mut cycles = t.cycle_ms.clone();
        let p50 = percentile(&mut cycles, 50);
        let p95 = percentile(&mut cycles, 95);
        let mut automated = 0;
        let sample = last_n(&t.recent_closed, AUTOMATION_SAMPLE);
        for (run, _) in sample {
            let events = store.read_history(*run, EventSeq(1)).await?;
            if !events
                .iter()
                .any(|e| matches!(e, Event::HumanTaskDecided { .. }))
            {
                automated += 1;
            }
        }
        let open = last_n(&t.recent_open, OPEN_SAMPLE);
        let (mut overdue, mut escalated) = (0, 0);
        for run in open {
            for task in store.human_tasks_of_run(*run).await? {
                if task.deadline.is_some_and(|d| d < now) {
                    overdue += 1;
                }
                if task.level > 0 {
                    escalated += 1;
                }
            }
        }
        rows.push(Row {
            workflow_type: workflow_type.clone(),
            started: STATUSES.iter().map(|s| t.count(*s)).sum(),
            running: t.count(RunStatus::Running),
            completed: t.count(RunStatus::Completed),
            failed: t.count(RunStatus::Failed),
            closed: t.closed(),
            p50,
            p95,
            automation: (sample.len(), automated),
            tasks: (open.len(), overdue, escalated),
        });
    }
    Ok(rows)
}

fn ms(v: Option<u64>) -> String {
    v.map(|ms| human(Duration::from_millis(ms)))
        .unwrap_or_else(|| "—".into())
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "—".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// `GET /kpis`.
pub(super) async fn show(
    State(state): State<AppState>,
    Extension(dash): Extension<Arc<Dash>>,
    caller: WebCaller,
) -> PageResult {
    let fail = |e: ReadError| PageError::new(ClientError::from(e).into(), &caller);
    let (snap, _) = dash.counter.get(&state).await.map_err(fail)?;
    let (rows, age) = dash.kpis.get(&state, &snap).await.map_err(fail)?;
    let body = html! {
        h1 { "KPIs by workflow type" }
        @if rows.is_empty() {
            p.muted { "No run yet." }
        } @else {
            table.kpis {
                thead { tr {
                    th { "Workflow type" } th { "Started" } th { "Running" } th { "Completed" } th { "Failed" }
                    th { "Cycle time p50" } th { "p95" } th { "Error rate" } th { "Automation rate" }
                    th { "Human tasks overdue" } th { "escalated" }
                } }
                tbody {
                    @for r in rows.iter() {
                        tr {
                            td { a href={ "/runs?type=" (enc(&r.workflow_type)) } { (r.workflow_type) } }
                            td { (r.started) }
                            td { (r.running) }
                            td { (r.completed) }
                            td { (r.failed) }
                            td { (ms(r.p50)) }
                            td { (ms(r.p95)) }
                            td { (pct(r.failed, r.closed)) }
                            td {
                                (pct(r.automation.1 as u64, r.automation.0 as u64))
                                span.muted { " of " (r.automation.0) }
                            }
                            td.overdue-count { (r.tasks.1) }
                            td { (r.tasks.2) }
                        }
                    }
                }
            }
        }
        p.hint {
            "Closed runs are those completed, failed, cancelled or terminated (a run continued as new hands over, it does not end). "
            "Cycle time: closed − started, over every closed run. Error rate: failed ÷ closed. "
            "Automation rate: share of the " (AUTOMATION_SAMPLE) " most recent closed runs of each type whose history has no human decision. "
            "Human tasks: open tasks past their deadline, and open tasks escalated at least once, among the " (OPEN_SAMPLE) " most recent running runs of each type. "
            "Computed " (human(age)) " ago."
        }
    };
    Ok(page("KPIs", Some(&caller), body).into_response())
}
