//! Human tasks: a workflow asks a person to decide something (approve a
//! loan, acknowledge an incident) and waits, with reminders, a deadline per
//! person, an escalation chain and a fallback, all durable.
//!
//! ```
//! # use refrain::{Activity, ActivityContext, ActivityError, HumanTaskNotice, WorkflowContext,
//! #               WorkflowError};
//! # use serde::{Deserialize, Serialize};
//! # use std::time::Duration;
//! # #[derive(Debug, Serialize, Deserialize)]
//! # enum Verdict { Approve, Reject }
//! # #[derive(Serialize)]
//! # struct Application { applicant: String }
//! # struct EmailUnderwriter;
//! # #[refrain::activity]
//! # impl Activity for EmailUnderwriter {
//! #     const NAME: &'static str = "email-underwriter";
//! #     type Input = HumanTaskNotice;
//! #     type Output = ();
//! #     async fn run(&self, _: ActivityContext, _: HumanTaskNotice) -> Result<(), ActivityError> {
//! #         Ok(())
//! #     }
//! # }
//! # async fn review(ctx: WorkflowContext, application: Application) -> Result<(), WorkflowError> {
//! let decision = ctx
//!     .human_task::<Verdict>("underwriting-review")
//!     .assignee("underwriter-1")
//!     .form(&application)
//!     .deadline(Duration::from_secs(4 * 3600))      // per assignee
//!     .remind_every(Duration::from_secs(3600))
//!     .escalate_to(["head-of-credit"])
//!     .notify_with::<EmailUnderwriter>()             // assignment, reminders, escalations
//!     .fallback(Verdict::Reject)                      // or fail when nobody answers
//!     .await?;
//! println!("{} decided {:?}: {:?}", decision.decided_by, decision.value, decision.comment);
//! # Ok(()) }
//! ```
//!
//! # What is recorded
//!
//! The call records `HumanTaskAssigned` (its command number names the task
//! from then on) and the store lists the task under its assignee
//! ([`Client::list_human_tasks`]). The rest is built from ordinary durable
//! timers and activities, so it replays like any other workflow code:
//!
//! - every `remind_every`, counted from the moment the current assignee got
//!   the task, `HumanTaskReminded` (and a [`NoticeKind::Reminder`] notice);
//!   a reminder whose time passed while no worker ran is sent once, late,
//!   rather than once per missed interval;
//! - when the assignee's deadline passes, `HumanTaskEscalated` to the next
//!   person in the chain (and a [`NoticeKind::Escalated`] notice); the
//!   store moves the task to their list;
//! - when the last person's deadline passes, `HumanTaskClosed` and the
//!   fallback value, or [`HumanTaskFailed`] without one;
//! - a decision ([`Client::decide_human_task`]) arrives as
//!   `HumanTaskDecided`, with who decided, when and why: the audit trail is
//!   the history.
//!
//! A decision and a timer that arrive together are taken in this order:
//! the decision, then a reminder, then the deadline. Notices still being
//! sent when the task ends are cancelled. If the workflow stops waiting
//! (the future is dropped, or the workflow is cancelled),
//! `HumanTaskClosed` records that too.

use crate::activity::Activity;
use crate::client::{Client, ClientError};
use crate::commands::{ActivityCall, TimerFuture};
use crate::context::WorkflowContext;
use crate::error::ActivityFailed;
use crate::payload::{self, PayloadError};
use crate::replay::state::{Resolution, SharedState};
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use refrain_history::{
    ActivityOptions, Callsite, CommandSeq, EscalationStep, Event, EventSeq, Failure,
    HumanTaskRecord, Payload, RetryPolicy, RunId, Timestamp, WorkflowId,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

mod decide;

/// `Failure::kind` of a human task that nobody decided in time and that
/// had no fallback.
pub const UNANSWERED: &str = "human-task-unanswered";

/// `HumanDecision::decided_by` of a fallback value.
pub const FALLBACK_DECIDER: &str = "fallback";

/// One step of an escalation chain: who gets the task next, and how long
/// they have (the task's own `deadline` when `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalation {
    /// Who.
    pub assignee: String,
    /// Their deadline; `None` takes the task's `deadline`.
    pub deadline: Option<Duration>,
}

