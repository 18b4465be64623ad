//! Run histories as files: export a run from a store, read it back, and
//! feed it to a replayer (`refrain_worker::Replayer`) to check that changed
//! workflow code still replays every history recorded in production.
//!
//! A [`HistoryExport`] has two file forms:
//!
//! - **JSON** (`.json`): stable, documented below, readable and diffable.
//!   Meant for fixtures checked into a repository and for operators.
//! - **Binary** (any other extension, conventionally `.bin`): the export
//!   passed through [`refrain_history::codec`], the envelope the store uses
//!   itself. Exact and compact, but tied to the codec's schema version.
//!
//! [`HistoryExport::read_file`] looks at the content, not the extension:
//! binary files start with the codec magic `RF`, JSON files never do.
//!
//! # The JSON format, version 1
//!
//! ```
//! # use refrain::history_file::HistoryExport;
//! let text = r#"{
//!   "format": "refrain-history",
//!   "version": 1,
//!   "workflow_id": "order-1",
//!   "run": 3,
//!   "workflow_type": "order-to-cash",
//!   "events": [
//!     {
//!       "seq": 1,
//!       "type": "WorkflowStarted",
//!       "workflow_type": "order-to-cash",
//!       "workflow_id": "order-1",
//!       "input": {"sku":"A-1","qty":2},
//!       "seed": "16045690984503098046",
//!       "start_time": 1700000000000,
//!       "continued_from": null,
//!       "parent": null
//!     },
//!     {
//!       "seq": 2,
//!       "type": "ActivationStarted",
//!       "time": 1700000000005
//!     },
//!     {
//!       "seq": 3,
//!       "type": "ActivityScheduled",
//!       "cmd": 1,
//!       "activity_type": "charge-payment",
//!       "input": 4200,
//!       "options": {
//!         "start_to_close_ms": 30000,
//!         "schedule_to_close_ms": null,
//!         "heartbeat_timeout_ms": 2500.5,
//!         "retry": {
//!           "initial_interval_ms": 1000,
//!           "backoff_coefficient": 2.0,
//!           "max_interval_ms": 100000,
//!           "max_attempts": 3,
//!           "non_retryable_kinds": [
//!             "card-declined"
//!           ]
//!         }
//!       },
//!       "callsite": "examples/order_to_cash.rs:512:14"
//!     },
//!     {
//!       "seq": 4,
//!       "type": "ActivationStarted",
//!       "time": 1700000003100
//!     },
//!     {
//!       "seq": 5,
//!       "type": "ActivityFailed",
//!       "cmd": 1,
//!       "attempt": 3,
//!       "failure": {
//!         "kind": "gateway",
//!         "message": "payment gateway unavailable",
//!         "non_retryable": false,
//!         "cause": "application",
//!         "details": {
//!           "$bytes": "00ff"
//!         }
//!       }
//!     },
//!     {
//!       "seq": 6,
//!       "type": "SignalReceived",
//!       "name": "stock-resolved",
//!       "payload": {"substitute":"A-2"},
//!       "sender": "ops@example.com"
//!     },
//!     {
//!       "seq": 7,
//!       "type": "WorkflowFailed",
//!       "failure": {
//!         "kind": "payment",
//!         "message": "charge failed",
//!         "non_retryable": true,
//!         "cause": "application",
//!         "details": null
//!       }
//!     }
//!   ]
//! }"#;
//! let export = HistoryExport::from_json(text)?;
//! assert_eq!(export.events.len(), 7);
//! assert_eq!(export.to_json(), text); // the writer produces exactly this text
//! # Ok::<(), refrain::history_file::HistoryFileError>(())
//! ```
//!
//! - The top level holds `format` (always `"refrain-history"`), `version`
//!   (1; any other version is refused with
//!   [`HistoryFileError::UnsupportedVersion`]), the run's `workflow_id`,
//!   `run` number and `workflow_type`, and `events`.
//! - Each event is an object with `seq` (1-based position, must equal its
//!   index + 1), `type` ([`Event::kind`]) and the variant's fields under
//!   their Rust names. Every event kind and its fields:
//!
//!   | `type` | fields |
//!   |---|---|
//!   | `WorkflowStarted` | `workflow_type`, `workflow_id`, `input`, `seed`, `start_time`, `continued_from` (run or null), `parent` (`{workflow_id, run, cmd}` or null) |
//!   | `ActivationStarted` | `time` |
//!   | `ActivityScheduled` | `cmd`, `activity_type`, `input`, `options`, `callsite` |
//!   | `ActivityCompleted` | `cmd`, `attempt`, `result` |
//!   | `ActivityFailed` | `cmd`, `attempt`, `failure` |
//!   | `TimerStarted` | `cmd`, `fire_at`, `callsite` |
//!   | `TimerFired` | `cmd` |
//!   | `TimerCancelled` | `cmd` |
//!   | `SignalReceived` | `name`, `payload`, `sender` (string or null) |
//!   | `SideEffectRecorded` | `cmd`, `value`, `callsite` |
//!   | `WorkflowCompleted` | `result` |
//!   | `WorkflowFailed` | `failure` |
//!   | `PatchMarker` | `patch_id`, `deprecated` |
//!   | `WorkflowContinuedAsNew` | `input`, `seed`, `carried_signals` (list of `{name, payload, sender}`) |
//!   | `WorkflowCancelRequested` | `reason`, `requested_by` (string or null) |
//!   | `ActivityCancelRequested` | `cmd` |
//!   | `WorkflowCancelled` | `reason` |
//!   | `WorkflowTerminated` | `reason` |
//!   | `ChildWorkflowStarted` | `cmd`, `workflow_type`, `workflow_id`, `input`, `seed`, `parent_close` (`"terminate"`, `"request-cancel"` or `"abandon"`), `callsite` |
//!   | `ChildWorkflowCompleted` | `cmd`, `result` |
//!   | `ChildWorkflowFailed` | `cmd`, `failure` |
//!   | `ChildWorkflowCancelRequested` | `cmd` |
//!   | `HumanTaskAssigned` | `cmd`, `task`, `assignee`, `form` (payload or null), `deadline` (timestamp or null), `level`, `callsite` |
//!   | `HumanTaskReminded` | `cmd`, `assignee` |
//!   | `HumanTaskEscalated` | `cmd`, `from`, `to`, `level`, `deadline` (timestamp or null) |
//!   | `HumanTaskDecided` | `cmd`, `decision`, `decided_by`, `comment` (string or null), `decided_at` |
//!   | `HumanTaskClosed` | `cmd`, `reason` |
//!
//! - **Payloads** (inputs, results, signal values, side-effect values,
//!   failure details) are JSON bytes and are embedded verbatim as JSON
//!   values. A payload whose bytes are not exactly one JSON value (binary
//!   data, surrounding whitespace, the empty payload), or that is itself an
//!   object with a `"$bytes"` key, is written as `{"$bytes": "<lower-case
//!   hex>"}`. An optional payload (`failure.details`) is `null` when absent;
//!   a present payload whose bytes are `null` is written in the `$bytes`
//!   form so the two stay apart.
//! - **Timestamps** (`start_time`, `time`, `fire_at`) are integer
//!   milliseconds since the Unix epoch, UTC.
//! - **Durations** (`*_ms` fields of `options`) are milliseconds: an
//!   integer, or a decimal with up to six fractional digits when the
//!   duration is not a whole number of milliseconds (`2500.5` is 2.5005 s).
//!   Absent timeouts are `null`.
//! - **Seeds** are decimal strings: they use all 64 bits, which tools that
//!   read JSON numbers as doubles (JavaScript, older `jq`) would round,
//!   silently changing every random value on replay. A plain number is
//!   accepted on input.
//! - `backoff_coefficient` is a JSON number; a non-finite one is the string
//!   `"NaN"`, `"inf"` or `"-inf"`.
//! - **Failures** are `{kind, message, non_retryable, cause, details}`, with
//!   `cause` one of `"application"`, `"panicked"`, `"not-registered"`,
//!   `"cancelled"`, `"terminated"`, `"timeout-start-to-close"`,
//!   `"timeout-schedule-to-close"`, `"timeout-heartbeat"`.
//! - **Callsites** are `"file:line:column"` strings (the file may itself
//!   contain `:`; the last two fields are the numbers), or `null` where the
//!   location is unknown (the default, empty callsite).
//!
//! The writer always emits every field, in the order shown, pretty-printed
//! with two-space indentation. The reader accepts any whitespace and field
//! order, lets optional fields be omitted (read as null), and refuses
//! unknown fields, unknown event types and wrong types with a
//! [`HistoryFileError`] naming the event index and field, so that a typo in
//! a hand-edited fixture is reported rather than silently dropped. Import
//! then export of a file written by this module gives the same text, and
//! export then import gives equal [`Event`]s.

