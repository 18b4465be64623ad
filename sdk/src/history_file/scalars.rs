//! Spellings shared by the JSON writer and reader: the names of enum
//! values, and the `{"$bytes": "<hex>"}` escape for payloads that cannot
//! be embedded as JSON.

use refrain_history::{FailureCause, ParentClosePolicy, TimeoutKind};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

pub(super) fn parent_close_name(p: ParentClosePolicy) -> &'static str {
    match p {
        ParentClosePolicy::Terminate => "terminate",
        ParentClosePolicy::RequestCancel => "request-cancel",
        ParentClosePolicy::Abandon => "abandon",
    }
}

pub(super) fn parent_close_from_name(name: &str) -> Option<ParentClosePolicy> {
    Some(match name {
        "terminate" => ParentClosePolicy::Terminate,
        "request-cancel" => ParentClosePolicy::RequestCancel,
        "abandon" => ParentClosePolicy::Abandon,
        _ => return None,
    })
}

pub(super) fn cause_name(cause: FailureCause) -> &'static str {
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

pub(super) fn cause_from_name(name: &str) -> Option<FailureCause> {
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

/// Whether `json` is an object with a `$bytes` key, which would be taken
/// for the escape form on reading.
pub(super) fn has_bytes_key(json: &str) -> bool {
    json.starts_with('{')
        && serde_json::from_str::<BTreeMap<String, &RawValue>>(json)
            .is_ok_and(|m| m.contains_key("$bytes"))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

pub(super) fn unhex(s: &str) -> Result<Vec<u8>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