impl From<&str> for Escalation {
    fn from(assignee: &str) -> Self {
        Escalation {
            assignee: assignee.to_owned(),
            deadline: None,
        }
    }
}

impl From<String> for Escalation {
    fn from(assignee: String) -> Self {
        Escalation {
            assignee,
            deadline: None,
        }
    }
}

impl From<(&str, Duration)> for Escalation {
    fn from((assignee, deadline): (&str, Duration)) -> Self {
        Escalation {
            assignee: assignee.to_owned(),
            deadline: Some(deadline),
        }
    }
}

impl From<(String, Duration)> for Escalation {
    fn from((assignee, deadline): (String, Duration)) -> Self {
        Escalation {
            assignee,
            deadline: Some(deadline),
        }
    }
}

/// Why a [`HumanTaskNotice`] is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeKind {
    /// The task was just assigned.
    Assigned,
    /// The assignee has not decided yet; `number` counts the reminders at
    /// this escalation level, from 1.
    Reminder {
        /// Which reminder.
        number: u32,
    },
    /// The task was escalated to the assignee because `from` did not
    /// decide in time.
    Escalated {
        /// The previous assignee.
        from: String,
    },
}

/// What a notification activity registered with
/// [`HumanTaskCall::notify_with`] receives: the input of that activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HumanTaskNotice {
    /// The workflow that asks.
    pub workflow_id: WorkflowId,
    /// The task's name.
    pub task: String,
    /// Why the notice is sent.
    pub kind: NoticeKind,
    /// Who is to be notified: the current assignee.
    pub assignee: String,
    /// Escalation level, 0 for the first assignee.
    pub level: u32,
    /// When the assignee's time runs out, if it does.
    pub deadline: Option<SystemTime>,
    /// The task's form, if it has one.
    pub form: Option<serde_json::Value>,
}

/// A person's decision (or the fallback), as the awaiting workflow gets it.
#[derive(Clone, Debug, PartialEq)]
pub struct HumanDecision<D> {
    /// What was decided.
    pub value: D,
    /// Who decided ([`FALLBACK_DECIDER`] for a fallback).
    pub decided_by: String,
    /// Why, if they said.
    pub comment: Option<String>,
    /// Escalation level the task was at: 0 if the first assignee had it.
    pub assignee_level: u32,
    /// When the decision was submitted (for a fallback: when the last
    /// deadline was seen to pass).
    pub decided_at: SystemTime,
    /// Whether nobody answered and this is the fallback value.
    pub fallback: bool,
}

/// A human task ended without a usable decision.
#[derive(Clone, Debug, PartialEq)]
pub struct HumanTaskFailed {
    /// The task's name.
    pub task: String,
    /// Its command.
    pub cmd: CommandSeq,
    /// Everyone who was asked, in order.
    pub asked: Vec<String>,
    /// Why: kind [`UNANSWERED`] when every deadline passed without a
    /// fallback, `payload` when the decision did not decode.
    pub failure: Failure,
}

impl HumanTaskFailed {
    /// Whether nobody decided in time.
    pub fn is_unanswered(&self) -> bool {
        self.failure.kind == UNANSWERED
    }
}

impl fmt::Display for HumanTaskFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "human task {} ({}) failed: {}",
            self.task, self.cmd, self.failure
        )
    }
}

impl std::error::Error for HumanTaskFailed {}

type Notifier = Rc<
    dyn Fn(
        &SharedState,
        HumanTaskNotice,
        &ActivityOptions,
        &Callsite,
    ) -> LocalBoxFuture<'static, Result<(), ActivityFailed>>,
>;

/// Notices are quick messages: bounded so that a notification service
/// that is down cannot hold work hostage for long.
fn default_notify_options() -> ActivityOptions {
    ActivityOptions {
        start_to_close: Some(Duration::from_secs(10)),
        schedule_to_close: Some(Duration::from_secs(300)),
        heartbeat_timeout: None,
        retry: RetryPolicy::exponential().max_attempts(3),
    }
}