use refrain_history::codec::{self, CodecError};
use refrain_history::{
    ActivityOptions, Callsite, CommandSeq, Event, Failure, FailureCause, ParentClosePolicy,
    ParentRef, Payload, RetryPolicy, RunId, SignalRecord, Store, StoreError, TimeoutKind,
    Timestamp, WorkflowId,
};
use serde::de::Deserialize;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Value of the top-level `"format"` field of the JSON form.
pub const JSON_FORMAT: &str = "refrain-history";
/// Version of the JSON form this build writes and reads.
pub const JSON_VERSION: u64 = 1;

/// One run's complete history, as exported to a file.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryExport {
    /// The workflow id of the run.
    pub workflow_id: WorkflowId,
    /// The store's run number.
    pub run: RunId,
    /// Registered workflow type.
    pub workflow_type: String,
    /// The history; `events[i]` is event seq `i + 1`.
    pub events: Vec<Event>,
}

/// Which file form to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// The documented JSON form.
    Json,
    /// The codec envelope.
    Binary,
}

impl FileFormat {
    /// JSON for a `.json` extension (any case), binary for anything else.
    pub fn for_path(path: &Path) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => FileFormat::Json,
            _ => FileFormat::Binary,
        }
    }

    /// The form of `bytes`: binary if they start with the codec magic.
    pub fn sniff(bytes: &[u8]) -> FileFormat {
        if bytes.starts_with(&codec::MAGIC) {
            FileFormat::Binary
        } else {
            FileFormat::Json
        }
    }
}

impl HistoryExport {
    /// The latest run of `workflow_id` in `store`.
    ///
    /// # Errors
    /// `Store(WorkflowNotFound)` if no run of the id exists; other store
    /// errors (`Corrupt` for undecodable events).
    pub fn from_store(store: &Store, workflow_id: &WorkflowId) -> Result<Self, HistoryFileError> {
        let (run, _) =
            store
                .latest_run(workflow_id)?
                .ok_or_else(|| StoreError::WorkflowNotFound {
                    workflow_id: workflow_id.clone(),
                })?;
        Self::from_run(store, run)
    }

    /// Run `run` of `store`, whichever workflow id it belongs to.
    ///
    /// # Errors
    /// `Store(RunNotFound)` if the run does not exist; other store errors.
    pub fn from_run(store: &Store, run: RunId) -> Result<Self, HistoryFileError> {
        let record = store
            .run_record(run)?
            .ok_or(StoreError::RunNotFound { run })?;
        let events = store.read_history(run)?;
        Ok(HistoryExport {
            workflow_id: record.workflow_id,
            run,
            workflow_type: record.workflow_type,
            events,
        })
    }

