//! The API's answers and request bodies, as the client reads and writes
//! them: the JSON of the API (`/api/v1/openapi.json`), field for field.
//!
//! Answers are read leniently (a field the server adds later is ignored,
//! one it leaves out takes its default) so that a newer server still
//! answers an older client; request bodies are written exactly, since the
//! server refuses unknown fields.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One run in a list (`GET /api/v1/workflows`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The workflow id.
    pub workflow_id: String,
    /// The run number.
    pub run: u64,
    /// The registered workflow type.
    pub workflow_type: String,
    /// `running`, `completed`, `failed`, `continued-as-new`, `cancelled`
    /// or `terminated`.
    pub status: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC, for a closed run.
    #[serde(default)]
    pub closed_at: Option<String>,
}

/// One page of runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunList {
    /// The runs of the page.
    pub runs: Vec<RunSummary>,
    /// Where the next page starts (`ListQuery::cursor`), if there is one.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Which runs to list; every field is optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    /// Only runs in this state (as [`RunSummary::status`] spells it).
    pub status: Option<String>,
    /// Only runs of this workflow type.
    pub workflow_type: Option<String>,
    /// Only workflow ids starting with this.
    pub id_prefix: Option<String>,
    /// Only runs started after this time (RFC 3339).
    pub started_after: Option<String>,
    /// Only runs started before this time (RFC 3339).
    pub started_before: Option<String>,
    /// At most this many runs (1..=1000; the server's default is 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before (given out for the same
    /// order).
    pub cursor: Option<String>,
    /// `newest` (latest started first) or `oldest` (the server's default).
    pub order: Option<String>,
}

impl ListQuery {
    /// The query string, `?…` (empty without filters), encoded.
    pub(crate) fn to_query_string(&self) -> String {
        let limit = self.limit.map(|n| n.to_string());
        let pairs = [
            ("status", self.status.as_deref()),
            ("type", self.workflow_type.as_deref()),
            ("id_prefix", self.id_prefix.as_deref()),
            ("started_after", self.started_after.as_deref()),
            ("started_before", self.started_before.as_deref()),
            ("limit", limit.as_deref()),
            ("cursor", self.cursor.as_deref()),
            ("order", self.order.as_deref()),
        ];
        let mut query = String::new();
        for (name, value) in pairs {
            if let Some(value) = value {
                query.push(if query.is_empty() { '?' } else { '&' });
                query.push_str(name);
                query.push('=');
                query.push_str(&super::encode(value));
            }
        }
        query
    }
}

/// What a start, or a signal-with-start, did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Started {
    /// The workflow id.
    pub workflow_id: String,
    /// The run that now stands for the id.
    pub run: u64,
    /// False when the conflict policy returned an open run instead.
    pub started: bool,
}

/// The run a signal, cancellation or termination reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRef {
    /// The workflow id.
    pub workflow_id: String,
    /// The run.
    pub run: u64,
}

/// One thing an open run waits on, in words (`text`) and in fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaitingOn {
    /// `activity`, `timer`, `human_task`, `child`, `signal`, `activation`
    /// or `task_failure`.
    pub kind: String,
    /// One line for people.
    pub text: String,
    /// The kind's fields.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// The latest run of a workflow (`GET /api/v1/workflows/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// The workflow id.
    pub workflow_id: String,
    /// The run.
    pub run: u64,
    /// The workflow type.
    pub workflow_type: String,
    /// As [`RunSummary::status`].
    pub status: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC, for a closed run.
    #[serde(default)]
    pub closed_at: Option<String>,
    /// A completed run's result.
    #[serde(default)]
    pub result: Option<Value>,
    /// A failed run's failure.
    #[serde(default)]
    pub failure: Option<Value>,
    /// How many events its history has.
    #[serde(default)]
    pub history_events: u64,
    /// What an open run waits on.
    #[serde(default)]
    pub waiting_on: Vec<WaitingOn>,
    /// Its pending activities.
    #[serde(default)]
    pub pending_activities: Vec<Value>,
    /// Its pending timers.
    #[serde(default)]
    pub pending_timers: Vec<Value>,
    /// Its open human tasks.
    #[serde(default)]
    pub human_tasks: Vec<HumanTask>,
    /// The report of its failing activation, if one fails.
    #[serde(default)]
    pub last_task_failure: Option<Value>,
    /// The run that started it as a child.
    #[serde(default)]
    pub parent: Option<Value>,
    /// The run it continues.
    #[serde(default)]
    pub continued_from: Option<Value>,
    /// The run that continues it.
    #[serde(default)]
    pub continued_to: Option<Value>,
}

