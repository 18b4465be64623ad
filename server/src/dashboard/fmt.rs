//! How pages write times, durations, payloads and failures: the same
//! forms `refrain history` prints, so that a person moving between the
//! terminal and the browser reads the same words.

use refrain_history::{Payload, RunStatus};

pub(crate) use refrain::display::{failure, human, short, utc};

/// A payload in full: indented JSON when it is JSON, else its text, else
/// its size.
pub(crate) fn pretty(p: &Payload) -> String {
    match serde_json::from_slice::<serde_json::Value>(p.as_bytes()) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| short(p, usize::MAX)),
        Err(_) => short(p, usize::MAX),
    }
}

/// The class of a status badge (see `style.css`).
pub(crate) fn status_class(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "status running",
        RunStatus::Completed => "status completed",
        RunStatus::Failed => "status failed",
        RunStatus::ContinuedAsNew => "status continued",
        RunStatus::Cancelled => "status cancelled",
        RunStatus::Terminated => "status terminated",
    }
}

/// Every status, in the order pages list them.
pub(crate) const STATUSES: [RunStatus; 6] = [
    RunStatus::Running,
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::ContinuedAsNew,
    RunStatus::Cancelled,
    RunStatus::Terminated,
];

/// The status named `name` as pages write it.
pub(crate) fn parse_status(name: &str) -> Option<RunStatus> {
    STATUSES.into_iter().find(|s| s.as_str() == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use refrain_history::Payload;

    #[test]
    fn payloads_print_indented() {
        let p = Payload::from_bytes(br#"{"a":1}"#.to_vec());
        assert_eq!(pretty(&p), "{\n  \"a\": 1\n}");
        let text = Payload::from_bytes(b"not json".to_vec());
        assert_eq!(pretty(&text), "not json");
    }
}