    /// The JSON form, pretty-printed (see the module docs).
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(
            &mut out,
            serde_json::ser::PrettyFormatter::with_indent(b"  "),
        );
        // The tree holds only strings, integers, finite floats and raw
        // values that were validated when they were built, so writing it to
        // memory has no way to fail.
        if let Err(e) = export_json(self).serialize(&mut ser) {
            unreachable!("serializing a history tree to memory failed: {e}");
        }
        // serde_json writes UTF-8 only.
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }

    /// Parses the JSON form.
    ///
    /// # Errors
    /// `Syntax` for text that is not JSON, `NotAHistory`,
    /// `UnsupportedVersion`, and the field errors (`MissingField`,
    /// `UnknownField`, `InvalidField`, `UnknownEventType`, `SeqMismatch`)
    /// naming the event index and field.
    pub fn from_json(text: &str) -> Result<Self, HistoryFileError> {
        let top: &RawValue = serde_json::from_str(text).map_err(|e| syntax_error(&e))?;
        parse_export(top)
    }

    /// Parses the JSON form from bytes, which must be UTF-8.
    ///
    /// # Errors
    /// As [`HistoryExport::from_json`]; `Syntax` for invalid UTF-8.
    pub fn from_json_slice(bytes: &[u8]) -> Result<Self, HistoryFileError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let (line, column) = line_column(&bytes[..e.valid_up_to()]);
            HistoryFileError::Syntax {
                line,
                column,
                message: format!("invalid UTF-8: {e}"),
            }
        })?;
        Self::from_json(text)
    }

    /// The binary form: the export in the codec envelope.
    ///
    /// # Errors
    /// `Codec` if the export exceeds the codec's size limit.
    pub fn to_bytes(&self) -> Result<Vec<u8>, HistoryFileError> {
        codec::encode(self).map_err(HistoryFileError::Codec)
    }

    /// Parses the binary form.
    ///
    /// # Errors
    /// `Codec` for anything the codec rejects (bad magic, checksum,
    /// truncation, unknown schema version, undecodable payload).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HistoryFileError> {
        codec::decode(bytes).map_err(HistoryFileError::Codec)
    }

    /// Parses either form, telling them apart by content.
    ///
    /// # Errors
    /// As [`HistoryExport::from_bytes`] or [`HistoryExport::from_json_slice`].
    pub fn parse(bytes: &[u8]) -> Result<Self, HistoryFileError> {
        match FileFormat::sniff(bytes) {
            FileFormat::Binary => Self::from_bytes(bytes),
            FileFormat::Json => Self::from_json_slice(bytes),
        }
    }

    /// Writes the export to `path`: JSON for a `.json` extension, binary
    /// otherwise. The file is encoded completely before it is created.
    ///
    /// # Errors
    /// `Io` naming the path; `Codec` for an oversized binary export.
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<(), HistoryFileError> {
        let path = path.as_ref();
        self.write_file_as(path, FileFormat::for_path(path))
    }

    /// Writes the export to `path` in `format`, whatever the extension.
    ///
    /// # Errors
    /// As [`HistoryExport::write_file`].
    pub fn write_file_as(
        &self,
        path: impl AsRef<Path>,
        format: FileFormat,
    ) -> Result<(), HistoryFileError> {
        let path = path.as_ref();
        let bytes = match format {
            FileFormat::Json => {
                let mut text = self.to_json();
                text.push('\n');
                text.into_bytes()
            }
            FileFormat::Binary => self.to_bytes()?,
        };
        std::fs::write(path, bytes).map_err(|source| HistoryFileError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads an export written by [`HistoryExport::write_file`], in either
    /// form (decided by content, not extension).
    ///
    /// # Errors
    /// `Io` naming the path, or any parse error.
    pub fn read_file(path: impl AsRef<Path>) -> Result<Self, HistoryFileError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| HistoryFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes)
    }
}

/// Why a history could not be exported, written or read.
#[derive(Debug)]
#[non_exhaustive]
pub enum HistoryFileError {
    /// Reading or writing the file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The binary form could not be decoded (or encoded).
    Codec(CodecError),
    /// The text is not JSON (or not UTF-8).
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The JSON is not a Refrain history (no or another `"format"`).
    NotAHistory {
        /// What was found instead.
        reason: String,
    },
    /// The file's `"version"` is one this build cannot read.
    UnsupportedVersion {
        /// The version found, as written.
        found: String,
        /// The version this build reads.
        supported: u64,
    },
    /// A required field is absent.
    MissingField {
        /// Index in `events` (0-based), or `None` for the top level.
        event: Option<usize>,
        /// Dotted path of the field within the event or top level.
        field: String,
    },
    /// A field this version of the format does not have.
    UnknownField {
        /// Index in `events`, or `None` for the top level.
        event: Option<usize>,
        /// Dotted path of the field.
        field: String,
    },
    /// A field has the wrong type or an impossible value.
    InvalidField {
        /// Index in `events`, or `None` for the top level.
        event: Option<usize>,
        /// Dotted path of the field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An event's `"type"` is not an event kind this build knows.
    UnknownEventType {
        /// Index in `events`.
        event: usize,
        /// The type found.
        found: String,
    },
    /// An event's `"seq"` does not match its position.
    SeqMismatch {
        /// Index in `events`.
        event: usize,
        /// `event + 1`.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// The store could not provide the history (`WorkflowNotFound`,
    /// `RunNotFound`, `Corrupt`, ...).
    Store(StoreError),
}

impl From<StoreError> for HistoryFileError {
    fn from(e: StoreError) -> Self {
        HistoryFileError::Store(e)
    }
}

/// `events[3]` or `the top level`, for messages.
fn location(event: Option<usize>) -> String {
    match event {
        Some(i) => format!("events[{i}] (seq {})", i + 1),
        None => "the top level".into(),
    }
}

impl fmt::Display for HistoryFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryFileError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            HistoryFileError::Codec(e) => write!(f, "not a readable binary history: {e}"),
            HistoryFileError::Syntax {
                line,
                column,
                message,
            } => write!(f, "not JSON (line {line}, column {column}): {message}"),
            HistoryFileError::NotAHistory { reason } => {
                write!(f, "not a Refrain history file: {reason}")
            }
            HistoryFileError::UnsupportedVersion { found, supported } => write!(
                f,
                "history file version {found} is not supported (this build reads version {supported})"
            ),
            HistoryFileError::MissingField { event, field } => {
                write!(f, "missing field `{field}` in {}", location(*event))
            }
            HistoryFileError::UnknownField { event, field } => {
                write!(f, "unknown field `{field}` in {}", location(*event))
            }
            HistoryFileError::InvalidField {
                event,
                field,
                reason,
            } => write!(f, "invalid field `{field}` in {}: {reason}", location(*event)),
            HistoryFileError::UnknownEventType { event, found } => write!(
                f,
                "unknown event type {found:?} in {}",
                location(Some(*event))
            ),
            HistoryFileError::SeqMismatch {
                event,
                expected,
                found,
            } => write!(
                f,
                "events[{event}] has seq {found}, expected {expected} (events must be complete and in order)"
            ),
            HistoryFileError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for HistoryFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HistoryFileError::Io { source, .. } => Some(source),
            HistoryFileError::Codec(e) => Some(e),
            HistoryFileError::Store(e) => Some(e),
            _ => None,
        }
    }
}

fn syntax_error(e: &serde_json::Error) -> HistoryFileError {
    HistoryFileError::Syntax {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    }
}

fn line_column(prefix: &[u8]) -> (usize, usize) {
    let line = 1 + prefix.iter().filter(|&&b| b == b'\n').count();
    let column = 1 + prefix.iter().rev().take_while(|&&b| b != b'\n').count();
    (line, column)
}

// ---------------------------------------------------------------------------
// Writing. A small tree rather than serde_json::Value, because Value can
// neither keep field order (readability) nor embed payload bytes verbatim
// (exact round trips).

