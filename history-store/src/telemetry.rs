//! The engine's metrics: every name it reports through the [`metrics`]
//! facade, what each means, and the few helpers that keep reporting cheap.
//!
//! Refrain records; it does not export. An application (or the server
//! crate) installs a recorder, for instance `metrics-exporter-prometheus`,
//! and every worker and store in the process reports to it. With no
//! recorder installed, reporting costs a lookup that finds nothing.
//! Install the recorder before starting workers: the engine looks it up at
//! every report, so a recorder installed later still sees what comes
//! after, but nothing before.
//!
//! # Names
//!
//! Prometheus conventions: a `refrain_` prefix, counters end in `_total`,
//! durations are histograms in seconds (`_seconds`). [`ALL`] lists every
//! metric with its kind, labels and help text, for a `/metrics` page or a
//! README table; [`describe`] hands the help texts to the recorder.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `refrain_workflow_starts_total` | counter | `workflow_type` |
//! | `refrain_workflow_completions_total` | counter | `workflow_type` |
//! | `refrain_workflow_failures_total` | counter | `workflow_type` |
//! | `refrain_workflow_task_duration_seconds` | histogram | `workflow_type` |
//! | `refrain_activity_attempts_total` | counter | `activity_type` |
//! | `refrain_activity_failures_total` | counter | `activity_type` |
//! | `refrain_activity_attempt_duration_seconds` | histogram | `activity_type` |
//! | `refrain_store_commit_duration_seconds` | histogram | |
//! | `refrain_store_flush_duration_seconds` | histogram | |
//! | `refrain_ready_queue_depth` | gauge | |
//! | `refrain_pending_timers` | gauge | |
//! | `refrain_human_tasks_open` | gauge | |
//! | `refrain_human_tasks_overdue` | gauge | |
//!
//! # Where each is measured
//!
//! Workflow and activity metrics are reported by the worker that runs the
//! code (so a workflow's counters move in the process that runs it);
//! commit and flush durations by the store's group committer and flusher.
//! The four gauges are sampled, not kept up to date by every transition:
//! counting open human tasks or pending timers exactly would add writes to
//! hot transactions, while a scan every few seconds costs little. The
//! worker's time service samples them
//! ([`HistoryStore::record_gauges`](crate::HistoryStore::record_gauges))
//! every [`GAUGE_INTERVAL`].
//!
//! # Cost
//!
//! Labels are the registered type names, interned once per name
//! ([`type_labels`]) as `&'static` slices: a report builds a key without
//! allocating and asks the recorder for the handle (a hash lookup in the
//! recorder's registry). Nothing is reported per event or per poll; the
//! busiest metrics move once per activation and once per attempt.

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Runs started: counted when a worker commits a run's first activation
/// (an eager start's included). A run continued as new counts again, as
/// a new run.
pub const WORKFLOW_STARTS: &str = "refrain_workflow_starts_total";
/// Runs that completed (`WorkflowCompleted` committed).
pub const WORKFLOW_COMPLETIONS: &str = "refrain_workflow_completions_total";
/// Runs that failed (`WorkflowFailed` committed: the workflow returned an
/// error, or its activation could never be accepted). Cancelled and
/// terminated runs are neither completions nor failures.
pub const WORKFLOW_FAILURES: &str = "refrain_workflow_failures_total";
/// One workflow task (activation): from the worker taking it to its
/// commit settling (durable, or refused), the workflow code included.
pub const WORKFLOW_TASK_SECONDS: &str = "refrain_workflow_task_duration_seconds";
/// Activity attempts run by this process's workers (of registered types:
/// an attempt of a type no worker registered fails without running).
pub const ACTIVITY_ATTEMPTS: &str = "refrain_activity_attempts_total";
/// Activity attempts that ended in an error or a panic (retried or not).
pub const ACTIVITY_FAILURES: &str = "refrain_activity_failures_total";
/// How long an activity attempt's code ran.
pub const ACTIVITY_ATTEMPT_SECONDS: &str = "refrain_activity_attempt_duration_seconds";
/// How long one group-commit transaction took to apply (a batch of
/// starts, signals, commits, completions and claims).
pub const STORE_COMMIT_SECONDS: &str = "refrain_store_commit_duration_seconds";
/// How long one flush took (sled `flush`, and the fsync in the default
/// durability mode); one flush covers every write acknowledged with it.
pub const STORE_FLUSH_SECONDS: &str = "refrain_store_flush_duration_seconds";
/// Runs queued for an activation in this process, sampled.
pub const READY_QUEUE_DEPTH: &str = "refrain_ready_queue_depth";
/// Durable workflow timers not fired yet, sampled.
pub const PENDING_TIMERS: &str = "refrain_pending_timers";
/// Human tasks waiting for a decision, sampled.
pub const HUMAN_TASKS_OPEN: &str = "refrain_human_tasks_open";
/// Open human tasks past their current assignee's deadline, sampled.
pub const HUMAN_TASKS_OVERDUE: &str = "refrain_human_tasks_overdue";

/// The label of workflow metrics: the registered workflow type.
pub const WORKFLOW_TYPE: &str = "workflow_type";
/// The label of activity metrics: the registered activity type.
pub const ACTIVITY_TYPE: &str = "activity_type";

/// How often the gauges are sampled.
pub const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

/// What kind of metric a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution of observed values.
    Histogram,
}

/// One metric of [`ALL`].
#[derive(Clone, Copy, Debug)]
pub struct MetricInfo {
    /// Its name.
    pub name: &'static str,
    /// Its kind.
    pub kind: MetricKind,
    /// The label it carries, if any.
    pub label: Option<&'static str>,
    /// What it measures, in a line.
    pub help: &'static str,
}