/// Emits `HumanTaskClosed` if the task is dropped before it ended, so the
/// history (and the assignee's list) shows that nobody waits any more.
struct CloseGuard {
    state: SharedState,
    cmd: CommandSeq,
    armed: bool,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(mut st) = self.state.try_borrow_mut() else {
            return;
        };
        if st.tearing_down {
            return;
        }
        let decided = match st.slots.get_mut(&self.cmd.0) {
            Some(slot) => {
                slot.waker = None;
                slot.resolution.is_some()
            }
            None => false,
        };
        if !decided {
            st.emit(
                Event::HumanTaskClosed {
                    cmd: self.cmd,
                    reason: "cancelled: the workflow stopped waiting for it".into(),
                },
                None,
            );
        }
    }
}

/// A human task being set up. Recorded at the call, like an activity;
/// `.assignee`, `.form` and `.deadline` amend the recorded assignment, the
/// other options shape what happens while it waits. Await it for the
/// decision.
#[must_use = "a human task does nothing useful until awaited"]
pub struct HumanTaskCall<D> {
    ctx: WorkflowContext,
    cmd: CommandSeq,
    task: String,
    callsite: Callsite,
    assignee: Option<String>,
    deadline: Option<Duration>,
    escalations: Vec<Escalation>,
    remind_every: Option<Duration>,
    fallback: Option<D>,
    notify: Option<Notifier>,
    notify_options: ActivityOptions,
    form: Option<Payload>,
    guard: CloseGuard,
}

impl WorkflowContext {
    /// Asks a person to decide `task` and returns the decision (of type
    /// `D`) when awaited. Chain `.assignee(who)` (required) and any of
    /// `.form`, `.deadline`, `.remind_every`, `.escalate_to`,
    /// `.notify_with`, `.fallback`; see [`crate::human_task`].
    ///
    /// ```
    /// # use refrain::{WorkflowContext, WorkflowError};
    /// # use std::time::Duration;
    /// # #[derive(serde::Deserialize)]
    /// # struct Ack;
    /// # async fn incident(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    /// let ack = ctx.human_task::<Ack>("ack-incident")
    ///     .assignee("oncall-tier1")
    ///     .deadline(Duration::from_secs(300))
    ///     .escalate_to(["oncall-tier2"])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn human_task<D: DeserializeOwned + 'static>(
        &self,
        task: impl Into<String>,
    ) -> HumanTaskCall<D> {
        let callsite = Callsite::from_location(Location::caller());
        let task = task.into();
        let state = self.state().clone();
        let cmd = {
            let mut st = state.borrow_mut();
            let cmd = st.next_cmd();
            st.slots.entry(cmd.0).or_default();
            st.emit(
                Event::HumanTaskAssigned {
                    cmd,
                    task: task.clone(),
                    assignee: String::new(),
                    form: None,
                    deadline: None,
                    level: 0,
                    callsite: callsite.clone(),
                    escalations: Vec::new(),
                },
                Some(callsite.clone()),
            );
            cmd
        };
        HumanTaskCall {
            ctx: self.clone(),
            cmd,
            task,
            callsite,
            assignee: None,
            deadline: None,
            escalations: Vec::new(),
            remind_every: None,
            fallback: None,
            notify: None,
            notify_options: default_notify_options(),
            form: None,
            guard: CloseGuard {
                state,
                cmd,
                armed: true,
            },
        }
    }
}

