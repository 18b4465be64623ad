//! Formatting helpers shared by the commands: times, durations, sizes,
//! payloads, failures and activity tags.

use refrain_history::{ActivityOptions, Payload};

pub(super) use refrain::display::{bytes, failure as failure_text, human, utc};

/// A payload on one line, shortened.
pub(super) fn short(p: &Payload) -> String {
    refrain::display::short(p, 120)
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
    fn compensations_and_escalations_are_tagged() {
        assert_eq!(role_tag("refund-payment"), " [COMPENSATION]");
        assert_eq!(role_tag("release-credit-hold"), " [COMPENSATION]");
        assert_eq!(role_tag("escalate-approval"), " [ESCALATION]");
        assert_eq!(role_tag("charge-payment"), "");
    }
}
