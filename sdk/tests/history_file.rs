//! The history file forms: exact round trips for every event variant, a
//! golden JSON text that pins the format, and named errors for bad input.

use refrain::history_file::{FileFormat, HistoryExport, HistoryFileError};
use refrain_history::samples::{every_event, p, site};
use refrain_history::{
    Callsite, CommandSeq, Event, IdConflictPolicy, Payload, ReadError, RunId, StartRequest, Store,
    StoreConfig, Timestamp, WorkflowId,
};
use std::time::Duration;

fn export_of(events: Vec<Event>) -> HistoryExport {
    HistoryExport {
        workflow_id: WorkflowId::new("order-1"),
        run: RunId(7),
        workflow_type: "order-to-cash".into(),
        events,
    }
}

fn every_event_export() -> HistoryExport {
    export_of(every_event())
}

#[test]
fn every_variant_round_trips_through_json() {
    let export = every_event_export();
    let text = export.to_json();
    let back = HistoryExport::from_json(&text).unwrap();
    assert_eq!(back, export);
    // A second pass gives the same text: nothing is normalised away.
    assert_eq!(back.to_json(), text);
}

#[test]
fn each_variant_round_trips_alone() {
    for e in every_event() {
        let export = export_of(vec![e.clone()]);
        let back = HistoryExport::from_json(&export.to_json())
            .unwrap_or_else(|err| panic!("{}: {err}", e.kind()));
        assert_eq!(back.events, vec![e]);
    }
}

#[test]
fn every_variant_round_trips_through_binary() {
    let export = every_event_export();
    let bytes = export.to_bytes().unwrap();
    assert_eq!(&bytes[..2], b"RF");
    assert_eq!(HistoryExport::from_bytes(&bytes).unwrap(), export);
    assert_eq!(HistoryExport::parse(&bytes).unwrap(), export);
}

#[test]
fn json_type_is_the_event_kind_and_seq_its_position() {
    let export = every_event_export();
    let value: serde_json::Value = serde_json::from_str(&export.to_json()).unwrap();
    let events = value["events"].as_array().unwrap();
    for (i, (json, event)) in events.iter().zip(&export.events).enumerate() {
        assert_eq!(json["type"], event.kind());
        assert_eq!(json["seq"], i as u64 + 1);
    }
}

