//! [`HistoryFileError`]: why a history could not be exported, written or
//! read.

use refrain_history::codec::CodecError;
use refrain_history::{ReadError, WorkflowId};
use std::fmt;
use std::path::PathBuf;

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
    /// No run of this workflow id is in the store.
    WorkflowNotFound {
        /// The id.
        workflow_id: WorkflowId,
    },
    /// The store could not provide the history (`RunNotFound`, damaged
    /// data, a storage failure).
    Read(ReadError),
}

impl From<ReadError> for HistoryFileError {
    fn from(e: ReadError) -> Self {
        HistoryFileError::Read(e)
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
            HistoryFileError::WorkflowNotFound { workflow_id } => {
                write!(f, "no workflow with id {workflow_id}")
            }
            HistoryFileError::Read(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for HistoryFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HistoryFileError::Io { source, .. } => Some(source),
            HistoryFileError::Codec(e) => Some(e),
            HistoryFileError::Read(e) => Some(e),
            _ => None,
        }
    }
}

pub(super) fn syntax_error(e: &serde_json::Error) -> HistoryFileError {
    HistoryFileError::Syntax {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    }
}

pub(super) fn line_column(prefix: &[u8]) -> (usize, usize) {
    let line = 1 + prefix.iter().filter(|&&b| b == b'\n').count();
    let column = 1 + prefix.iter().rev().take_while(|&&b| b != b'\n').count();
    (line, column)
}