enum J {
    Null,
    Bool(bool),
    Num(u64),
    Float(f64),
    Str(String),
    Raw(Box<RawValue>),
    List(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Null => s.serialize_unit(),
            J::Bool(b) => s.serialize_bool(*b),
            J::Num(n) => s.serialize_u64(*n),
            J::Float(x) => s.serialize_f64(*x),
            J::Str(v) => s.serialize_str(v),
            J::Raw(r) => r.serialize(s),
            J::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            J::Obj(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

fn str_j(s: &str) -> J {
    J::Str(s.to_owned())
}

fn export_json(export: &HistoryExport) -> J {
    let HistoryExport {
        workflow_id,
        run,
        workflow_type,
        events,
    } = export;
    J::Obj(vec![
        ("format", str_j(JSON_FORMAT)),
        ("version", J::Num(JSON_VERSION)),
        ("workflow_id", str_j(workflow_id.as_str())),
        ("run", J::Num(run.0)),
        ("workflow_type", str_j(workflow_type)),
        (
            "events",
            J::List(
                events
                    .iter()
                    .zip(1u64..)
                    .map(|(e, seq)| event_json(seq, e))
                    .collect(),
            ),
        ),
    ])
}

/// The JSON object of one event. Every variant and field is destructured
/// without `..`, so that adding either to `Event` stops this crate from
/// compiling until the format handles it.
fn event_json(seq: u64, event: &Event) -> J {
    let mut o: Vec<(&'static str, J)> = vec![("seq", J::Num(seq)), ("type", str_j(event.kind()))];
    match event {
        Event::WorkflowStarted {
            workflow_type,
            workflow_id,
            input,
            seed,
            start_time,
            continued_from,
            parent,
        } => {
            o.push(("workflow_type", str_j(workflow_type)));
            o.push(("workflow_id", str_j(workflow_id.as_str())));
            o.push(("input", payload_json(input)));
            o.push(("seed", seed_json(*seed)));
            o.push(("start_time", J::Num(start_time.0)));
            o.push((
                "continued_from",
                continued_from.map_or(J::Null, |r| J::Num(r.0)),
            ));
            o.push(("parent", parent.as_ref().map_or(J::Null, parent_json)));
        }
        Event::ActivationStarted { time } => o.push(("time", J::Num(time.0))),
        Event::ActivityScheduled {
            cmd,
            activity_type,
            input,
            options,
            callsite,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("activity_type", str_j(activity_type)));
            o.push(("input", payload_json(input)));
            o.push(("options", options_json(options)));
            o.push(("callsite", callsite_json(callsite)));
        }
        Event::ActivityCompleted {
            cmd,
            attempt,
            result,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("attempt", J::Num(u64::from(*attempt))));
            o.push(("result", payload_json(result)));
        }
        Event::ActivityFailed {
            cmd,
            attempt,
            failure,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("attempt", J::Num(u64::from(*attempt))));
            o.push(("failure", failure_json(failure)));
        }
        Event::TimerStarted {
            cmd,
            fire_at,
            callsite,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("fire_at", J::Num(fire_at.0)));
            o.push(("callsite", callsite_json(callsite)));
        }
        Event::TimerFired { cmd } | Event::TimerCancelled { cmd } => {
            o.push(("cmd", cmd_json(*cmd)));
        }
        Event::SignalReceived {
            name,
            payload,
            sender,
        } => {
            o.push(("name", str_j(name)));
            o.push(("payload", payload_json(payload)));
            o.push(("sender", sender.as_deref().map_or(J::Null, str_j)));
        }
        Event::SideEffectRecorded {
            cmd,
            value,
            callsite,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("value", payload_json(value)));
            o.push(("callsite", callsite_json(callsite)));
        }
        Event::WorkflowCompleted { result } => o.push(("result", payload_json(result))),
        Event::WorkflowFailed { failure } => o.push(("failure", failure_json(failure))),
        Event::PatchMarker {
            patch_id,
            deprecated,
        } => {
            o.push(("patch_id", str_j(patch_id)));
            o.push(("deprecated", J::Bool(*deprecated)));
        }
        Event::WorkflowContinuedAsNew {
            input,
            seed,
            carried_signals,
        } => {
            o.push(("input", payload_json(input)));
            o.push(("seed", seed_json(*seed)));
            o.push((
                "carried_signals",
                J::List(carried_signals.iter().map(signal_record_json).collect()),
            ));
        }
        Event::WorkflowCancelRequested {
            reason,
            requested_by,
        } => {
            o.push(("reason", str_j(reason)));
            o.push((
                "requested_by",
                requested_by.as_deref().map_or(J::Null, str_j),
            ));
        }
        Event::ActivityCancelRequested { cmd } => o.push(("cmd", cmd_json(*cmd))),
        Event::WorkflowCancelled { reason } | Event::WorkflowTerminated { reason } => {
            o.push(("reason", str_j(reason)));
        }
        Event::ChildWorkflowStarted {
            cmd,
            workflow_type,
            workflow_id,
            input,
            seed,
            parent_close,
            callsite,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("workflow_type", str_j(workflow_type)));
            o.push(("workflow_id", str_j(workflow_id.as_str())));
            o.push(("input", payload_json(input)));
            o.push(("seed", seed_json(*seed)));
            o.push(("parent_close", str_j(parent_close_name(*parent_close))));
            o.push(("callsite", callsite_json(callsite)));
        }
        Event::ChildWorkflowCompleted { cmd, result } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("result", payload_json(result)));
        }
        Event::ChildWorkflowFailed { cmd, failure } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("failure", failure_json(failure)));
        }
        Event::ChildWorkflowCancelRequested { cmd } => o.push(("cmd", cmd_json(*cmd))),
        Event::HumanTaskAssigned {
            cmd,
            task,
            assignee,
            form,
            deadline,
            level,
            callsite,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("task", str_j(task)));
            o.push(("assignee", str_j(assignee)));
            o.push(("form", opt_payload_json(form.as_ref())));
            o.push(("deadline", deadline.map_or(J::Null, |t| J::Num(t.0))));
            o.push(("level", J::Num(u64::from(*level))));
            o.push(("callsite", callsite_json(callsite)));
        }
        Event::HumanTaskReminded { cmd, assignee } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("assignee", str_j(assignee)));
        }
        Event::HumanTaskEscalated {
            cmd,
            from,
            to,
            level,
            deadline,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("from", str_j(from)));
            o.push(("to", str_j(to)));
            o.push(("level", J::Num(u64::from(*level))));
            o.push(("deadline", deadline.map_or(J::Null, |t| J::Num(t.0))));
        }
        Event::HumanTaskDecided {
            cmd,
            decision,
            decided_by,
            comment,
            decided_at,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("decision", payload_json(decision)));
            o.push(("decided_by", str_j(decided_by)));
            o.push(("comment", comment.as_deref().map_or(J::Null, str_j)));
            o.push(("decided_at", J::Num(decided_at.0)));
        }
        Event::HumanTaskClosed { cmd, reason } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("reason", str_j(reason)));
        }
    }
    J::Obj(o)
}