impl<D: DeserializeOwned + 'static> HumanTaskCall<D> {
    /// Changes the recorded `HumanTaskAssigned` (in the activation that
    /// produced it; later is a misuse).
    fn amend(&self, what: &str, f: impl FnOnce(Amended<'_>, Timestamp)) {
        let mut st = self.ctx.state().borrow_mut();
        let now = st.now;
        let found = st
            .produced
            .iter_mut()
            .rev()
            .find_map(|p| match &mut p.event {
                Event::HumanTaskAssigned {
                    cmd,
                    assignee,
                    form,
                    deadline,
                    escalations,
                    ..
                } if *cmd == self.cmd => Some(Amended {
                    assignee,
                    form,
                    deadline,
                    escalations,
                }),
                _ => None,
            });
        match found {
            Some(amended) => f(amended, now),
            None => st.record_misuse(
                format!(
                    "the {what} of human task {} ({}) was changed after the activation that assigned it",
                    self.task, self.cmd
                ),
                Some(self.callsite.clone()),
            ),
        }
    }

    /// Who is asked first. Required.
    pub fn assignee(mut self, who: impl Into<String>) -> Self {
        let who = who.into();
        self.amend("assignee", |a, _| a.assignee.clone_from(&who));
        self.assignee = Some(who);
        self
    }

    /// What the person needs to decide: recorded with the assignment,
    /// shown in task lists and passed to notices.
    pub fn form<T: Serialize + ?Sized>(mut self, form: &T) -> Self {
        match payload::encode(&format!("form of human task {}", self.task), form) {
            Ok(p) => {
                self.amend("form", |a, _| *a.form = Some(p.clone()));
                self.form = Some(p);
            }
            Err(e) => self
                .ctx
                .state()
                .borrow_mut()
                .record_misuse(e.to_string(), Some(self.callsite.clone())),
        }
        self
    }

    /// How long each assignee has before the task moves to the next one in
    /// the chain (or, after the last, ends with the fallback or a failure).
    /// Without a deadline the task waits for its first assignee forever.
    pub fn deadline(mut self, each: Duration) -> Self {
        self.amend("deadline", |a, now| {
            *a.deadline = Some(now.saturating_add(each));
        });
        self.deadline = Some(each);
        self
    }

    /// Reminds the current assignee at this interval, counted from when
    /// they got the task, until their deadline.
    pub fn remind_every(mut self, interval: Duration) -> Self {
        self.remind_every = Some(interval.max(Duration::from_millis(1)));
        self
    }

    /// Who gets the task, in order, when the previous assignee's deadline
    /// passes: names (each with the task's `deadline`) or
    /// `(name, deadline)` pairs.
    pub fn escalate_to<I>(mut self, chain: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Escalation>,
    {
        let added: Vec<Escalation> = chain.into_iter().map(Into::into).collect();
        // Recorded with the assignment, so that task lists and `describe`
        // can say who is next ("escalates to credit-manager") without the
        // workflow's code.
        self.amend("escalation chain", |a, _| {
            a.escalations.extend(added.iter().map(|e| EscalationStep {
                assignee: e.assignee.clone(),
                deadline: e.deadline,
            }));
        });
        self.escalations.extend(added);
        self
    }

    /// The decision to use when every deadline passed without one. Without
    /// a fallback the task fails with [`UNANSWERED`].
    pub fn fallback(mut self, value: D) -> Self {
        self.fallback = Some(value);
        self
    }

    /// Runs activity `A` with a [`HumanTaskNotice`] for the assignment,
    /// each reminder and each escalation (the email, chat message or page
    /// that tells the person). A failed notice is logged; it does not fail
    /// the task.
    pub fn notify_with<A: Activity<Input = HumanTaskNotice>>(mut self) -> Self {
        self.notify = Some(Rc::new(|state, notice, options, callsite| {
            let input = payload::encode(&format!("{} input", A::NAME), &notice);
            let call = ActivityCall::<A>::schedule(state.clone(), input, callsite.clone())
                .options(options.clone());
            async move { call.await.map(drop) }.boxed_local()
        }));
        self
    }

    /// Timeouts and retries of the notification activity (default: 10 s
    /// per attempt, 3 attempts, 5 minutes in all).
    pub fn notify_options(mut self, options: ActivityOptions) -> Self {
        self.notify_options = options;
        self
    }
}

/// The fields of a recorded `HumanTaskAssigned` that the builder amends.
struct Amended<'a> {
    assignee: &'a mut String,
    form: &'a mut Option<Payload>,
    deadline: &'a mut Option<Timestamp>,
    escalations: &'a mut Vec<EscalationStep>,
}

/// The future of an awaited [`HumanTaskCall`].
#[must_use = "futures do nothing unless awaited"]
pub struct HumanTaskFuture<D> {
    inner: LocalBoxFuture<'static, Result<HumanDecision<D>, HumanTaskFailed>>,
}

impl<D> Future for HumanTaskFuture<D> {
    type Output = Result<HumanDecision<D>, HumanTaskFailed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<D: DeserializeOwned + 'static> IntoFuture for HumanTaskCall<D> {
    type Output = Result<HumanDecision<D>, HumanTaskFailed>;
    type IntoFuture = HumanTaskFuture<D>;

