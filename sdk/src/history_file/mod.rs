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
//!   | `WorkflowTerminated` | `reason`, `terminated_by` (string or null) |
//!   | `ChildWorkflowStarted` | `cmd`, `workflow_type`, `workflow_id`, `input`, `seed`, `parent_close` (`"terminate"`, `"request-cancel"` or `"abandon"`), `callsite` |
//!   | `ChildWorkflowCompleted` | `cmd`, `result` |
//!   | `ChildWorkflowFailed` | `cmd`, `failure` |
//!   | `ChildWorkflowCancelRequested` | `cmd` |
//!   | `HumanTaskAssigned` | `cmd`, `task`, `assignee`, `form` (payload or null), `deadline` (timestamp or null), `level`, `callsite`, `escalations` (list of `{assignee, deadline_ms}`, `deadline_ms` a duration or null for the task's own) |
//!   | `HumanTaskReminded` | `cmd`, `assignee` |
//!   | `HumanTaskEscalated` | `cmd`, `from`, `to`, `level`, `deadline` (timestamp or null) |
//!   | `HumanTaskDecided` | `cmd`, `decision`, `decided_by`, `comment` (string or null), `decided_at` |
//!   | `HumanTaskClosed` | `cmd`, `reason` |
//!   | `HumanTaskClaimed` | `cmd`, `from` (the group), `claimed_by`, `claimed_at` |
//!   | `UpdateRequested` | `update_id`, `name`, `input` (inbox only: never in a history) |
//!   | `UpdateAccepted` | `update_id`, `name`, `input` |
//!   | `UpdateCompleted` | `update_id`, `result` |
//!   | `UpdateFailed` | `update_id`, `failure` |
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
//! - **Durations** (`*_ms` fields of `options` and `escalations`) are milliseconds: an
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
//! Fields added after the form's first release (`terminated_by`,
//! `escalations`, the `HumanTaskClaimed` event) keep `version` 1: the
//! reader takes an export without them as `null` and an empty chain, so
//! every older export still imports, and the writer leaves them out when
//! they are `null` or empty, so a history without them is written exactly
//! as before they existed.
//!
//! The writer emits every other field, in the order shown, pretty-printed
//! with two-space indentation. The reader accepts any whitespace and field
//! order, lets optional fields be omitted (read as null), and refuses
//! unknown fields, unknown event types and wrong types with a
//! [`HistoryFileError`] naming the event index and field, so that a typo in
//! a hand-edited fixture is reported rather than silently dropped. Import
//! then export of a file written by this module gives the same text, and
//! export then import gives equal [`Event`]s.

mod error;
mod json_fields;
mod json_read;
mod json_write;
mod scalars;

pub use error::HistoryFileError;

use error::{line_column, syntax_error};
use json_read::parse_export;
use json_write::export_json;
use refrain_history::{codec, Event, EventSeq, HistoryStore, ReadError, RunId, WorkflowId};
use serde::Serialize;
use serde_json::value::RawValue;
use std::path::Path;

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
    /// `WorkflowNotFound` if no run of the id exists; `Read` for what the
    /// store could not read (`Damaged` for undecodable events).
    pub async fn from_store(
        store: &dyn HistoryStore,
        workflow_id: &WorkflowId,
    ) -> Result<Self, HistoryFileError> {
        let (run, _) = store.latest_run(workflow_id).await?.ok_or_else(|| {
            HistoryFileError::WorkflowNotFound {
                workflow_id: workflow_id.clone(),
            }
        })?;
        Self::from_run(store, run).await
    }

    /// Run `run` of `store`, whichever workflow id it belongs to.
    ///
    /// # Errors
    /// `Read(RunNotFound)` if the run does not exist; `Read` for what else
    /// the store could not read.
    pub async fn from_run(store: &dyn HistoryStore, run: RunId) -> Result<Self, HistoryFileError> {
        let record = store
            .run_record(run)
            .await?
            .ok_or(ReadError::RunNotFound { run })?;
        let events = store.read_history(run, EventSeq(1)).await?;
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