fn cmd_json(cmd: CommandSeq) -> J {
    J::Num(u64::from(cmd.0))
}

fn seed_json(seed: u64) -> J {
    J::Str(seed.to_string())
}

fn parent_json(p: &ParentRef) -> J {
    let ParentRef {
        workflow_id,
        run,
        cmd,
    } = p;
    J::Obj(vec![
        ("workflow_id", str_j(workflow_id.as_str())),
        ("run", J::Num(run.0)),
        ("cmd", cmd_json(*cmd)),
    ])
}

fn signal_record_json(s: &SignalRecord) -> J {
    let SignalRecord {
        name,
        payload,
        sender,
    } = s;
    J::Obj(vec![
        ("name", str_j(name)),
        ("payload", payload_json(payload)),
        ("sender", sender.as_deref().map_or(J::Null, str_j)),
    ])
}

fn callsite_json(c: &Callsite) -> J {
    let Callsite { file, line, column } = c;
    if *c == Callsite::default() {
        J::Null
    } else {
        J::Str(format!("{file}:{line}:{column}"))
    }
}

fn failure_json(f: &Failure) -> J {
    let Failure {
        kind,
        message,
        non_retryable,
        cause,
        details,
    } = f;
    J::Obj(vec![
        ("kind", str_j(kind)),
        ("message", str_j(message)),
        ("non_retryable", J::Bool(*non_retryable)),
        ("cause", str_j(cause_name(*cause))),
        (
            "details",
            match details {
                None => J::Null,
                // A present `null` payload would read back as absent.
                Some(p) if p.as_bytes() == b"null" => bytes_json(p),
                Some(p) => payload_json(p),
            },
        ),
    ])
}

fn parent_close_name(p: ParentClosePolicy) -> &'static str {
    match p {
        ParentClosePolicy::Terminate => "terminate",
        ParentClosePolicy::RequestCancel => "request-cancel",
        ParentClosePolicy::Abandon => "abandon",
    }
}

fn parent_close_from_name(name: &str) -> Option<ParentClosePolicy> {
    Some(match name {
        "terminate" => ParentClosePolicy::Terminate,
        "request-cancel" => ParentClosePolicy::RequestCancel,
        "abandon" => ParentClosePolicy::Abandon,
        _ => return None,
    })
}

fn cause_name(cause: FailureCause) -> &'static str {
    match cause {
        FailureCause::Application => "application",
        FailureCause::Panicked => "panicked",
        FailureCause::NotRegistered => "not-registered",
        FailureCause::Cancelled => "cancelled",
        FailureCause::Terminated => "terminated",
        FailureCause::Timeout(TimeoutKind::StartToClose) => "timeout-start-to-close",
        FailureCause::Timeout(TimeoutKind::ScheduleToClose) => "timeout-schedule-to-close",
        FailureCause::Timeout(TimeoutKind::Heartbeat) => "timeout-heartbeat",
    }
}

fn cause_from_name(name: &str) -> Option<FailureCause> {
    Some(match name {
        "application" => FailureCause::Application,
        "panicked" => FailureCause::Panicked,
        "not-registered" => FailureCause::NotRegistered,
        "cancelled" => FailureCause::Cancelled,
        "terminated" => FailureCause::Terminated,
        "timeout-start-to-close" => FailureCause::Timeout(TimeoutKind::StartToClose),
        "timeout-schedule-to-close" => FailureCause::Timeout(TimeoutKind::ScheduleToClose),
        "timeout-heartbeat" => FailureCause::Timeout(TimeoutKind::Heartbeat),
        _ => return None,
    })
}

fn options_json(o: &ActivityOptions) -> J {
    let ActivityOptions {
        start_to_close,
        schedule_to_close,
        heartbeat_timeout,
        retry,
    } = o;
    let RetryPolicy {
        initial_interval,
        backoff_coefficient,
        max_interval,
        max_attempts,
        non_retryable_kinds,
    } = retry;
    let opt = |d: &Option<Duration>| d.map_or(J::Null, duration_json);
    J::Obj(vec![
        ("start_to_close_ms", opt(start_to_close)),
        ("schedule_to_close_ms", opt(schedule_to_close)),
        ("heartbeat_timeout_ms", opt(heartbeat_timeout)),
        (
            "retry",
            J::Obj(vec![
                ("initial_interval_ms", duration_json(*initial_interval)),
                ("backoff_coefficient", float_json(*backoff_coefficient)),
                ("max_interval_ms", duration_json(*max_interval)),
                ("max_attempts", J::Num(u64::from(*max_attempts))),
                (
                    "non_retryable_kinds",
                    J::List(non_retryable_kinds.iter().map(|k| str_j(k)).collect()),
                ),
            ]),
        ),
    ])
}

fn float_json(x: f64) -> J {
    // serde_json writes non-finite floats as null, which would not read back.
    if x.is_nan() {
        str_j("NaN")
    } else if x == f64::INFINITY {
        str_j("inf")
    } else if x == f64::NEG_INFINITY {
        str_j("-inf")
    } else {
        J::Float(x)
    }
}

fn duration_json(d: Duration) -> J {
    let nanos = d.as_nanos();
    let (ms, frac) = (nanos / 1_000_000, nanos % 1_000_000);
    if frac == 0 {
        if let Ok(ms) = u64::try_from(ms) {
            return J::Num(ms);
        }
    }
    let text = if frac == 0 {
        ms.to_string()
    } else {
        let frac = format!("{frac:06}");
        format!("{ms}.{}", frac.trim_end_matches('0'))
    };
    // The text is a plain decimal, always valid JSON; the string fallback
    // is read back just the same.
    match RawValue::from_string(text.clone()) {
        Ok(raw) => J::Raw(raw),
        Err(_) => J::Str(text),
    }
}

