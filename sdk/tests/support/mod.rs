//! Scaffolding shared by the SDK's replay tests: echo activities, JSON
//! payloads, first events and machines built from them. Each test binary
//! uses part of it.
#![allow(dead_code, unused_macros, unused_imports)]

use refrain::replay::{WorkflowMachine, WorkflowType};
use refrain::{Event, Payload, RunId, Workflow};
use refrain_history::{CommandSeq, Timestamp};
use serde::Serialize;

/// Declares an activity type `$ty` named `$name` that returns its string
/// input: the replay core only cares about names, never about effects.
macro_rules! echo_activity {
    ($ty:ident, $name:literal) => {
        struct $ty;
        #[::refrain::async_trait]
        impl ::refrain::Activity for $ty {
            const NAME: &'static str = $name;
            type Input = String;
            type Output = String;
            async fn run(
                &self,
                _: ::refrain::ActivityContext,
                i: String,
            ) -> Result<String, ::refrain::ActivityError> {
                Ok(i)
            }
        }
    };
}
pub(crate) use echo_activity;

/// `v` as a recorded payload.
pub fn json<T: Serialize>(v: &T) -> Payload {
    Payload::from_bytes(serde_json::to_vec(v).unwrap())
}

/// The first event of a run of `workflow_type` under `workflow_id`.
pub fn started(workflow_type: &str, workflow_id: &str, input: Payload, start_time: u64) -> Event {
    Event::WorkflowStarted {
        workflow_type: workflow_type.into(),
        workflow_id: workflow_id.into(),
        input,
        seed: 42,
        start_time: Timestamp(start_time),
        continued_from: None,
        parent: None,
    }
}

/// Activity `cmd` completed on its first attempt with `result`.
pub fn completed(cmd: u32, result: &str) -> Event {
    Event::ActivityCompleted {
        cmd: CommandSeq(cmd),
        attempt: 1,
        result: json(&result),
    }
}

/// The instance of run 1 of `W`, from its first event.
pub fn machine<W: Workflow>(first: &Event) -> WorkflowMachine {
    WorkflowMachine::new(&WorkflowType::<W>::new(), RunId(1), first).unwrap()
}
