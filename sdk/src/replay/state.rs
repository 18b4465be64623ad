//! The per-run state shared between [`WorkflowContext`](crate::WorkflowContext)
//! handles, the futures they return, and the [`WorkflowMachine`](super::WorkflowMachine)
//! that drives them. Single-threaded by design (`Rc<RefCell<_>>`): a run is
//! always polled on one thread, which is also why workflow futures need not
//! be `Send`.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use refrain_history::{
    Callsite, CommandSeq, Event, Failure, Payload, RunId, Timestamp, WorkflowId,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::task::Waker;

/// How a command's future was resolved by an inbound event.
#[derive(Clone, Debug)]
pub(crate) enum Resolution {
    ActivityCompleted {
        attempt: u32,
        result: Payload,
    },
    ActivityFailed {
        attempt: u32,
        failure: Failure,
    },
    TimerFired,
    ChildCompleted {
        result: Payload,
    },
    ChildFailed {
        failure: Failure,
    },
    HumanTaskDecided {
        decision: Payload,
        decided_by: String,
        comment: Option<String>,
        decided_at: Timestamp,
    },
}

/// A command future's slot: its resolution once known, and the waker of
/// whoever is waiting for it.
#[derive(Default)]
pub(crate) struct Slot {
    pub resolution: Option<Resolution>,
    pub waker: Option<Waker>,
    /// Activity type, kept for error messages.
    pub activity_type: Option<String>,
}

/// A command produced by workflow code in the current activation.
#[derive(Clone, Debug)]
pub(crate) struct Produced {
    pub event: Event,
    pub callsite: Option<Callsite>,
}

/// Something workflow code did that cannot be replayed, noticed while it
/// ran (rather than by comparing commands afterwards).
#[derive(Clone, Debug)]
pub(crate) struct Misuse {
    pub message: String,
    pub callsite: Option<Callsite>,
}

/// A signal applied to the run and not yet taken by its code.
pub(crate) struct BufferedSignal {
    pub arrival: u64,
    pub payload: Payload,
    pub sender: Option<String>,
}

pub(crate) struct RunState {
    pub workflow_id: WorkflowId,
    pub workflow_type: String,
    pub run: RunId,
    pub now: Timestamp,
    pub next_cmd: u32,
    pub produced: Vec<Produced>,
    pub slots: HashMap<u32, Slot>,
    /// Signals applied but not yet taken, by name, each with its arrival
    /// number so that continue-as-new can carry them in arrival order.
    pub signals: BTreeMap<String, VecDeque<BufferedSignal>>,
    pub signals_applied: u64,
    pub signal_wakers: Vec<Waker>,
    /// Who claimed each human task (by command) from its group, until it
    /// escalates: reminders and the escalation then name the claimer.
    pub human_task_claims: HashMap<u32, String>,
    /// How many pending signal futures wait for each signal name: what
    /// the run waits for, recorded with each commit for `describe`.
    pub awaited_signals: BTreeMap<String, usize>,
    pub rng: ChaCha8Rng,
    pub replaying: bool,
    /// Side-effect values recorded in history, by command number, so that
    /// replay returns them instead of recomputing.
    pub recorded_side_effects: HashMap<u32, Payload>,
    /// Set while the instance is being dropped (cache eviction): futures
    /// dropped then must not emit cancellations.
    pub tearing_down: bool,
    pub misuse: Option<Misuse>,
    pub history_len: u64,
    pub history_bytes: u64,
    pub history_limits: (u64, u64),
    /// Patch decisions already taken in this run.
    pub patches: HashMap<String, bool>,
    /// Patch markers in the commands of the activation being replayed.
    pub recorded_patches: HashSet<String>,
    /// Set by `ctx.continue_as_new`: the next run's input.
    pub continue_as_new: Option<Payload>,
    /// The reason of the first cancellation request applied, if any.
    pub cancel_requested: Option<String>,
    pub cancel_wakers: Vec<Waker>,
    /// Query handlers by name.
    pub queries: HashMap<String, crate::query::QueryHandler>,
    /// Update validators and handlers by name.
    pub updates: HashMap<String, crate::update::UpdateHandler>,
    /// Whether workflow code looked at cancellation. A workflow that never
    /// does is cancelled by dropping it; one that does decides itself.
    pub cancel_observed: bool,
}

impl RunState {
    pub fn new(
        workflow_id: WorkflowId,
        workflow_type: String,
        run: RunId,
        seed: u64,
        start_time: Timestamp,
    ) -> Self {
        RunState {
            workflow_id,
            workflow_type,
            run,
            now: start_time,
            next_cmd: 1,
            produced: Vec::new(),
            slots: HashMap::new(),
            signals: BTreeMap::new(),
            signals_applied: 0,
            signal_wakers: Vec::new(),
            awaited_signals: BTreeMap::new(),
            human_task_claims: HashMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            replaying: false,
            recorded_side_effects: HashMap::new(),
            tearing_down: false,
            misuse: None,
            history_len: 1,
            history_bytes: 0,
            history_limits: (u64::MAX, u64::MAX),
            patches: HashMap::new(),
            recorded_patches: HashSet::new(),
            continue_as_new: None,
            cancel_requested: None,
            cancel_wakers: Vec::new(),
            cancel_observed: false,
            queries: HashMap::new(),
            updates: HashMap::new(),
        }
    }