fn payload_json(p: &Payload) -> J {
    let bytes = p.as_bytes();
    match serde_json::from_slice::<Box<RawValue>>(bytes) {
        Ok(raw) if raw.get().as_bytes() == bytes && !has_bytes_key(raw.get()) => J::Raw(raw),
        _ => bytes_json(p),
    }
}

/// An optional payload: `null` when absent; a present payload whose bytes
/// are `null` in the `$bytes` form, so the two stay apart.
fn opt_payload_json(p: Option<&Payload>) -> J {
    match p {
        None => J::Null,
        Some(p) if p.as_bytes() == b"null" => bytes_json(p),
        Some(p) => payload_json(p),
    }
}

fn bytes_json(p: &Payload) -> J {
    J::Obj(vec![("$bytes", J::Str(hex(p.as_bytes())))])
}

/// Whether `json` is an object with a `$bytes` key, which would be taken
/// for the escape form on reading.
fn has_bytes_key(json: &str) -> bool {
    json.starts_with('{')
        && serde_json::from_str::<BTreeMap<String, &RawValue>>(json)
            .is_ok_and(|m| m.contains_key("$bytes"))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", s.len()));
    }
    let digit = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("{:?} is not a hex digit", char::from(c))),
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| Ok((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

// ---------------------------------------------------------------------------
// Reading. Fields are taken one by one from a map of raw values, so every
// error can name its event and field, payloads keep their exact bytes, and
// whatever is left over is an unknown field.

type R<T> = Result<T, HistoryFileError>;

struct Obj<'a> {
    event: Option<usize>,
    /// Dotted path of this object within the event (empty at its root).
    path: String,
    fields: BTreeMap<String, &'a RawValue>,
}

impl<'a> Obj<'a> {
    fn parse(raw: &'a RawValue, event: Option<usize>, path: String) -> R<Self> {
        let fields =
            serde_json::from_str::<BTreeMap<String, &'a RawValue>>(raw.get()).map_err(|_| {
                HistoryFileError::InvalidField {
                    event,
                    field: if path.is_empty() {
                        "(event)".into()
                    } else {
                        path.clone()
                    },
                    reason: format!("expected an object, found {}", describe(raw)),
                }
            })?;
        Ok(Obj {
            event,
            path,
            fields,
        })
    }

    fn name(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        }
    }

    fn invalid(&self, field: &str, reason: impl Into<String>) -> HistoryFileError {
        HistoryFileError::InvalidField {
            event: self.event,
            field: self.name(field),
            reason: reason.into(),
        }
    }

    /// The field's raw value; absent and `null` are both `None`.
    fn opt_raw(&mut self, field: &str) -> Option<&'a RawValue> {
        self.fields.remove(field).filter(|r| r.get() != "null")
    }

    fn raw(&mut self, field: &str) -> R<&'a RawValue> {
        match self.fields.remove(field) {
            Some(r) => Ok(r),
            None => Err(HistoryFileError::MissingField {
                event: self.event,
                field: self.name(field),
            }),
        }
    }

    fn decode<T: Deserialize<'a>>(&self, field: &str, raw: &'a RawValue) -> R<T> {
        serde_json::from_str(raw.get()).map_err(|e| self.invalid(field, strip_position(&e)))
    }

    fn req<T: Deserialize<'a>>(&mut self, field: &str) -> R<T> {
        let raw = self.raw(field)?;
        self.decode(field, raw)
    }

    fn opt<T: Deserialize<'a>>(&mut self, field: &str) -> R<Option<T>> {
        match self.opt_raw(field) {
            None => Ok(None),
            Some(raw) => self.decode(field, raw).map(Some),
        }
    }

    fn string(&mut self, field: &str) -> R<String> {
        self.req(field)
    }

    fn cmd(&mut self, field: &str) -> R<CommandSeq> {
        self.req(field).map(CommandSeq)
    }

    fn timestamp(&mut self, field: &str) -> R<Timestamp> {
        self.req(field).map(Timestamp)
    }

    fn seed(&mut self, field: &str) -> R<u64> {
        let raw = self.raw(field)?;
        if raw.get().starts_with('"') {
            let s: String = self.decode(field, raw)?;
            s.parse()
                .map_err(|_| self.invalid(field, format!("{s:?} is not a 64-bit unsigned seed")))
        } else {
            self.decode(field, raw)
        }
    }

    fn float(&mut self, field: &str) -> R<f64> {
        let raw = self.raw(field)?;
        if raw.get().starts_with('"') {
            let s: String = self.decode(field, raw)?;
            match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                _ => Err(self.invalid(field, format!("{s:?} is not a number"))),
            }
        } else {
            self.decode(field, raw)
        }
    }

    fn duration(&mut self, field: &str) -> R<Duration> {
        let raw = self.raw(field)?;
        self.duration_of(field, raw)
    }

    fn opt_duration(&mut self, field: &str) -> R<Option<Duration>> {
        match self.opt_raw(field) {
            None => Ok(None),
            Some(raw) => self.duration_of(field, raw).map(Some),
        }
    }

    fn duration_of(&self, field: &str, raw: &'a RawValue) -> R<Duration> {
        let text = if raw.get().starts_with('"') {
            self.decode::<String>(field, raw)?
        } else {
            raw.get().to_owned()
        };
        parse_ms(&text).map_err(|reason| self.invalid(field, reason))
    }

    fn payload(&mut self, field: &str) -> R<Payload> {
        let raw = self.raw(field)?;
        self.payload_of(field, raw)
    }

    fn opt_payload(&mut self, field: &str) -> R<Option<Payload>> {
        match self.opt_raw(field) {
            None => Ok(None),
            Some(raw) => self.payload_of(field, raw).map(Some),
        }
    }

    fn payload_of(&self, field: &str, raw: &'a RawValue) -> R<Payload> {
        let text = raw.get();
        if !has_bytes_key(text) {
            return Ok(Payload::from_bytes(text.as_bytes().to_vec()));
        }
        let mut escape = Obj::parse(raw, self.event, self.name(field))?;
        let hex_text: String = escape.req("$bytes")?;
        escape.finish()?;
        unhex(&hex_text)
            .map(Payload::from_bytes)
            .map_err(|reason| self.invalid(&format!("{field}.$bytes"), reason))
    }

    fn callsite(&mut self, field: &str) -> R<Callsite> {
        let Some(raw) = self.opt_raw(field) else {
            return Ok(Callsite::default());
        };
        let s: String = self.decode(field, raw)?;
        let mut parts = s.rsplitn(3, ':');
        let (column, line, file) = (parts.next(), parts.next(), parts.next());
        let parsed = match (file, line, column) {
            (Some(file), Some(line), Some(column)) => line
                .parse()
                .ok()
                .zip(column.parse().ok())
                .map(|(line, column)| Callsite {
                    file: file.to_owned(),
                    line,
                    column,
                }),
            _ => None,
        };
        parsed.ok_or_else(|| self.invalid(field, format!("{s:?} is not \"file:line:column\"")))
    }

    fn parent_close(&mut self, field: &str) -> R<ParentClosePolicy> {
        let name = self.string(field)?;
        parent_close_from_name(&name)
            .ok_or_else(|| self.invalid(field, format!("unknown parent-close policy {name:?}")))
    }

    fn obj(&mut self, field: &str) -> R<Obj<'a>> {
        let raw = self.raw(field)?;
        Obj::parse(raw, self.event, self.name(field))
    }

    fn list(&mut self, field: &str) -> R<Vec<&'a RawValue>> {
        self.req(field)
    }

    fn failure(&mut self, field: &str) -> R<Failure> {
        let mut o = self.obj(field)?;
        let cause_text: String = o.string("cause")?;
        let cause = cause_from_name(&cause_text)
            .ok_or_else(|| o.invalid("cause", format!("unknown failure cause {cause_text:?}")))?;
        let failure = Failure {
            kind: o.string("kind")?,
            message: o.string("message")?,
            non_retryable: o.req("non_retryable")?,
            cause,
            details: o.opt_payload("details")?,
        };
        o.finish()?;
        Ok(failure)
    }

    fn options(&mut self, field: &str) -> R<ActivityOptions> {
        let mut o = self.obj(field)?;
        let mut r = o.obj("retry")?;
        let retry = RetryPolicy {
            initial_interval: r.duration("initial_interval_ms")?,
            backoff_coefficient: r.float("backoff_coefficient")?,
            max_interval: r.duration("max_interval_ms")?,
            max_attempts: r.req("max_attempts")?,
            non_retryable_kinds: r.req("non_retryable_kinds")?,
        };
        r.finish()?;
        let options = ActivityOptions {
            start_to_close: o.opt_duration("start_to_close_ms")?,
            schedule_to_close: o.opt_duration("schedule_to_close_ms")?,
            heartbeat_timeout: o.opt_duration("heartbeat_timeout_ms")?,
            retry,
        };
        o.finish()?;
        Ok(options)
    }

    fn parent(&mut self, field: &str) -> R<Option<ParentRef>> {
        let Some(raw) = self.opt_raw(field) else {
            return Ok(None);
        };
        let mut o = Obj::parse(raw, self.event, self.name(field))?;
        let parent = ParentRef {
            workflow_id: WorkflowId(o.string("workflow_id")?),
            run: RunId(o.req("run")?),
            cmd: o.cmd("cmd")?,
        };
        o.finish()?;
        Ok(Some(parent))
    }

    fn signal_records(&mut self, field: &str) -> R<Vec<SignalRecord>> {
        let items = self.list(field)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, raw) in items.into_iter().enumerate() {
            let mut o = Obj::parse(raw, self.event, format!("{}[{i}]", self.name(field)))?;
            out.push(SignalRecord {
                name: o.string("name")?,
                payload: o.payload("payload")?,
                sender: o.opt("sender")?,
            });
            o.finish()?;
        }
        Ok(out)
    }

    /// Refuses whatever field was not taken.
    fn finish(self) -> R<()> {
        match self.fields.into_keys().next() {
            None => Ok(()),
            Some(field) => Err(HistoryFileError::UnknownField {
                event: self.event,
                field: if self.path.is_empty() {
                    field
                } else {
                    format!("{}.{field}", self.path)
                },
            }),
        }
    }
}