    fn into_future(self) -> HumanTaskFuture<D> {
        let HumanTaskCall {
            ctx,
            cmd,
            task,
            callsite,
            assignee,
            deadline,
            escalations,
            remind_every,
            fallback,
            notify,
            notify_options,
            form,
            mut guard,
        } = self;
        let Some(assignee) = assignee else {
            // The activation fails on this; the task is never committed.
            guard.armed = false;
            ctx.state().borrow_mut().record_misuse(
                format!("human task {task} ({cmd}) has no assignee: call .assignee(who)"),
                Some(callsite),
            );
            let mut failure = Failure::application("no-assignee", "the task has no assignee");
            failure.non_retryable = true;
            let failed = HumanTaskFailed {
                task,
                cmd,
                asked: Vec::new(),
                failure,
            };
            return HumanTaskFuture {
                inner: async move { Err(failed) }.boxed_local(),
            };
        };
        let mut chain = vec![Escalation { assignee, deadline }];
        chain.extend(escalations.into_iter().map(|e| Escalation {
            deadline: e.deadline.or(deadline),
            ..e
        }));
        let plan = Plan {
            state: ctx.state().clone(),
            ctx,
            cmd,
            task,
            callsite,
            chain,
            remind_every,
            notify,
            notify_options,
            form: form.and_then(|p| serde_json::from_slice(p.as_bytes()).ok()),
        };
        HumanTaskFuture {
            inner: drive(plan, fallback, guard).boxed_local(),
        }
    }
}

/// Everything the waiting loop needs.
struct Plan {
    state: SharedState,
    ctx: WorkflowContext,
    cmd: CommandSeq,
    task: String,
    callsite: Callsite,
    /// Level 0 is the first assignee.
    chain: Vec<Escalation>,
    remind_every: Option<Duration>,
    notify: Option<Notifier>,
    notify_options: ActivityOptions,
    form: Option<serde_json::Value>,
}

type Notices = Vec<LocalBoxFuture<'static, Result<(), ActivityFailed>>>;