const fn info(
    name: &'static str,
    kind: MetricKind,
    label: Option<&'static str>,
    help: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        kind,
        label,
        help,
    }
}

/// Every metric the engine reports.
pub const ALL: &[MetricInfo] = &[
    info(
        WORKFLOW_STARTS,
        MetricKind::Counter,
        Some(WORKFLOW_TYPE),
        "Runs started (first activation committed).",
    ),
    info(
        WORKFLOW_COMPLETIONS,
        MetricKind::Counter,
        Some(WORKFLOW_TYPE),
        "Runs completed.",
    ),
    info(
        WORKFLOW_FAILURES,
        MetricKind::Counter,
        Some(WORKFLOW_TYPE),
        "Runs failed.",
    ),
    info(
        WORKFLOW_TASK_SECONDS,
        MetricKind::Histogram,
        Some(WORKFLOW_TYPE),
        "Workflow task (activation) duration, taken to durable commit.",
    ),
    info(
        ACTIVITY_ATTEMPTS,
        MetricKind::Counter,
        Some(ACTIVITY_TYPE),
        "Activity attempts run.",
    ),
    info(
        ACTIVITY_FAILURES,
        MetricKind::Counter,
        Some(ACTIVITY_TYPE),
        "Activity attempts that failed.",
    ),
    info(
        ACTIVITY_ATTEMPT_SECONDS,
        MetricKind::Histogram,
        Some(ACTIVITY_TYPE),
        "Activity attempt duration.",
    ),
    info(
        STORE_COMMIT_SECONDS,
        MetricKind::Histogram,
        None,
        "Group-commit transaction duration.",
    ),
    info(
        STORE_FLUSH_SECONDS,
        MetricKind::Histogram,
        None,
        "Store flush (and fsync) duration.",
    ),
    info(
        READY_QUEUE_DEPTH,
        MetricKind::Gauge,
        None,
        "Runs queued for an activation (sampled).",
    ),
    info(
        PENDING_TIMERS,
        MetricKind::Gauge,
        None,
        "Durable timers not fired yet (sampled).",
    ),
    info(
        HUMAN_TASKS_OPEN,
        MetricKind::Gauge,
        None,
        "Human tasks waiting for a decision (sampled).",
    ),
    info(
        HUMAN_TASKS_OVERDUE,
        MetricKind::Gauge,
        None,
        "Open human tasks past their deadline (sampled).",
    ),
];

/// Hands every metric's help text to the installed recorder (call once,
/// after installing it).
pub fn describe() {
    for m in ALL {
        match m.kind {
            MetricKind::Counter => metrics::describe_counter!(m.name, m.help),
            MetricKind::Gauge => metrics::describe_gauge!(m.name, m.help),
            MetricKind::Histogram => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Most distinct label values interned; past it, further names share one
/// label value, so that type names sent by callers cannot grow memory
/// without bound.
const MAX_INTERNED: usize = 1024;

/// The label value of names past [`MAX_INTERNED`].
const OVERFLOW: &str = "(other)";

/// The one-label slice `key = value`, interned: the first call for a value
/// allocates it for the life of the process, later calls return it. Meant
/// to be called once per type (when it is registered), not per report.
pub fn type_labels(key: &'static str, value: &str) -> &'static [Label] {
    type Interned = HashMap<&'static str, HashMap<Box<str>, &'static [Label]>>;
    static INTERNED: OnceLock<Mutex<Interned>> = OnceLock::new();
    let mut interned = INTERNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let values = interned.entry(key).or_default();
    if let Some(labels) = values.get(value) {
        return labels;
    }
    let value = if values.len() >= MAX_INTERNED {
        OVERFLOW
    } else {
        value
    };
    values
        .entry(Box::from(value))
        .or_insert_with(|| Box::leak(Box::new([Label::new(key, value.to_owned())])))
}

/// The counter `name{labels}` of the installed recorder.
pub fn counter(name: &'static str, labels: &'static [Label]) -> Counter {
    let key = Key::from_static_parts(name, labels);
    metrics::with_recorder(|r| r.register_counter(&key, &METADATA))
}

/// The histogram `name{labels}` of the installed recorder.
pub fn histogram(name: &'static str, labels: &'static [Label]) -> Histogram {
    let key = Key::from_static_parts(name, labels);
    metrics::with_recorder(|r| r.register_histogram(&key, &METADATA))
}

/// The gauge `name` (no labels) of the installed recorder.
pub fn gauge(name: &'static str) -> Gauge {
    let key = Key::from_static_name(name);
    metrics::with_recorder(|r| r.register_gauge(&key, &METADATA))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_interned_once_per_value() {
        let a = type_labels(WORKFLOW_TYPE, "interned-a");
        let again = type_labels(WORKFLOW_TYPE, "interned-a");
        assert!(std::ptr::eq(a, again));
        assert_eq!(a[0].key(), WORKFLOW_TYPE);
        assert_eq!(a[0].value(), "interned-a");
        let other_key = type_labels(ACTIVITY_TYPE, "interned-a");
        assert!(!std::ptr::eq(a, other_key));
    }

    #[test]
    fn every_name_is_listed_once_with_prometheus_suffixes() {
        let mut names: Vec<_> = ALL.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for m in ALL {
            assert!(m.name.starts_with("refrain_"), "{}", m.name);
            match m.kind {
                MetricKind::Counter => assert!(m.name.ends_with("_total"), "{}", m.name),
                MetricKind::Histogram => assert!(m.name.ends_with("_seconds"), "{}", m.name),
                MetricKind::Gauge => assert!(!m.name.ends_with("_total"), "{}", m.name),
            }
        }
    }
}
