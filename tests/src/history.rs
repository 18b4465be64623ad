//! Checks over recorded histories: readable event lists for exact
//! assertions, normalisation of wall-clock fields for comparisons, and the
//! structural invariants every history must keep (also after a crash).

use refrain_history::{CommandSeq, Event, Payload, Timestamp, WorkflowId};
use std::collections::{BTreeMap, BTreeSet};

/// A `WorkflowStarted` event for feeding a
/// [`WorkflowMachine`](refrain::replay::WorkflowMachine) by hand: a first
/// run, no parent.
pub fn started_event(
    workflow_type: &str,
    workflow_id: &str,
    input: Payload,
    seed: u64,
    start_time: Timestamp,
) -> Event {
    Event::WorkflowStarted {
        workflow_type: workflow_type.to_owned(),
        workflow_id: WorkflowId::new(workflow_id),
        input,
        seed,
        start_time,
        continued_from: None,
        parent: None,
    }
}

/// The history as a list of event kinds, with the activity type added to
/// activity events and the name to signals:
/// `ActivityScheduled(reserve)`, `ActivityCompleted(reserve)`,
/// `SignalReceived(approval)`, `TimerFired`.
pub fn kinds(history: &[Event]) -> Vec<String> {
    let mut types: BTreeMap<CommandSeq, &str> = BTreeMap::new();
    history
        .iter()
        .map(|e| match e {
            Event::ActivityScheduled {
                cmd, activity_type, ..
            } => {
                types.insert(*cmd, activity_type);
                format!("ActivityScheduled({activity_type})")
            }
            Event::ActivityCompleted { cmd, .. } | Event::ActivityFailed { cmd, .. } => {
                let name = types.get(cmd).copied().unwrap_or("?");
                format!("{}({name})", e.kind())
            }
            Event::SignalReceived { name, .. } => format!("SignalReceived({name})"),
            other => other.kind().to_owned(),
        })
        .collect()
}

/// `expected` as owned strings, for comparing with [`kinds`].
pub fn strings(expected: &[&str]) -> Vec<String> {
    expected.iter().map(|s| (*s).to_owned()).collect()
}

/// The history with every wall-clock value zeroed (start time, activation
/// times, timer deadlines). What is left must be identical between two
/// executions of the same deterministic workflow with the same seed and the
/// same completion order.
pub fn normalise(history: &[Event]) -> Vec<Event> {
    history
        .iter()
        .cloned()
        .map(|mut e| {
            match &mut e {
                Event::WorkflowStarted { start_time, .. } => *start_time = Timestamp(0),
                Event::ActivationStarted { time } => *time = Timestamp(0),
                Event::TimerStarted { fire_at, .. } => *fire_at = Timestamp(0),
                _ => {}
            }
            e
        })
        .collect()
}

/// Attempt numbers of every `ActivityCompleted`, by command.
pub fn completions(history: &[Event]) -> BTreeMap<u32, Vec<u32>> {
    let mut out: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for e in history {
        if let Event::ActivityCompleted { cmd, attempt, .. } = e {
            out.entry(cmd.0).or_default().push(*attempt);
        }
    }
    out
}

/// Commands of every `ActivityScheduled`, in order.
pub fn scheduled(history: &[Event]) -> Vec<u32> {
    history
        .iter()
        .filter_map(|e| match e {
            Event::ActivityScheduled { cmd, .. } => Some(cmd.0),
            _ => None,
        })
        .collect()
}

/// The activations of `history` after `WorkflowStarted`: each starts with
/// `ActivationStarted`.
pub fn activations(history: &[Event]) -> Vec<&[Event]> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, e) in history.iter().enumerate() {
        if matches!(e, Event::ActivationStarted { .. }) {
            if let Some(s) = start {
                out.push(&history[s..i]);
            }
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&history[s..]);
    }
    out
}

