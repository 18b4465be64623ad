//! Formatting helpers shared by the commands: times, durations, sizes,
//! payloads, failures and activity tags.

use refrain_history::{ActivityOptions, Failure, FailureCause, Payload, TimeoutKind, Timestamp};
use std::time::Duration;

/// RFC 3339 UTC with millisecond precision, e.g. `2024-05-01T12:00:00.004Z`.
pub(super) fn utc(t: Timestamp) -> String {
    // RFC 3339 ends with year 9999; a timer that far out was almost
    // certainly computed by saturating, and reads better as such.
    const LAST_RFC3339_MS: u64 = 253_402_300_799_999;
    if t.0 > LAST_RFC3339_MS {
        return format!("after 9999-12-31 ({} ms since the epoch)", t.0);
    }
    humantime::format_rfc3339_millis(t.to_system_time()).to_string()
}

/// A duration the way people say it: `350ms`, `1.2s`, `4m05s`, `2h10m`,
/// `3d04h`.
pub(super) fn human(d: Duration) -> String {
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

pub(super) fn bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

/// A payload on one line, shortened.
pub(super) fn short(p: &Payload) -> String {
    const MAX: usize = 120;
    match std::str::from_utf8(p.as_bytes()) {
        Ok("") => "(empty)".into(),
        Ok(s) => {
            let one_line: String = s
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if one_line.chars().count() > MAX {
                let cut: String = one_line.chars().take(MAX).collect();
                format!("{cut}… ({} bytes)", p.len())
            } else {
                one_line
            }
        }
        Err(_) => format!("<{} bytes of binary>", p.len()),
    }
}

pub(super) fn failure_text(f: &Failure) -> String {
    let cause = match f.cause {
        FailureCause::Application => String::new(),
        FailureCause::Panicked => " [panicked]".into(),
        FailureCause::NotRegistered => " [not registered on any worker]".into(),
        FailureCause::Cancelled => " [cancelled]".into(),
        FailureCause::Terminated => " [terminated]".into(),
        FailureCause::Timeout(k) => format!(
            " [{} timeout]",
            match k {
                TimeoutKind::StartToClose => "start-to-close",
                TimeoutKind::ScheduleToClose => "schedule-to-close",
                TimeoutKind::Heartbeat => "heartbeat",
            }
        ),
    };
    let non_retryable = if f.non_retryable {
        " (non-retryable)"
    } else {
        ""
    };
    format!("{}: {}{cause}{non_retryable}", f.kind, f.message)
}

/// Marks activities whose names say they undo an earlier step (saga
/// compensations: refund, release, cancel, ...) or escalate, so that the
/// moment a run turned is visible at a glance.
pub(super) fn role_tag(activity_type: &str) -> &'static str {
    let name = activity_type.to_ascii_lowercase();
    const UNDO: [&str; 9] = [
        "compensate",
        "undo",
        "refund",
        "release",
        "revert",
        "rollback",
        "cancel",
        "void",
        "reverse",
    ];
    if name.contains("escalat") {
        " [ESCALATION]"
    } else if UNDO.iter().any(|p| name.starts_with(p)) {
        " [COMPENSATION]"
    } else {
        ""
    }
}

pub(super) fn attempts_of(options: &ActivityOptions) -> String {
    match options.retry.max_attempts {
        0 => String::new(),
        n => format!(" of {n}"),
    }
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
        // No panic at the far end.
        assert_eq!(
            utc(Timestamp(u64::MAX)),
            "after 9999-12-31 (18446744073709551615 ms since the epoch)"
        );
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
    fn compensations_and_escalations_are_tagged() {
        assert_eq!(role_tag("refund-payment"), " [COMPENSATION]");
        assert_eq!(role_tag("release-credit-hold"), " [COMPENSATION]");
        assert_eq!(role_tag("escalate-approval"), " [ESCALATION]");
        assert_eq!(role_tag("charge-payment"), "");
    }
}