    /// Takes the next command number.
    pub fn next_cmd(&mut self) -> CommandSeq {
        let cmd = CommandSeq(self.next_cmd);
        self.next_cmd += 1;
        cmd
    }

    pub fn emit(&mut self, event: Event, callsite: Option<Callsite>) {
        self.produced.push(Produced { event, callsite });
    }

    pub fn record_misuse(&mut self, message: String, callsite: Option<Callsite>) {
        if self.misuse.is_none() {
            self.misuse = Some(Misuse { message, callsite });
        }
    }

    /// Applies one inbound event, waking whoever waits on it.
    pub fn apply_inbound(&mut self, event: &Event) {
        let (cmd, resolution) = match event {
            Event::ActivityCompleted {
                cmd,
                attempt,
                result,
            } => (
                *cmd,
                Resolution::ActivityCompleted {
                    attempt: *attempt,
                    result: result.clone(),
                },
            ),
            Event::ActivityFailed {
                cmd,
                attempt,
                failure,
            } => (
                *cmd,
                Resolution::ActivityFailed {
                    attempt: *attempt,
                    failure: failure.clone(),
                },
            ),
            Event::TimerFired { cmd } => (*cmd, Resolution::TimerFired),
            Event::ChildWorkflowCompleted { cmd, result } => (
                *cmd,
                Resolution::ChildCompleted {
                    result: result.clone(),
                },
            ),
            Event::ChildWorkflowFailed { cmd, failure } => (
                *cmd,
                Resolution::ChildFailed {
                    failure: failure.clone(),
                },
            ),
            Event::HumanTaskDecided {
                cmd,
                decision,
                decided_by,
                comment,
                decided_at,
            } => (
                *cmd,
                Resolution::HumanTaskDecided {
                    decision: decision.clone(),
                    decided_by: decided_by.clone(),
                    comment: comment.clone(),
                    decided_at: *decided_at,
                },
            ),
            Event::HumanTaskClaimed {
                cmd, claimed_by, ..
            } => {
                self.human_task_claims.insert(cmd.0, claimed_by.clone());
                return;
            }
            Event::WorkflowCancelRequested { reason, .. } => {
                if self.cancel_requested.is_none() {
                    self.cancel_requested = Some(reason.clone());
                    for w in self.cancel_wakers.drain(..) {
                        w.wake();
                    }
                }
                return;
            }
            Event::SignalReceived {
                name,
                payload,
                sender,
            } => {
                self.signals_applied += 1;
                self.signals
                    .entry(name.clone())
                    .or_default()
                    .push_back(BufferedSignal {
                        arrival: self.signals_applied,
                        payload: payload.clone(),
                        sender: sender.clone(),
                    });
                for w in self.signal_wakers.drain(..) {
                    w.wake();
                }
                return;
            }
            _ => return,
        };
        let slot = self.slots.entry(cmd.0).or_default();
        // A command resolves at most once; a duplicate delivery is ignored.
        if slot.resolution.is_none() {
            slot.resolution = Some(resolution);
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }

    /// Takes the next buffered signal named `name`.
    pub fn take_signal(&mut self, name: &str) -> Option<Payload> {
        self.signals
            .get_mut(name)
            .and_then(|q| q.pop_front())
            .map(|s| s.payload)
    }

    /// Drains every buffered signal in arrival order.
    pub fn drain_signals(&mut self) -> Vec<refrain_history::SignalRecord> {
        let mut all: Vec<(String, BufferedSignal)> = std::mem::take(&mut self.signals)
            .into_iter()
            .flat_map(|(name, q)| q.into_iter().map(move |s| (name.clone(), s)))
            .collect();
        all.sort_by_key(|(_, s)| s.arrival);
        all.into_iter()
            .map(|(name, s)| refrain_history::SignalRecord {
                name,
                payload: s.payload,
                sender: s.sender,
            })
            .collect()
    }

    /// A signal future started (`true`) or stopped (`false`) waiting for
    /// `name`.
    pub fn await_signal(&mut self, name: &str, waiting: bool) {
        if waiting {
            *self.awaited_signals.entry(name.to_owned()).or_default() += 1;
        } else if let Some(n) = self.awaited_signals.get_mut(name) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.awaited_signals.remove(name);
            }
        }
    }

    /// Whether any SDK future is registered as waiting. A workflow that is
    /// pending while none is waits on something Refrain does not control.
    pub fn sdk_waiting(&self) -> bool {
        !self.signal_wakers.is_empty()
            || !self.cancel_wakers.is_empty()
            || self
                .slots
                .values()
                .any(|s| s.waker.is_some() && s.resolution.is_none())
    }
}

pub(crate) type SharedState = Rc<RefCell<RunState>>;
