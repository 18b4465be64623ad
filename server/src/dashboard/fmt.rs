//! How pages write times, durations, payloads and failures: the same
//! forms `refrain history` prints, so that a person moving between the
//! terminal and the browser reads the same words.

use refrain_history::{Failure, FailureCause, Payload, RunStatus, TimeoutKind, Timestamp};
use std::time::Duration;

/// RFC 3339 UTC with millisecond precision, e.g. `2024-05-01T12:00:00.004Z`.
pub(crate) fn utc(t: Timestamp) -> String {
    // Past year 9999 RFC 3339 has no form; such a time was computed by
    // saturating and reads better as such.
    const LAST_RFC3339_MS: u64 = 253_402_300_799_999;
    if t.0 > LAST_RFC3339_MS {
        return format!("after 9999-12-31 ({} ms since the epoch)", t.0);
    }
    let ms = t.0 % 1000;
    let secs = t.0 / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The calendar date `days` after 1970-01-01 (proleptic Gregorian), by
/// H. Hinnant's `civil_from_days`, for non-negative day counts.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// A duration the way people say it: `350ms`, `1.2s`, `4m05s`, `2h10m`,
/// `3d04h`.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{}.{}s", s, ms % 1000 / 100)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600)
    }
}

/// A payload on one line, shortened to `max` characters.
pub(crate) fn short(p: &Payload, max: usize) -> String {
    match std::str::from_utf8(p.as_bytes()) {
        Ok("") => "(empty)".into(),
        Ok(s) => {
            let one_line: String = s
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if one_line.chars().count() > max {
                let cut: String = one_line.chars().take(max).collect();
                format!("{cut}… ({} bytes)", p.len())
            } else {
                one_line
            }
        }
        Err(_) => format!("<{} bytes of binary>", p.len()),
    }
}

/// A payload in full: indented JSON when it is JSON, else its text, else
/// its size.
pub(crate) fn pretty(p: &Payload) -> String {
    match serde_json::from_slice::<serde_json::Value>(p.as_bytes()) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| short(p, usize::MAX)),
        Err(_) => short(p, usize::MAX),
    }
}

/// A failure as `kind: message [cause] (non-retryable)`.
pub(crate) fn failure(f: &Failure) -> String {
    let cause = match f.cause {
        FailureCause::Application => String::new(),
        FailureCause::Panicked => " [panicked]".into(),
        FailureCause::NotRegistered => " [not registered on any worker]".into(),
        FailureCause::Cancelled => " [cancelled]".into(),
        FailureCause::Terminated => " [terminated]".into(),
        FailureCause::Timeout(k) => format!(" [{} timeout]", timeout_name(k)),
    };
    let non_retryable = if f.non_retryable {
        " (non-retryable)"
    } else {
        ""
    };
    format!("{}: {}{cause}{non_retryable}", f.kind, f.message)
}

pub(crate) fn timeout_name(k: TimeoutKind) -> &'static str {
    match k {
        TimeoutKind::StartToClose => "start-to-close",
        TimeoutKind::ScheduleToClose => "schedule-to-close",
        TimeoutKind::Heartbeat => "heartbeat",
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

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(Timestamp(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(Timestamp(951_782_400_000)), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            utc(Timestamp(1_714_564_800_004)),
            "2024-05-01T12:00:00.004Z"
        );
        assert_eq!(
            utc(Timestamp(253_402_300_799_999)),
            "9999-12-31T23:59:59.999Z"
        );
        assert!(utc(Timestamp(u64::MAX)).starts_with("after 9999"));
    }

    #[test]
    fn durations_read_like_speech() {
        assert_eq!(human(Duration::from_millis(350)), "350ms");
        assert_eq!(human(Duration::from_millis(1_234)), "1.2s");
        assert_eq!(human(Duration::from_secs(245)), "4m05s");
        assert_eq!(human(Duration::from_secs(7_800)), "2h10m");
        assert_eq!(human(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3d04h");
    }

    #[test]
    fn payloads_print_whole_or_cut() {
        let p = Payload::from_bytes(br#"{"a":1}"#.to_vec());
        assert_eq!(short(&p, 120), r#"{"a":1}"#);
        assert_eq!(pretty(&p), "{\n  \"a\": 1\n}");
        let long = Payload::from_bytes(vec![b'x'; 10]);
        assert_eq!(short(&long, 4), "xxxx… (10 bytes)");
        assert_eq!(
            short(&Payload::from_bytes(vec![0xff]), 9),
            "<1 bytes of binary>"
        );
    }
}