#[test]
fn payloads_are_readable_json_unless_they_cannot_be() {
    let value: serde_json::Value = serde_json::from_str(&every_event_export().to_json()).unwrap();
    let ev = &value["events"];
    // JSON payloads are embedded as values.
    assert_eq!(ev[0]["input"]["sku"], "A-1");
    assert_eq!(ev[4]["failure"]["details"][1], 2);
    // Binary, empty, padded and look-alike payloads use the escape form.
    assert_eq!(ev[2]["input"]["$bytes"], "000102ff");
    assert_eq!(ev[8]["payload"]["$bytes"], "");
    assert_eq!(ev[10]["result"]["$bytes"], hex(b" 42 "));
    assert_eq!(ev[9]["value"]["$bytes"], hex(br#"{"$bytes":"00"}"#));
    // A present `null` detail stays distinct from an absent one.
    assert_eq!(ev[11]["failure"]["details"]["$bytes"], hex(b"null"));
    // Seeds are strings (64 bits), timestamps integer milliseconds.
    assert_eq!(ev[0]["seed"], u64::MAX.to_string());
    assert_eq!(ev[0]["start_time"], 1_700_000_000_000u64);
    assert_eq!(ev[2]["callsite"], r"C:\src\order.rs:42:9");
    assert_eq!(ev[5]["callsite"], serde_json::Value::Null);
    assert_eq!(ev[2]["options"]["heartbeat_timeout_ms"], 5123.456789);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The format is an interface (fixtures in users' repositories, tools that
/// read exports): any change to this text must be deliberate.
#[test]
fn golden_json_text() {
    let export = HistoryExport {
        workflow_id: WorkflowId::new("onboard-ada"),
        run: RunId(12),
        workflow_type: "employee-onboarding".into(),
        events: vec![
            Event::WorkflowStarted {
                workflow_type: "employee-onboarding".into(),
                workflow_id: WorkflowId::new("onboard-ada"),
                input: p(r#"{"name":"Ada"}"#),
                seed: 7,
                start_time: Timestamp(1_714_564_800_000),
                continued_from: None,
                parent: None,
            },
            Event::ActivationStarted {
                time: Timestamp(1_714_564_800_004),
            },
            Event::TimerStarted {
                cmd: CommandSeq(1),
                fire_at: Timestamp(1_714_565_100_004),
                callsite: site("examples/employee_onboarding.rs", 366, 18),
            },
            Event::ActivationStarted {
                time: Timestamp(1_714_564_900_000),
            },
            Event::SignalReceived {
                name: "manager-approval".into(),
                payload: p(r#"{"approved":true}"#),
                sender: Some("grace@example.com".into()),
            },
            Event::TimerCancelled { cmd: CommandSeq(1) },
            Event::PatchMarker {
                patch_id: "welcome-pack".into(),
                deprecated: false,
            },
            Event::WorkflowCompleted {
                result: p("\"done\""),
            },
        ],
    };
    let golden = r#"{
  "format": "refrain-history",
  "version": 1,
  "workflow_id": "onboard-ada",
  "run": 12,
  "workflow_type": "employee-onboarding",
  "events": [
    {
      "seq": 1,
      "type": "WorkflowStarted",
      "workflow_type": "employee-onboarding",
      "workflow_id": "onboard-ada",
      "input": {"name":"Ada"},
      "seed": "7",
      "start_time": 1714564800000,
      "continued_from": null,
      "parent": null
    },
    {
      "seq": 2,
      "type": "ActivationStarted",
      "time": 1714564800004
    },
    {
      "seq": 3,
      "type": "TimerStarted",
      "cmd": 1,
      "fire_at": 1714565100004,
      "callsite": "examples/employee_onboarding.rs:366:18"
    },
    {
      "seq": 4,
      "type": "ActivationStarted",
      "time": 1714564900000
    },
    {
      "seq": 5,
      "type": "SignalReceived",
      "name": "manager-approval",
      "payload": {"approved":true},
      "sender": "grace@example.com"
    },
    {
      "seq": 6,
      "type": "TimerCancelled",
      "cmd": 1
    },
    {
      "seq": 7,
      "type": "PatchMarker",
      "patch_id": "welcome-pack",
      "deprecated": false
    },
    {
      "seq": 8,
      "type": "WorkflowCompleted",
      "result": "done"
    }
  ]
}"#;
    assert_eq!(export.to_json(), golden);
    assert_eq!(HistoryExport::from_json(golden).unwrap(), export);
}

#[test]
fn hand_written_json_may_reorder_reformat_and_omit_optional_fields() {
    let text = r#"
    { "events": [
        { "type": "WorkflowStarted", "seq": 1, "workflow_id": "w", "workflow_type": "t",
          "input": { "a" : [1, 2] }, "seed": 5, "start_time": 10 },
        { "seq": 2, "type": "ActivationStarted", "time": 11 },
        { "seq": 3, "type": "ActivityScheduled", "cmd": 1, "activity_type": "x", "input": null,
          "options": { "start_to_close_ms": "1.5",
                       "retry": { "initial_interval_ms": 1000, "backoff_coefficient": 2,
                                  "max_interval_ms": 100000, "max_attempts": 0,
                                  "non_retryable_kinds": [] } } },
        { "seq": 4, "type": "SignalReceived", "name": "go", "payload": {"$bytes": "ABcd"} }
      ],
      "workflow_type": "t", "run": 1, "workflow_id": "w", "version": 1, "format": "refrain-history" }"#;
    let export = HistoryExport::from_json(text).unwrap();
    assert_eq!(
        export.events[0],
        Event::WorkflowStarted {
            workflow_type: "t".into(),
            workflow_id: WorkflowId::new("w"),
            input: p(r#"{ "a" : [1, 2] }"#),
            seed: 5,
            start_time: Timestamp(10),
            continued_from: None,
            parent: None,
        }
    );
    let Event::ActivityScheduled {
        options, callsite, ..
    } = &export.events[2]
    else {
        panic!("{:?}", export.events[2]);
    };
    assert_eq!(options.start_to_close, Some(Duration::from_micros(1500)));
    assert_eq!(options.heartbeat_timeout, None);
    assert_eq!(*callsite, Callsite::default());
    assert_eq!(
        export.events[3],
        Event::SignalReceived {
            name: "go".into(),
            payload: Payload::from_bytes(vec![0xab, 0xcd]),
            sender: None,
        }
    );
}

#[test]
fn files_take_their_form_from_the_extension_and_are_read_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let export = every_event_export();

    let json = dir.path().join("h.json");
    export.write_file(&json).unwrap();
    let bytes = std::fs::read(&json).unwrap();
    assert_eq!(bytes[0], b'{');
    assert_eq!(HistoryExport::read_file(&json).unwrap(), export);

    let bin = dir.path().join("h.bin");
    export.write_file(&bin).unwrap();
    assert_eq!(&std::fs::read(&bin).unwrap()[..2], b"RF");
    assert_eq!(HistoryExport::read_file(&bin).unwrap(), export);

    // The content decides, not the name.
    let misnamed = dir.path().join("really-binary.json");
    export.write_file_as(&misnamed, FileFormat::Binary).unwrap();
    assert_eq!(HistoryExport::read_file(&misnamed).unwrap(), export);
    let misnamed = dir.path().join("really-json.history");
    export.write_file_as(&misnamed, FileFormat::Json).unwrap();
    assert_eq!(HistoryExport::read_file(&misnamed).unwrap(), export);

    assert_eq!(FileFormat::for_path("A.JSON".as_ref()), FileFormat::Json);
    assert_eq!(FileFormat::for_path("a".as_ref()), FileFormat::Binary);

    let missing = dir.path().join("missing.json");
    match HistoryExport::read_file(&missing) {
        Err(HistoryFileError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn exports_come_from_a_store_by_id_or_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let started = store
        .start_workflow(StartRequest {
            workflow_id: "order-9".into(),
            workflow_type: "order-to-cash".into(),
            input: p("{}"),
            on_conflict: IdConflictPolicy::Reject,
            seed: 3,
            now: Timestamp(1_000),
        })
        .unwrap();
    let export = HistoryExport::from_store(&store, &"order-9".into())
        .await
        .unwrap();
    assert_eq!(export.workflow_id.as_str(), "order-9");
    assert_eq!(export.run, started.run);
    assert_eq!(export.workflow_type, "order-to-cash");
    assert_eq!(export.events, store.read_history(started.run).unwrap());
    assert_eq!(
        HistoryExport::from_run(&store, started.run).await.unwrap(),
        export
    );

    assert!(matches!(
        HistoryExport::from_store(&store, &"nope".into()).await,
        Err(HistoryFileError::WorkflowNotFound { workflow_id }) if workflow_id.as_str() == "nope"
    ));
    assert!(matches!(
        HistoryExport::from_run(&store, RunId(999)).await,
        Err(HistoryFileError::Read(ReadError::RunNotFound {
            run: RunId(999)
        }))
    ));
}

/// A one-event export whose event JSON is `event`, for the error tests.
fn with_event(event: &str) -> String {
    format!(
        r#"{{"format":"refrain-history","version":1,"workflow_id":"w","run":1,"workflow_type":"t","events":[{event}]}}"#
    )
}

fn err(text: &str) -> HistoryFileError {
    match HistoryExport::from_json(text) {
        Ok(e) => panic!("accepted {text}: {e:?}"),
        Err(e) => {
            // Every error renders as a message that says where.
            assert!(!e.to_string().is_empty());
            e
        }
    }
}

#[test]
fn not_json_or_not_a_history_is_named() {
    assert!(matches!(
        err("{\n  \"format\": \"refrain-history\",\n  oops\n}"),
        HistoryFileError::Syntax { line: 3, .. }
    ));
    assert!(matches!(err("[]"), HistoryFileError::NotAHistory { .. }));
    assert!(matches!(err("{}"), HistoryFileError::NotAHistory { .. }));
    assert!(matches!(
        err(r#"{"format":"something-else","version":1}"#),
        HistoryFileError::NotAHistory { .. }
    ));
    assert!(matches!(
        HistoryExport::from_json_slice(b"{\"format\": \"\xff\"}"),
        Err(HistoryFileError::Syntax { .. })
    ));
}

#[test]
fn another_version_is_refused_before_anything_else() {
    let text = r#"{"format":"refrain-history","version":2,"whatever":true}"#;
    match err(text) {
        HistoryFileError::UnsupportedVersion { found, supported } => {
            assert_eq!(found, "2");
            assert_eq!(supported, 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        err(r#"{"format":"refrain-history"}"#),
        HistoryFileError::MissingField { event: None, .. }
    ));
}

#[test]
fn field_errors_name_the_event_and_field() {
    let good_options = r#"{"start_to_close_ms":null,"schedule_to_close_ms":null,"heartbeat_timeout_ms":null,"retry":{"initial_interval_ms":1,"backoff_coefficient":2.0,"max_interval_ms":1,"max_attempts":1,"non_retryable_kinds":[]}}"#;
    let cases: Vec<(String, HistoryFileError)> = vec![
        (
            with_event(r#"{"seq":1,"type":"ActivationStarted"}"#),
            HistoryFileError::MissingField {
                event: Some(0),
                field: "time".into(),
            },
        ),
        (
            with_event(r#"{"seq":1,"type":"ActivationStarted","time":1,"tiem":2}"#),
            HistoryFileError::UnknownField {
                event: Some(0),
                field: "tiem".into(),
            },
        ),
        (
            with_event(r#"{"seq":1,"type":"ActivationStarted","time":"soon"}"#),
            HistoryFileError::InvalidField {
                event: Some(0),
                field: "time".into(),
                reason: String::new(),
            },
        ),
        (
            with_event(r#"{"seq":1,"type":"TimerExploded","cmd":1}"#),
            HistoryFileError::UnknownEventType {
                event: 0,
                found: "TimerExploded".into(),
            },
        ),
        (
            with_event(r#"{"seq":2,"type":"TimerFired","cmd":1}"#),
            HistoryFileError::SeqMismatch {
                event: 0,
                expected: 1,
                found: 2,
            },
        ),
        (
            with_event(r#"{"seq":1,"type":"TimerFired","cmd":-1}"#),
            HistoryFileError::InvalidField {
                event: Some(0),
                field: "cmd".into(),
                reason: String::new(),
            },
        ),
        (
            with_event(r#"{"seq":1,"type":"TimerStarted","cmd":1,"fire_at":5,"callsite":"nowhere"}"#),
            HistoryFileError::InvalidField {
                event: Some(0),
                field: "callsite".into(),
                reason: String::new(),
            },
        ),
        (
            with_event(r#"{"seq":1,"type":"WorkflowCompleted","result":{"$bytes":"0g"}}"#),
            HistoryFileError::InvalidField {
                event: Some(0),
                field: "result.$bytes".into(),
                reason: String::new(),
            },
        ),
        (
            with_event(r#"{"seq":1,"type":"WorkflowCompleted","result":{"$bytes":"00","x":1}}"#),
            HistoryFileError::UnknownField {
                event: Some(0),
                field: "result.x".into(),
            },
        ),
        (
            with_event(
                r#"{"seq":1,"type":"WorkflowFailed","failure":{"kind":"k","message":"m","non_retryable":false,"cause":"gremlins"}}"#,
            ),
            HistoryFileError::InvalidField {
                event: Some(0),
                field: "failure.cause".into(),
                reason: String::new(),
            },
        ),
        (
            with_event(
                &r#"{"seq":1,"type":"ActivityScheduled","cmd":1,"activity_type":"a","input":1,"options":OPTIONS,"callsite":null}"#
                    .replace("OPTIONS", &good_options.replace(r#""max_attempts":1,"#, "")),
            ),
            HistoryFileError::MissingField {
                event: Some(0),
                field: "options.retry.max_attempts".into(),
            },
        ),
        (
            with_event(
                &r#"{"seq":1,"type":"ActivityScheduled","cmd":1,"activity_type":"a","input":1,"options":OPTIONS,"callsite":null}"#
                    .replace("OPTIONS", &good_options.replace(r#""start_to_close_ms":null"#, r#""start_to_close_ms":1e3"#)),
            ),
            HistoryFileError::InvalidField {
                event: Some(0),
                field: "options.start_to_close_ms".into(),
                reason: String::new(),
            },
        ),
        (
            with_event(
                r#"{"seq":1,"type":"WorkflowContinuedAsNew","input":1,"seed":"-3","carried_signals":[]}"#,
            ),
            HistoryFileError::InvalidField {
                event: Some(0),
                field: "seed".into(),
                reason: String::new(),
            },
        ),
        (
            with_event(
                r#"{"seq":1,"type":"WorkflowContinuedAsNew","input":1,"seed":"3","carried_signals":[{"name":"a","payload":1,"sendr":"x"}]}"#,
            ),
            HistoryFileError::UnknownField {
                event: Some(0),
                field: "carried_signals[0].sendr".into(),
            },
        ),
        (
            with_event("42"),
            HistoryFileError::InvalidField {
                event: Some(0),
                field: "(event)".into(),
                reason: String::new(),
            },
        ),
    ];
    for (text, expected) in cases {
        let got = err(&text);
        let same = match (&got, &expected) {
            (
                HistoryFileError::InvalidField { event, field, .. },
                HistoryFileError::InvalidField {
                    event: e2,
                    field: f2,
                    ..
                },
            ) => event == e2 && field == f2,
            _ => format!("{got:?}") == format!("{expected:?}"),
        };
        assert!(same, "{text}\n  expected {expected:?}\n  got      {got:?}");
    }
}

#[test]
fn the_second_event_is_named_by_its_index() {
    let text = HistoryExport {
        events: vec![
            Event::ActivationStarted { time: Timestamp(1) },
            Event::TimerFired { cmd: CommandSeq(1) },
        ],
        ..every_event_export()
    }
    .to_json()
    .replace(r#""cmd": 1"#, r#""cmd": "one""#);
    let e = err(&text);
    assert!(
        matches!(&e, HistoryFileError::InvalidField { event: Some(1), field, .. } if field == "cmd"),
        "{e:?}"
    );
    assert!(e.to_string().contains("events[1] (seq 2)"), "{e}");
}

#[test]
fn corrupt_binary_is_a_codec_error() {
    let bytes = every_event_export().to_bytes().unwrap();
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        HistoryExport::parse(&flipped),
        Err(HistoryFileError::Codec(_))
    ));
    assert!(matches!(
        HistoryExport::parse(&bytes[..bytes.len() / 2]),
        Err(HistoryFileError::Codec(_))
    ));
    assert!(matches!(
        HistoryExport::parse(b"RF"),
        Err(HistoryFileError::Codec(_))
    ));
}

/// Hostile input gives an error, never a panic: every prefix and a
/// sweep of byte changes of a real export.
#[test]
fn damaged_json_never_panics() {
    let text = every_event_export().to_json();
    let bytes = text.as_bytes();
    for n in 0..bytes.len() {
        assert!(HistoryExport::parse(&bytes[..n]).is_err());
    }
    for i in (0..bytes.len()).step_by(3) {
        for b in [b'"', b'{', b'0', b'-', b'\\', 0xff, b' '] {
            let mut damaged = bytes.to_vec();
            damaged[i] = b;
            let _ = HistoryExport::parse(&damaged);
        }
    }
    // Deep nesting inside a payload is bounded by the parser, not the stack.
    let deep = with_event(&format!(
        r#"{{"seq":1,"type":"WorkflowCompleted","result":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    ));
    let _ = HistoryExport::from_json(&deep);
}

/// Exports written before `terminated_by` and `escalations` existed still
/// import: the first reads as `None`, the second as no chain; and the
/// fields written now read back.
#[test]
fn exports_without_the_fields_added_later_still_import() {
    let old = HistoryExport::from_json(&with_event(
        r#"{"seq":1,"type":"WorkflowTerminated","reason":"duplicate order (terminated by ops)"}"#,
    ))
    .unwrap();
    assert_eq!(
        old.events[0],
        Event::WorkflowTerminated {
            reason: "duplicate order (terminated by ops)".into(),
            terminated_by: None,
        }
    );
    let old = HistoryExport::from_json(&with_event(
        r#"{"seq":1,"type":"HumanTaskAssigned","cmd":1,"task":"review","assignee":"ann",
            "form":null,"deadline":null,"level":0,"callsite":null}"#,
    ))
    .unwrap();
    assert!(
        matches!(&old.events[0], Event::HumanTaskAssigned { escalations, .. } if escalations.is_empty()),
        "{:?}",
        old.events[0]
    );
    let new = HistoryExport::from_json(&with_event(
        r#"{"seq":1,"type":"HumanTaskAssigned","cmd":1,"task":"review","assignee":"ann",
            "form":null,"deadline":null,"level":0,"callsite":null,
            "escalations":[{"assignee":"bob","deadline_ms":3600000},{"assignee":"cy","deadline_ms":null}]}"#,
    ))
    .unwrap();
    let Event::HumanTaskAssigned { escalations, .. } = &new.events[0] else {
        panic!("{:?}", new.events[0]);
    };
    assert_eq!(
        escalations
            .iter()
            .map(|e| (e.assignee.as_str(), e.deadline))
            .collect::<Vec<_>>(),
        [("bob", Some(Duration::from_secs(3600))), ("cy", None)]
    );
    // A typo in a step is named, not dropped.
    let e = err(&with_event(
        r#"{"seq":1,"type":"HumanTaskAssigned","cmd":1,"task":"review","assignee":"ann",
            "level":0,"escalations":[{"asignee":"bob"}]}"#,
    ));
    assert!(e.to_string().contains("escalations[0]"), "{e}");
}