/// What ended one wait.
enum Woke {
    Decided {
        decision: Payload,
        decided_by: String,
        comment: Option<String>,
        decided_at: Timestamp,
    },
    Remind,
    Deadline,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Plan {
    fn now(&self) -> Timestamp {
        self.state.borrow().now
    }

    fn emit(&self, event: Event) {
        self.state
            .borrow_mut()
            .emit(event, Some(self.callsite.clone()));
    }

    fn timer(&self, d: Duration) -> TimerFuture {
        TimerFuture::start(self.state.clone(), d, self.callsite.clone())
    }

    fn notify(
        &self,
        notices: &mut Notices,
        kind: NoticeKind,
        level: usize,
        due: Option<Timestamp>,
    ) {
        let Some(notify) = &self.notify else {
            return;
        };
        let notice = HumanTaskNotice {
            workflow_id: self.state.borrow().workflow_id.clone(),
            task: self.task.clone(),
            kind,
            assignee: self.holder(level),
            level: level as u32,
            deadline: due.map(Timestamp::to_system_time),
            form: self.form.clone(),
        };
        notices.push(notify(
            &self.state,
            notice,
            &self.notify_options,
            &self.callsite,
        ));
    }

    /// The next reminder after reminder `last` of a level that began at
    /// `start`: at `start + k * interval` for the first such time after
    /// now (missed ones are not repeated), if before the level's deadline.
    fn next_reminder(
        &self,
        start: Timestamp,
        deadline: Option<Duration>,
        last: u64,
    ) -> Option<(u64, TimerFuture)> {
        let every = millis(self.remind_every?).max(1);
        let now = self.now();
        let elapsed = now.0.saturating_sub(start.0);
        let k = (last + 1).max(elapsed / every + 1);
        let offset = k.checked_mul(every)?;
        if deadline.is_some_and(|d| offset >= millis(d)) {
            return None;
        }
        let at = start.0.saturating_add(offset);
        let wait = Duration::from_millis(at.saturating_sub(now.0));
        Some((k, self.timer(wait)))
    }

    fn poll_decision(&self, cx: &mut Context<'_>) -> Poll<Woke> {
        let mut st = self.state.borrow_mut();
        let slot = st.slots.entry(self.cmd.0).or_default();
        match &slot.resolution {
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Some(Resolution::HumanTaskDecided {
                decision,
                decided_by,
                comment,
                decided_at,
            }) => {
                let woke = Woke::Decided {
                    decision: decision.clone(),
                    decided_by: decided_by.clone(),
                    comment: comment.clone(),
                    decided_at: *decided_at,
                };
                slot.waker = None;
                Poll::Ready(woke)
            }
            Some(_) => {
                let message = format!(
                    "{} was resolved as something other than a human task",
                    self.cmd
                );
                st.record_misuse(message, None);
                Poll::Pending
            }
        }
    }

    /// Who has the task at `level`: its assignee, or the member who
    /// claimed it from that group.
    fn holder(&self, level: usize) -> String {
        self.state
            .borrow()
            .human_task_claims
            .get(&self.cmd.0)
            .cloned()
            .unwrap_or_else(|| self.chain[level].assignee.clone())
    }

    /// The claim of the task, which ends as the task escalates.
    fn take_claim(&self) -> Option<String> {
        self.state
            .borrow_mut()
            .human_task_claims
            .remove(&self.cmd.0)
    }

    fn asked(&self) -> Vec<String> {
        self.chain.iter().map(|e| e.assignee.clone()).collect()
    }
}

/// Drives notices in flight, logging the ones that failed.
fn poll_notices(ctx: &WorkflowContext, notices: &mut Notices, cx: &mut Context<'_>) {
    notices.retain_mut(|n| match n.as_mut().poll(cx) {
        Poll::Pending => true,
        Poll::Ready(Ok(())) => false,
        Poll::Ready(Err(e)) => {
            ctx.log_warn(format!("human task notice not sent: {e}"));
            false
        }
    });
}

/// The waiting loop: per level, wait for a decision, a reminder or the
/// deadline; escalate; end with the fallback or a failure.
async fn drive<D: DeserializeOwned + 'static>(
    plan: Plan,
    fallback: Option<D>,
    mut guard: CloseGuard,
) -> Result<HumanDecision<D>, HumanTaskFailed> {
    let mut notices: Notices = Vec::new();
    let cmd = plan.cmd;
    for level in 0..plan.chain.len() {
        let start = plan.now();
        let deadline = plan.chain[level].deadline;
        let due = deadline.map(|d| start.saturating_add(d));
        if level == 0 {
            plan.notify(&mut notices, NoticeKind::Assigned, level, due);
        } else {
            // The store moves the task from whoever holds it, a member who
            // claimed it from the group included; the history says so.
            let from = plan
                .take_claim()
                .unwrap_or_else(|| plan.chain[level - 1].assignee.clone());
            plan.emit(Event::HumanTaskEscalated {
                cmd,
                from: from.clone(),
                to: plan.chain[level].assignee.clone(),
                level: level as u32,
                deadline: due,
            });
            plan.notify(&mut notices, NoticeKind::Escalated { from }, level, due);
        }
        let mut deadline_timer = deadline.map(|d| plan.timer(d));
        let mut last_reminder = 0;
        let mut reminders = 0;
        loop {
            let mut reminder = plan.next_reminder(start, deadline, last_reminder);
            let woke = std::future::poll_fn(|cx| {
                poll_notices(&plan.ctx, &mut notices, cx);
                if let Poll::Ready(w) = plan.poll_decision(cx) {
                    return Poll::Ready(w);
                }
                if let Some((_, t)) = reminder.as_mut() {
                    if Pin::new(t).poll(cx).is_ready() {
                        return Poll::Ready(Woke::Remind);
                    }
                }
                if let Some(t) = deadline_timer.as_mut() {
                    if Pin::new(t).poll(cx).is_ready() {
                        return Poll::Ready(Woke::Deadline);
                    }
                }
                Poll::Pending
            })
            .await;
            match woke {
                Woke::Decided {
                    decision,
                    decided_by,
                    comment,
                    decided_at,
                } => {
                    guard.armed = false;
                    let what = format!("decision of human task {}", plan.task);
                    return match payload::decode::<D>(&what, &decision) {
                        Ok(value) => Ok(HumanDecision {
                            value,
                            decided_by,
                            comment,
                            assignee_level: level as u32,
                            decided_at: decided_at.to_system_time(),
                            fallback: false,
                        }),
                        Err(e) => {
                            let mut failure = Failure::application("payload", e.to_string());
                            failure.non_retryable = true;
                            Err(HumanTaskFailed {
                                task: plan.task.clone(),
                                cmd,
                                asked: plan.asked()[..=level].to_vec(),
                                failure,
                            })
                        }
                    };
                }
                Woke::Remind => {
                    if let Some((k, _)) = reminder {
                        last_reminder = k;
                    }
                    reminders += 1;
                    plan.emit(Event::HumanTaskReminded {
                        cmd,
                        assignee: plan.holder(level),
                    });
                    plan.notify(
                        &mut notices,
                        NoticeKind::Reminder { number: reminders },
                        level,
                        due,
                    );
                }
                Woke::Deadline => break,
            }
        }
    }
    let asked = plan.asked();
    let outcome = if fallback.is_some() {
        "fallback used"
    } else {
        "the task failed"
    };
    plan.emit(Event::HumanTaskClosed {
        cmd,
        reason: format!("nobody answered (asked {}); {outcome}", asked.join(", ")),
    });
    guard.armed = false;
    match fallback {
        Some(value) => Ok(HumanDecision {
            value,
            decided_by: FALLBACK_DECIDER.to_owned(),
            comment: None,
            assignee_level: (asked.len() - 1) as u32,
            decided_at: plan.now().to_system_time(),
            fallback: true,
        }),
        None => {
            let mut failure = Failure::application(
                UNANSWERED,
                format!(
                    "nobody decided {} in time (asked {})",
                    plan.task,
                    asked.join(", ")
                ),
            );
            failure.non_retryable = true;
            Err(HumanTaskFailed {
                task: plan.task.clone(),
                cmd,
                asked,
                failure,
            })
        }
    }
}

