//! Reading the JSON form, field by field. Fields are taken one by one
//! from a map of raw values, so every error can name its event and field,
//! payloads keep their exact bytes, and whatever is left over is an
//! unknown field.

use super::scalars::{cause_from_name, has_bytes_key, parent_close_from_name, unhex};
use super::HistoryFileError;
use refrain_history::{
    ActivityOptions, Callsite, CommandSeq, EscalationStep, Failure, ParentClosePolicy, ParentRef,
    Payload, RetryPolicy, RunId, SignalRecord, Timestamp, WorkflowId,
};
use serde::de::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::time::Duration;

pub(super) type R<T> = Result<T, HistoryFileError>;

pub(super) struct Obj<'a> {
    event: Option<usize>,
    /// Dotted path of this object within the event (empty at its root).
    path: String,
    pub(super) fields: BTreeMap<String, &'a RawValue>,
}

impl<'a> Obj<'a> {
    pub(super) fn parse(raw: &'a RawValue, event: Option<usize>, path: String) -> R<Self> {
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

    pub(super) fn raw(&mut self, field: &str) -> R<&'a RawValue> {
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

    pub(super) fn req<T: Deserialize<'a>>(&mut self, field: &str) -> R<T> {
        let raw = self.raw(field)?;
        self.decode(field, raw)
    }

    pub(super) fn opt<T: Deserialize<'a>>(&mut self, field: &str) -> R<Option<T>> {
        match self.opt_raw(field) {
            None => Ok(None),
            Some(raw) => self.decode(field, raw).map(Some),
        }
    }

    pub(super) fn string(&mut self, field: &str) -> R<String> {
        self.req(field)
    }

    pub(super) fn cmd(&mut self, field: &str) -> R<CommandSeq> {
        self.req(field).map(CommandSeq)
    }

    pub(super) fn timestamp(&mut self, field: &str) -> R<Timestamp> {
        self.req(field).map(Timestamp)
    }

    pub(super) fn seed(&mut self, field: &str) -> R<u64> {
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

    pub(super) fn payload(&mut self, field: &str) -> R<Payload> {
        let raw = self.raw(field)?;
        self.payload_of(field, raw)
    }

    pub(super) fn opt_payload(&mut self, field: &str) -> R<Option<Payload>> {
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

    pub(super) fn callsite(&mut self, field: &str) -> R<Callsite> {
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

    pub(super) fn parent_close(&mut self, field: &str) -> R<ParentClosePolicy> {
        let name = self.string(field)?;
        parent_close_from_name(&name)
            .ok_or_else(|| self.invalid(field, format!("unknown parent-close policy {name:?}")))
    }

    fn obj(&mut self, field: &str) -> R<Obj<'a>> {
        let raw = self.raw(field)?;
        Obj::parse(raw, self.event, self.name(field))
    }

    pub(super) fn list(&mut self, field: &str) -> R<Vec<&'a RawValue>> {
        self.req(field)
    }

    pub(super) fn failure(&mut self, field: &str) -> R<Failure> {
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

    pub(super) fn options(&mut self, field: &str) -> R<ActivityOptions> {
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

    pub(super) fn parent(&mut self, field: &str) -> R<Option<ParentRef>> {
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

    pub(super) fn signal_records(&mut self, field: &str) -> R<Vec<SignalRecord>> {
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

    /// An escalation chain (`HumanTaskAssigned::escalations`): a list of
    /// `{assignee, deadline_ms}`; absent (an export written before the
    /// field existed) or `null` is an empty chain.
    pub(super) fn escalations(&mut self, field: &str) -> R<Vec<EscalationStep>> {
        let Some(raw) = self.opt_raw(field) else {
            return Ok(Vec::new());
        };
        let items: Vec<&'a RawValue> = self.decode(field, raw)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, raw) in items.into_iter().enumerate() {
            let mut o = Obj::parse(raw, self.event, format!("{}[{i}]", self.name(field)))?;
            out.push(EscalationStep {
                assignee: o.string("assignee")?,
                deadline: o.opt_duration("deadline_ms")?,
            });
            o.finish()?;
        }
        Ok(out)
    }

    /// Refuses whatever field was not taken.
    pub(super) fn finish(self) -> R<()> {
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

pub(super) fn describe(raw: &RawValue) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history_file::json_write::{duration_json, J};

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
}