/// Checks the structure every history must have, crash or no crash:
/// `WorkflowStarted` first and only there; then whole activations, each
/// `ActivationStarted`, inbound events, commands; non-decreasing activation
/// times; command numbers that only grow; every result, failure and timer
/// firing answering a command recorded earlier, at most once; no timer
/// applied in an activation earlier than its deadline or after its
/// cancellation; a terminal event only at the very end.
///
/// # Panics
/// Describing the first violation and printing the history.
pub fn assert_well_formed(history: &[Event]) {
    if let Err(why) = check_well_formed(history) {
        let listing: Vec<String> = history
            .iter()
            .enumerate()
            .map(|(i, e)| format!("  #{} {e:?}", i + 1))
            .collect();
        panic!("malformed history: {why}\n{}", listing.join("\n"));
    }
}

fn check_well_formed(history: &[Event]) -> Result<(), String> {
    let Some(Event::WorkflowStarted { start_time, .. }) = history.first() else {
        return Err("event 1 is not WorkflowStarted".into());
    };
    let mut last_time = *start_time;
    let mut last_cmd = 0u32;
    let mut activities = BTreeSet::new();
    let mut timers = BTreeMap::new();
    let mut resolved = BTreeSet::new();
    let mut fired = BTreeSet::new();
    let mut cancelled = BTreeSet::new();
    // 0: before any activation, 1: inbound part, 2: command part.
    let mut part = 0;
    for (i, e) in history.iter().enumerate().skip(1) {
        let seq = i + 1;
        if let Event::ActivationStarted { time } = e {
            if *time < last_time {
                return Err(format!("activation at #{seq} goes back in time"));
            }
            last_time = *time;
            part = 1;
            continue;
        }
        if part == 0 {
            return Err(format!("#{seq} {} precedes any activation", e.kind()));
        }
        if e.is_inbound() {
            if part == 2 {
                return Err(format!("inbound {} at #{seq} follows a command", e.kind()));
            }
            match e {
                Event::ActivityCompleted { cmd, .. } | Event::ActivityFailed { cmd, .. } => {
                    if !activities.contains(cmd) {
                        return Err(format!("#{seq} resolves {cmd}, never scheduled"));
                    }
                    if !resolved.insert(*cmd) {
                        return Err(format!("#{seq} resolves {cmd} a second time"));
                    }
                }
                Event::TimerFired { cmd } => {
                    let Some(fire_at) = timers.get(cmd) else {
                        return Err(format!("#{seq} fires {cmd}, never started"));
                    };
                    if last_time < *fire_at {
                        return Err(format!(
                            "#{seq} fires {cmd} in an activation at {last_time}, before {fire_at}"
                        ));
                    }
                    if !fired.insert(*cmd) {
                        return Err(format!("#{seq} fires {cmd} a second time"));
                    }
                    if cancelled.contains(cmd) {
                        return Err(format!("#{seq} fires {cmd} after its cancellation"));
                    }
                }
                _ => {}
            }
        } else if e.is_command() {
            part = 2;
            let new_cmd = match e {
                Event::ActivityScheduled { cmd, .. } => {
                    activities.insert(*cmd);
                    Some(*cmd)
                }
                Event::TimerStarted { cmd, fire_at, .. } => {
                    timers.insert(*cmd, *fire_at);
                    Some(*cmd)
                }
                Event::SideEffectRecorded { cmd, .. } => Some(*cmd),
                Event::TimerCancelled { cmd } => {
                    cancelled.insert(*cmd);
                    None
                }
                _ => None,
            };
            if let Some(cmd) = new_cmd {
                if cmd.0 <= last_cmd {
                    return Err(format!("#{seq} reuses or reorders {cmd}"));
                }
                last_cmd = cmd.0;
            }
            if e.is_terminal() && seq != history.len() {
                return Err(format!("terminal {} at #{seq} is not last", e.kind()));
            }
        } else {
            return Err(format!("#{seq} {} cannot follow WorkflowStarted", e.kind()));
        }
    }
    Ok(())
}