/// An open human task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HumanTask {
    /// `RUN/CMD`, as [`RemoteClient::decide`](super::RemoteClient::decide)
    /// takes it.
    pub id: String,
    /// The workflow that asks.
    pub workflow_id: String,
    /// Its run.
    pub run: u64,
    /// The task's command in the run.
    pub cmd: u64,
    /// What is asked.
    pub task: String,
    /// Who has it now: a person or a group.
    pub assignee: String,
    /// What the person needs to decide.
    #[serde(default)]
    pub form: Option<Value>,
    /// When the assignee's time runs out (RFC 3339).
    #[serde(default)]
    pub deadline: Option<String>,
    /// When the assignee got it (RFC 3339).
    pub assigned_at: String,
    /// Escalation level: 0 for the first assignee.
    #[serde(default)]
    pub level: u32,
    /// Who gets it when the deadline passes, if anyone does.
    #[serde(default)]
    pub escalates_to: Option<String>,
    /// The group the assignee claimed it from, if claimed.
    #[serde(default)]
    pub claimed_from: Option<String>,
    /// Past its deadline.
    #[serde(default)]
    pub overdue: bool,
}

/// Open human tasks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskList {
    /// The tasks.
    pub tasks: Vec<HumanTask>,
}

/// What a decision recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    /// The workflow.
    pub workflow_id: String,
    /// Its run.
    pub run: u64,
    /// The task (`RUN/CMD` or its name, as the server gives it).
    pub task: Value,
    /// The identity the server recorded as the decider.
    pub decided_by: String,
}

/// What a claim recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claimed {
    /// The workflow.
    pub workflow_id: String,
    /// Its run.
    pub run: u64,
    /// The task's name.
    pub task: String,
    /// The group it was assigned to.
    pub claimed_from: String,
    /// The identity the server recorded as the claimer.
    pub claimed_by: String,
}

/// A schedule, as the server describes it. Its fields are kept as given
/// (the CLI shows them all); [`Schedule::id`] and [`Schedule::paused`]
/// read the two every caller needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Schedule(pub Map<String, Value>);

impl Schedule {
    /// Its id.
    pub fn id(&self) -> Option<&str> {
        self.0
            .get("id")
            .or_else(|| self.0.get("schedule_id"))
            .and_then(Value::as_str)
    }

    /// Whether it is paused.
    pub fn paused(&self) -> Option<bool> {
        self.0.get("paused").and_then(Value::as_bool)
    }
}

/// Every schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleList {
    /// The schedules.
    pub schedules: Vec<Schedule>,
}

/// What a schedule's trigger did: it acts as the schedule's own fire,
/// under its overlap policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Triggered {
    /// The schedule.
    pub schedule: String,
    /// `started`, `buffered` (held until the open run closes) or
    /// `skipped` (dropped by the overlap policy).
    #[serde(default)]
    pub outcome: String,
    /// The fire time it stands for (RFC 3339).
    #[serde(default)]
    pub fire_time: Option<String>,
    /// The workflow id of the run started, or of the open run that held
    /// the fire back.
    pub workflow_id: String,
    /// That run.
    pub run: u64,
}

/// The answer of a query or an update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The handler's answer.
    pub result: Value,
}

/// What a start does when a run of the id is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Refuse (`already_running`).
    #[default]
    Fail,
    /// Return the open run.
    AttachToOpen,
    /// Return the latest run, open or closed.
    UseExisting,
}

/// `POST /api/v1/workflows`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StartBody {
    /// The registered workflow type.
    pub workflow_type: String,
    /// The id to start it under.
    pub workflow_id: String,
    /// Its input.
    pub input: Value,
    /// What to do when a run of the id is open.
    pub on_conflict: OnConflict,
}

/// `POST /api/v1/workflows/{id}/signal-with-start`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SignalWithStartBody {
    /// The signal's name.
    pub signal: String,
    /// The signal's value.
    pub signal_input: Value,
    /// The type to start if no run is open.
    pub workflow_type: String,
    /// Its input.
    pub input: Value,
}

/// One batch of a purge (`POST /api/v1/purge`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PurgeQuery {
    /// Closed runs are kept this long: `30d`, `12h`.
    pub older_than: String,
    /// Only runs of this workflow type.
    pub workflow_type: Option<String>,
    /// Only name the runs.
    pub dry_run: bool,
    /// The `next` of the batch before.
    pub after: Option<u64>,
}

/// What one purge batch did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PurgeAnswer {
    /// Whether it only named the runs.
    pub dry_run: bool,
    /// The runs deleted (dry run: that would be).
    pub runs: Vec<RunSummary>,
    /// How many runs the batch looked at.
    pub examined: u64,
    /// Where the next batch starts; `None` when done.
    #[serde(default)]
    pub next: Option<u64>,
}