/// serde_json's message without its "at line 1 column 5", which refers to
/// the field's own text rather than the file.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

fn describe(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Milliseconds as written by `duration_json`: digits, optionally a point
/// and one to six digits, parsed exactly (no floating point).
fn parse_ms(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not milliseconds (digits, at most six decimals)");
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || (text.contains('.') && (!digits(frac) || frac.len() > 6)) {
        return Err(bad());
    }
    let ms: u128 = int.parse().map_err(|_| bad())?;
    let frac_ns: u128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().map_err(|_| bad())?
    };
    let nanos = ms
        .checked_mul(1_000_000)
        .and_then(|n| n.checked_add(frac_ns))
        .ok_or_else(|| format!("{text} ms is too long a duration"))?;
    let secs = u64::try_from(nanos / 1_000_000_000)
        .map_err(|_| format!("{text} ms is too long a duration"))?;
    // The remainder is below 10^9, so it fits.
    let sub = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

fn parse_export(top: &RawValue) -> R<HistoryExport> {
    let mut o =
        Obj::parse(top, None, String::new()).map_err(|_| HistoryFileError::NotAHistory {
            reason: format!("the top level is {}, not an object", describe(top)),
        })?;
    // Format and version first: a future version may have different fields.
    match o.fields.remove("format") {
        None => {
            return Err(HistoryFileError::NotAHistory {
                reason: "no \"format\" field".into(),
            })
        }
        Some(raw) => {
            let found: Option<String> = serde_json::from_str(raw.get()).ok();
            if found.as_deref() != Some(JSON_FORMAT) {
                return Err(HistoryFileError::NotAHistory {
                    reason: format!("\"format\" is {}, not \"{JSON_FORMAT}\"", raw.get()),
                });
            }
        }
    }
    let version = o.raw("version")?;
    if serde_json::from_str::<u64>(version.get()).ok() != Some(JSON_VERSION) {
        return Err(HistoryFileError::UnsupportedVersion {
            found: version.get().to_owned(),
            supported: JSON_VERSION,
        });
    }
    let workflow_id = WorkflowId(o.string("workflow_id")?);
    let run = RunId(o.req("run")?);
    let workflow_type = o.string("workflow_type")?;
    let raw_events = o.list("events")?;
    o.finish()?;
    let events = raw_events
        .into_iter()
        .enumerate()
        .map(|(i, raw)| parse_event(i, raw))
        .collect::<R<Vec<_>>>()?;
    Ok(HistoryExport {
        workflow_id,
        run,
        workflow_type,
        events,
    })
}

fn parse_event(index: usize, raw: &RawValue) -> R<Event> {
    let mut o = Obj::parse(raw, Some(index), String::new())?;
    let seq: u64 = o.req("seq")?;
    let expected = index as u64 + 1;
    if seq != expected {
        return Err(HistoryFileError::SeqMismatch {
            event: index,
            expected,
            found: seq,
        });
    }
    let kind = o.string("type")?;
    let event = match kind.as_str() {
        "WorkflowStarted" => Event::WorkflowStarted {
            workflow_type: o.string("workflow_type")?,
            workflow_id: WorkflowId(o.string("workflow_id")?),
            input: o.payload("input")?,
            seed: o.seed("seed")?,
            start_time: o.timestamp("start_time")?,
            continued_from: o.opt("continued_from")?.map(RunId),
            parent: o.parent("parent")?,
        },
        "ActivationStarted" => Event::ActivationStarted {
            time: o.timestamp("time")?,
        },
        "ActivityScheduled" => Event::ActivityScheduled {
            cmd: o.cmd("cmd")?,
            activity_type: o.string("activity_type")?,
            input: o.payload("input")?,
            options: o.options("options")?,
            callsite: o.callsite("callsite")?,
        },
        "ActivityCompleted" => Event::ActivityCompleted {
            cmd: o.cmd("cmd")?,
            attempt: o.req("attempt")?,
            result: o.payload("result")?,
        },
        "ActivityFailed" => Event::ActivityFailed {
            cmd: o.cmd("cmd")?,
            attempt: o.req("attempt")?,
            failure: o.failure("failure")?,
        },
        "TimerStarted" => Event::TimerStarted {
            cmd: o.cmd("cmd")?,
            fire_at: o.timestamp("fire_at")?,
            callsite: o.callsite("callsite")?,
        },
        "TimerFired" => Event::TimerFired { cmd: o.cmd("cmd")? },
        "TimerCancelled" => Event::TimerCancelled { cmd: o.cmd("cmd")? },
        "SignalReceived" => Event::SignalReceived {
            name: o.string("name")?,
            payload: o.payload("payload")?,
            sender: o.opt("sender")?,
        },
        "SideEffectRecorded" => Event::SideEffectRecorded {
            cmd: o.cmd("cmd")?,
            value: o.payload("value")?,
            callsite: o.callsite("callsite")?,
        },
        "WorkflowCompleted" => Event::WorkflowCompleted {
            result: o.payload("result")?,
        },
        "WorkflowFailed" => Event::WorkflowFailed {
            failure: o.failure("failure")?,
        },
        "PatchMarker" => Event::PatchMarker {
            patch_id: o.string("patch_id")?,
            deprecated: o.req("deprecated")?,
        },
        "WorkflowContinuedAsNew" => Event::WorkflowContinuedAsNew {
            input: o.payload("input")?,
            seed: o.seed("seed")?,
            carried_signals: o.signal_records("carried_signals")?,
        },
        "WorkflowCancelRequested" => Event::WorkflowCancelRequested {
            reason: o.string("reason")?,
            requested_by: o.opt("requested_by")?,
        },
        "ActivityCancelRequested" => Event::ActivityCancelRequested { cmd: o.cmd("cmd")? },
        "WorkflowCancelled" => Event::WorkflowCancelled {
            reason: o.string("reason")?,
        },
        "WorkflowTerminated" => Event::WorkflowTerminated {
            reason: o.string("reason")?,
        },
        "ChildWorkflowStarted" => Event::ChildWorkflowStarted {
            cmd: o.cmd("cmd")?,
            workflow_type: o.string("workflow_type")?,
            workflow_id: WorkflowId(o.string("workflow_id")?),
            input: o.payload("input")?,
            seed: o.seed("seed")?,
            parent_close: o.parent_close("parent_close")?,
            callsite: o.callsite("callsite")?,
        },
        "ChildWorkflowCompleted" => Event::ChildWorkflowCompleted {
            cmd: o.cmd("cmd")?,
            result: o.payload("result")?,
        },
        "ChildWorkflowFailed" => Event::ChildWorkflowFailed {
            cmd: o.cmd("cmd")?,
            failure: o.failure("failure")?,
        },
        "ChildWorkflowCancelRequested" => {
            Event::ChildWorkflowCancelRequested { cmd: o.cmd("cmd")? }
        }
        "HumanTaskAssigned" => Event::HumanTaskAssigned {
            cmd: o.cmd("cmd")?,
            task: o.string("task")?,
            assignee: o.string("assignee")?,
            form: o.opt_payload("form")?,
            deadline: o.opt("deadline")?.map(Timestamp),
            level: o.req("level")?,
            callsite: o.callsite("callsite")?,
        },
        "HumanTaskReminded" => Event::HumanTaskReminded {
            cmd: o.cmd("cmd")?,
            assignee: o.string("assignee")?,
        },
        "HumanTaskEscalated" => Event::HumanTaskEscalated {
            cmd: o.cmd("cmd")?,
            from: o.string("from")?,
            to: o.string("to")?,
            level: o.req("level")?,
            deadline: o.opt("deadline")?.map(Timestamp),
        },
        "HumanTaskDecided" => Event::HumanTaskDecided {
            cmd: o.cmd("cmd")?,
            decision: o.payload("decision")?,
            decided_by: o.string("decided_by")?,
            comment: o.opt("comment")?,
            decided_at: o.timestamp("decided_at")?,
        },
        "HumanTaskClosed" => Event::HumanTaskClosed {
            cmd: o.cmd("cmd")?,
            reason: o.string("reason")?,
        },
        _ => {
            return Err(HistoryFileError::UnknownEventType {
                event: index,
                found: kind,
            })
        }
    };
    o.finish()?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_exactly() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_micros(1500),
            Duration::from_millis(30_500),
            Duration::new(5, 123_456_789),
            Duration::from_secs(u64::MAX / 1000 + 1),
            Duration::MAX,
        ] {
            let text = match duration_json(d) {
                J::Num(n) => n.to_string(),
                J::Raw(r) => r.get().to_owned(),
                J::Str(s) => s,
                _ => unreachable!(),
            };
            assert_eq!(parse_ms(&text), Ok(d), "{text}");
        }
        for bad in [
            "",
            "1.",
            ".5",
            "1e3",
            "-1",
            "1.1234567",
            "1,5",
            "99999999999999999999999999999999999999999",
        ] {
            assert!(parse_ms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&all)).unwrap(), all);
        assert_eq!(unhex("00FF").unwrap(), vec![0, 255]);
        assert!(unhex("0").is_err());
        assert!(unhex("zz").is_err());
        assert!(unhex("é0").is_err());
    }
}
