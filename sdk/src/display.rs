//! How Refrain writes times, durations, sizes, payloads and failures for
//! people: the one form the CLI, the dashboard and [`Waiting`]'s sentences
//! share, so that a person moving between the terminal and the browser
//! reads the same words.
//!
//! [`Waiting`]: crate::Waiting

use refrain_history::{Failure, FailureCause, Payload, TimeoutKind, Timestamp};
use std::time::{Duration, UNIX_EPOCH};

/// RFC 3339 UTC with millisecond precision, e.g. `2024-05-01T12:00:00.004Z`.
pub fn utc(t: Timestamp) -> String {
    // RFC 3339 ends with year 9999; a time that far out was computed by
    // saturating, and reads better as such.
    const LAST_RFC3339_MS: u64 = 253_402_300_799_999;
    if t.0 > LAST_RFC3339_MS {
        return format!("after 9999-12-31 ({} ms since the epoch)", t.0);
    }
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(t.0)).to_string()
}

/// A duration the way people say it: `350ms`, `1.2s`, `4m05s`, `2h10m`,
/// `3d04h`.
pub fn human(d: Duration) -> String {
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

/// A size: `512 bytes`, `1.5 KiB`, `3.2 MiB`.
pub fn bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

/// A payload on one line, cut after `max` characters (with its size).
pub fn short(p: &Payload, max: usize) -> String {
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

/// A failure as `kind: message [cause] (non-retryable)`.
pub fn failure(f: &Failure) -> String {
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

/// A timeout's name: `start-to-close`, `schedule-to-close`, `heartbeat`.
pub fn timeout_name(k: TimeoutKind) -> &'static str {
    match k {
        TimeoutKind::StartToClose => "start-to-close",
        TimeoutKind::ScheduleToClose => "schedule-to-close",
        TimeoutKind::Heartbeat => "heartbeat",
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
    fn payloads_print_whole_or_cut() {
        let p = Payload::from_bytes(br#"{"a":1}"#.to_vec());
        assert_eq!(short(&p, 120), r#"{"a":1}"#);
        let long = Payload::from_bytes(vec![b'x'; 10]);
        assert_eq!(short(&long, 4), "xxxx… (10 bytes)");
        assert_eq!(
            short(&Payload::from_bytes(vec![0xff]), 9),
            "<1 bytes of binary>"
        );
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