// ----- operators: listing and deciding -----

/// An open human task, as a task list shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct HumanTask {
    /// The workflow that asks.
    pub workflow_id: WorkflowId,
    /// Its run.
    pub run: RunId,
    /// The task's command in that run.
    pub cmd: CommandSeq,
    /// What is asked.
    pub task: String,
    /// Who has it now.
    pub assignee: String,
    /// The form, as recorded (JSON).
    pub form: Option<Payload>,
    /// When the current assignee's time runs out, if it does.
    pub deadline: Option<SystemTime>,
    /// When the current assignee got it.
    pub assigned_at: SystemTime,
    /// Escalation level, 0 for the first assignee.
    pub level: u32,
    /// Who gets it when the current assignee's deadline passes: the next
    /// step of the chain recorded with the assignment, if the task has a
    /// deadline and a next step.
    pub escalates_to: Option<String>,
    /// The group the current assignee claimed it from, if it was claimed
    /// ([`Client::claim_human_task`]).
    pub claimed_from: Option<String>,
}

impl HumanTask {
    /// The form decoded as `T`.
    ///
    /// # Errors
    /// If the recorded form is not a `T`.
    pub fn form<T: DeserializeOwned>(&self) -> Result<Option<T>, PayloadError> {
        self.form
            .as_ref()
            .map(|p| payload::decode(&format!("form of human task {}", self.task), p))
            .transpose()
    }

    /// The exact reference to decide this task with.
    pub fn reference(&self) -> HumanTaskRef {
        HumanTaskRef::Exact {
            workflow_id: self.workflow_id.clone(),
            run: self.run,
            cmd: self.cmd,
        }
    }
}

impl From<HumanTaskRecord> for HumanTask {
    fn from(r: HumanTaskRecord) -> Self {
        let escalates_to = next_assignee(&r);
        HumanTask {
            workflow_id: r.workflow_id,
            run: r.run,
            cmd: r.cmd,
            task: r.task,
            assignee: r.assignee,
            form: r.form,
            deadline: r.deadline.map(Timestamp::to_system_time),
            assigned_at: r.assigned_at.to_system_time(),
            level: r.level,
            escalates_to,
            claimed_from: r.claimed_from,
        }
    }
}

/// Who gets task `r` when its current assignee's deadline passes. Without
/// a deadline it never escalates, whatever the chain says.
pub(crate) fn next_assignee(r: &HumanTaskRecord) -> Option<String> {
    r.deadline?;
    r.escalates_to().map(|e| e.assignee.clone())
}

/// Which human task a decision is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HumanTaskRef {
    /// The open task named `task` of the latest run of `workflow_id`: what
    /// a person or script knows without a task list.
    Named {
        /// The workflow.
        workflow_id: WorkflowId,
        /// The task's name.
        task: String,
    },
    /// Exactly task `cmd` of `run`, as a task list gives it
    /// ([`HumanTask::reference`]).
    Exact {
        /// The workflow.
        workflow_id: WorkflowId,
        /// Its run.
        run: RunId,
        /// The task's command.
        cmd: CommandSeq,
    },
}

impl HumanTaskRef {
    /// The open task named `task` of workflow `workflow_id`.
    pub fn named(workflow_id: impl Into<WorkflowId>, task: impl Into<String>) -> Self {
        HumanTaskRef::Named {
            workflow_id: workflow_id.into(),
            task: task.into(),
        }
    }
}

impl From<&HumanTask> for HumanTaskRef {
    fn from(t: &HumanTask) -> Self {
        t.reference()
    }
}

impl fmt::Display for HumanTaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HumanTaskRef::Named { workflow_id, task } => write!(f, "{task} of {workflow_id}"),
            HumanTaskRef::Exact {
                workflow_id,
                run,
                cmd,
            } => write!(f, "{cmd} of {workflow_id} ({run})"),
        }
    }
}

impl Client {
    /// The open human tasks assigned to `assignee` now. A task leaves the
    /// list when it is decided, escalated to someone else, closed, or its
    /// workflow ends.
    ///
    /// # Errors
    /// A storage error.
    pub async fn list_human_tasks(&self, assignee: &str) -> Result<Vec<HumanTask>, ClientError> {
        Ok(self
            .history_store()
            .list_human_tasks(assignee)
            .await?
            .into_iter()
            .map(HumanTask::from)
            .collect())
    }

    /// The open human tasks of the latest run of `workflow_id`.
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub async fn human_tasks_of(
        &self,
        workflow_id: impl Into<WorkflowId>,
    ) -> Result<Vec<HumanTask>, ClientError> {
        let workflow_id = workflow_id.into();
        let store = self.history_store();
        let (run, _) = store
            .latest_run(&workflow_id)
            .await?
            .ok_or(ClientError::NotFound { workflow_id })?;
        Ok(store
            .human_tasks_of_run(run)
            .await?
            .into_iter()
            .map(HumanTask::from)
            .collect())
    }

    /// The run and command a reference names. A named task that is no
    /// longer open resolves to the last task of that name the run
    /// assigned, so that deciding it reports how it ended.
    async fn resolve_human_task(
        &self,
        task: &HumanTaskRef,
    ) -> Result<(RunId, CommandSeq), ClientError> {
        let store = self.history_store();
        let not_found = || ClientError::HumanTaskNotFound {
            task: task.to_string(),
        };
        let (workflow_id, name) = match task {
            HumanTaskRef::Exact {
                workflow_id,
                run,
                cmd,
            } => {
                // A run of another workflow is a wrong reference, not a task.
                return match store.run_record(*run).await? {
                    Some(r) if r.workflow_id == *workflow_id => Ok((*run, *cmd)),
                    _ => Err(not_found()),
                };
            }
            HumanTaskRef::Named { workflow_id, task } => (workflow_id, task),
        };
        let (run, _) = store.latest_run(workflow_id).await?.ok_or_else(not_found)?;
        let open: Vec<_> = store
            .human_tasks_of_run(run)
            .await?
            .into_iter()
            .filter(|t| t.task == *name)
            .collect();
        match open.as_slice() {
            [one] => Ok((run, one.cmd)),
            [] => store
                .read_history(run, EventSeq(1))
                .await?
                .iter()
                .rev()
                .find_map(|e| match e {
                    Event::HumanTaskAssigned { cmd, task, .. } if task == name => Some(*cmd),
                    _ => None,
                })
                .map(|cmd| (run, cmd))
                .ok_or_else(not_found),
            many => Err(ClientError::HumanTaskAmbiguous {
                task: task.to_string(),
                open: many.len(),
            }),
        }
    }
}
