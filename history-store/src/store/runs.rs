//! Runs, the shell: starting them, signalling them, reading them, and
//! claiming and releasing their activations. The transactions are
//! `transitions::{start, signals, workflow_tasks}`; committing an
//! activation is `commit.rs`.

use super::batch::block_on;
use super::integrity;
use super::transitions::leases::{self, ClaimBy};
use super::transitions::signals;
use super::transitions::start::{prepare_start, start_in_tx, PreparedStart, RunNumber};
use super::transitions::tables::missing;
use super::tx::{check_payload, decode, decode_u64, finish};
use super::Inner;
use crate::codec::CodecError;
use crate::error::StoreError;
use crate::event::{Event, Payload};
use crate::ids::{CommandSeq, EventSeq, LeaseToken, RunId, Timestamp, WorkflowId};
use crate::keys;
use crate::store::api::{Activation, ListOrder, RunFilter, RunSummary, StartOutcome, StartRequest};
use crate::store::records::{ActivityTaskRecord, RunRecord};

impl Inner {
    pub(super) fn start_workflow(&self, req: StartRequest) -> Result<StartOutcome, StoreError> {
        block_on(self.start_workflow_async(req))
    }

    pub(super) async fn start_workflow_async(
        &self,
        req: StartRequest,
    ) -> Result<StartOutcome, StoreError> {
        let PreparedStart { event, record, .. } =
            prepare_start(&req, self.config.max_payload_bytes)?;
        let (workflow_id, on_conflict) = (req.workflow_id, req.on_conflict);
        let ready = self.ready_queue.clone();
        let queue = move |outcome: &StartOutcome| {
            if outcome.started {
                ready.push(outcome.run);
            }
        };
        self.batcher
            .apply_async_then(
                &self.trees,
                move |tx| {
                    start_in_tx(
                        (tx.meta, tx.ids, tx.task.runs, tx.history, tx.task.ready),
                        RunNumber::Draw(tx.run_ids),
                        &workflow_id,
                        on_conflict,
                        &event,
                        &record,
                    )
                },
                queue,
            )
            .await
    }

    pub(super) fn signal(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        payload: Payload,
        sender: Option<&str>,
    ) -> Result<RunId, StoreError> {
        block_on(self.signal_async(workflow_id, name, payload, sender))
    }

    pub(super) async fn signal_async(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        payload: Payload,
        sender: Option<&str>,
    ) -> Result<RunId, StoreError> {
        let limit = self.config.max_payload_bytes;
        check_payload(payload.len(), limit)?;
        check_payload(name.len() + sender.map_or(0, str::len), limit)?;
        let event = Event::SignalReceived {
            name: name.to_owned(),
            payload,
            sender: sender.map(str::to_owned),
        };
        self.deliver(workflow_id, event).await
    }

    /// Signal-with-start: see `Store::signal_with_start_async`.
    pub(super) async fn signal_with_start_async(
        &self,
        req: StartRequest,
        name: &str,
        payload: Payload,
        sender: Option<&str>,
    ) -> Result<StartOutcome, StoreError> {
        let limit = self.config.max_payload_bytes;
        check_payload(payload.len(), limit)?;
        check_payload(name.len() + sender.map_or(0, str::len), limit)?;
        let PreparedStart { event, record, .. } = prepare_start(&req, limit)?;
        let signal = Event::SignalReceived {
            name: name.to_owned(),
            payload,
            sender: sender.map(str::to_owned),
        };
        let workflow_id = req.workflow_id;
        let ready = self.ready_queue.clone();
        self.batcher
            .apply_async_then(
                &self.trees,
                move |tx| signals::signal_with_start(tx, &workflow_id, (&event, &record), &signal),
                // Whoever commits the batch queues the run, as for a signal.
                move |outcome: &StartOutcome| ready.push(outcome.run),
            )
            .await
    }

    /// Asks the latest run of `workflow_id` to cancel.
    pub(super) fn request_cancel(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        requested_by: Option<&str>,
    ) -> Result<RunId, StoreError> {
        block_on(self.request_cancel_async(workflow_id, reason, requested_by))
    }

    pub(super) async fn request_cancel_async(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        requested_by: Option<&str>,
    ) -> Result<RunId, StoreError> {
        check_payload(
            reason.len() + requested_by.map_or(0, str::len),
            self.config.max_payload_bytes,
        )?;
        let event = Event::WorkflowCancelRequested {
            reason: reason.to_owned(),
            requested_by: requested_by.map(str::to_owned),
        };
        self.deliver(workflow_id, event).await
    }

    /// Appends an inbound event to the inbox of the open latest run of
    /// `workflow_id` and queues the run (whoever commits the batch queues
    /// it, so a caller that stops waiting cannot leave it unqueued).
    async fn deliver(&self, workflow_id: &WorkflowId, event: Event) -> Result<RunId, StoreError> {
        let workflow_id = workflow_id.clone();
        let ready = self.ready_queue.clone();
        self.batcher
            .apply_async_then(
                &self.trees,
                move |tx| signals::deliver(tx, &workflow_id, &event),
                move |run: &RunId| ready.push(*run),
            )
            .await
    }

    pub(super) fn latest_run(
        &self,
        workflow_id: &WorkflowId,
    ) -> Result<Option<(RunId, RunRecord)>, StoreError> {
        let _whole = self.trees.engine.consistent();
        let Some(latest) = self
            .trees
            .workflow_ids
            .get(workflow_id.as_str().as_bytes())?
        else {
            return Ok(None);
        };
        let run = RunId(decode_u64(&latest, "workflow id", None)?);
        Ok(self.run_record(run)?.map(|record| (run, record)))
    }

    pub(super) fn run_record(&self, run: RunId) -> Result<Option<RunRecord>, StoreError> {
        match self.trees.runs.get(keys::run_key(run))? {
            None => Ok(None),
            Some(bytes) => decode(&bytes, "run", Some(run)).map(Some),
        }
    }

    pub(super) fn activity_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
    ) -> Result<Option<ActivityTaskRecord>, StoreError> {
        match self.trees.activity_tasks.get(keys::task_key(run, cmd))? {
            None => Ok(None),
            Some(bytes) => decode(&bytes, "activity task", Some(run)).map(Some),
        }
    }

    pub(super) fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StoreError> {
        self.list_runs_from(filter, None, ListOrder::OldestFirst, usize::MAX)
    }

    /// Up to `limit` runs passing `filter`, in `order`, strictly past run
    /// `from` in that order (after it oldest first, before it newest
    /// first). A walk of the `runs` table from there, forwards or back
    /// (see `RunFilter`), that stops once the page is full. Run numbers
    /// only grow, so a run started while a caller pages lands after every
    /// position an oldest-first caller holds, and before (never on) the
    /// pages still to come of a newest-first one.
    pub(super) fn list_runs_from(
        &self,
        filter: &RunFilter,
        from: Option<RunId>,
        order: ListOrder,
        limit: usize,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let mut out = Vec::new();
        let walk = match (order, from) {
            (_, None) => self.trees.runs.iter(),
            (ListOrder::OldestFirst, Some(RunId(u64::MAX))) => return Ok(out),
            (ListOrder::OldestFirst, Some(run)) => {
                self.trees.runs.range(keys::run_key(RunId(run.0 + 1))..)
            }
            (ListOrder::NewestFirst, Some(run)) => self.trees.runs.range(..keys::run_key(run)),
        };
        let walk: Box<dyn Iterator<Item = _>> = match order {
            ListOrder::OldestFirst => Box::new(walk),
            ListOrder::NewestFirst => Box::new(walk.rev()),
        };
        for item in walk {
            let (key, bytes) = item?;
            let run = keys::parse_run_key(&key).map_err(|bad| StoreError::Corrupt {
                what: "run key",
                run: None,
                source: CodecError::Decode(format!("{bad:?}")),
            })?;
            let record: RunRecord = decode(&bytes, "run", Some(run))?;
            if !filter.admits(
                &record.workflow_id,
                &record.workflow_type,
                record.status,
                record.started_at,
            ) {
                continue;
            }
            out.push(RunSummary {
                run,
                workflow_id: record.workflow_id,
                workflow_type: record.workflow_type,
                status: record.status,
                started_at: record.started_at,
                closed_at: record.closed_at,
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    pub(super) fn read_history(&self, run: RunId) -> Result<Vec<Event>, StoreError> {
        self.read_history_from(run, EventSeq(1))
    }

    /// The events of `run` from `from` on. Every stored event is still
    /// walked (the count and size check needs them all), but only those
    /// asked for are decoded.
    pub(super) fn read_history_from(
        &self,
        run: RunId,
        from: EventSeq,
    ) -> Result<Vec<Event>, StoreError> {
        let _whole = self.trees.engine.consistent();
        let Some(record) = self.run_record(run)? else {
            return Err(StoreError::RunNotFound { run });
        };
        let corrupt = |why: String| StoreError::Corrupt {
            what: "history",
            run: Some(run),
            source: CodecError::Decode(why),
        };
        let mut events = Vec::new();
        let (mut count, mut size) = (0u64, 0u64);
        for item in self.trees.history.scan_prefix(keys::run_key(run)) {
            let (key, bytes) = item?;
            size += bytes.len() as u64;
            let (_, seq) =
                keys::parse_run_seq_key(&key).map_err(|bad| corrupt(format!("key {bad:?}")))?;
            count += 1;
            if seq != count {
                return Err(corrupt(format!("expected event {count}, found {seq}")));
            }
            if seq >= from.0 {
                events.push(decode(&bytes, "history", Some(run))?);
            }
        }
        // A history cut short reads as a whole one unless compared with
        // what was appended.
        integrity::check_history(run, &record, count, size)?;
        Ok(events)
    }

    pub(super) fn claim_activation(&self, run: RunId) -> Result<Option<Activation>, StoreError> {
        self.claim_lease(run, true, false)
    }

    /// Leases `run`'s activation to this store (see `leases::ClaimBy` for
    /// `only_if_ready` and `retake_own`).
    fn claim_lease(
        &self,
        run: RunId,
        only_if_ready: bool,
        retake_own: bool,
    ) -> Result<Option<Activation>, StoreError> {
        // Tokens only need to be unique, and the engine's id generator
        // stays unique across restarts; drawing it outside keeps the closure pure.
        let claim = ClaimBy {
            token: LeaseToken(self.trees.engine.generate_id()?),
            owner: self.owner,
            now: Timestamp::now(),
            only_if_ready,
            retake_own,
        };
        let t = &self.trees;
        // The inbox is read inside the transaction: the task then matches
        // the record exactly, and a corrupt item aborts the claim instead of
        // leaving a lease nobody holds a token for.
        finish(t.engine.transaction(
            [&t.runs, &t.inbox, &t.ready, &t.meta],
            |[runs, inbox, ready, meta]| leases::claim((runs, inbox, ready, meta), run, claim),
        ))
    }

    pub(super) fn release_activation(
        &self,
        run: RunId,
        token: LeaseToken,
        failure: Option<String>,
    ) -> Result<(), StoreError> {
        let owner = self.owner;
        self.batcher.apply(&self.trees, move |tx| {
            let (runs, ready) = (tx.task.runs, tx.task.ready);
            leases::release((runs, ready), run, token, owner, &failure)
        })
    }

    /// An activation of `run` for a caller that runs one task per run at
    /// a time: without a lease when this store owns its storage alone,
    /// with one when it shares it (see `Store::begin_activation`).
    pub(super) fn begin_activation(
        &self,
        run: RunId,
        only_if_ready: bool,
    ) -> Result<Option<Activation>, StoreError> {
        if self.owner.shared {
            return self.claim_lease(run, only_if_ready, true);
        }
        let _whole = self.trees.engine.consistent();
        // Plain reads, no transaction (under the journal's guard, so none
        // sees half of a commit): the record first, then the inbox
        // items below the tail it names. Items below the tail only change
        // in a commit of this same run, which the caller's one-task-per-run
        // rule excludes; if one is missing anyway, the run moved on under
        // us and the caller is told there is nothing to do (its commit
        // would be refused for the moved last seq in any case).
        let Some(record) = self.run_record(run)? else {
            return Ok(None);
        };
        let has_work = record.is_ready() || (!only_if_ready && record.status.is_open());
        if !has_work || !record.admits_task(LeaseToken::UNLEASED, self.owner.id) {
            return Ok(None);
        }
        let mut items = Vec::with_capacity((record.inbox_tail - record.inbox_head) as usize);
        for n in record.inbox_head..record.inbox_tail {
            let Some(bytes) = self.trees.inbox.get(keys::run_seq_key(run, n))? else {
                let now = self.run_record(run)?;
                if now.as_ref().is_some_and(|r| {
                    r.last_seq == record.last_seq && r.inbox_head == record.inbox_head
                }) {
                    return Err(missing("inbox", Some(run)));
                }
                return Ok(None);
            };
            items.push(decode(&bytes, "inbox", Some(run))?);
        }
        Ok(Some(Activation {
            run,
            token: LeaseToken::UNLEASED,
            inbox_upto: record.inbox_tail,
            record,
            inbox: items,
        }))
    }
}

impl super::Store {
    /// Signal-with-start: delivers signal `name` (with `payload`, and
    /// `sender` when given) to the open latest run of `req.workflow_id`,
    /// or, if no run of the id is open (never used, or its latest run
    /// closed), starts a run per `req` with the signal already in its
    /// inbox, so that its first activation sees it. One transaction:
    /// nothing can close the open run or start another between the check
    /// and the write. `req.on_conflict` is not consulted (an open run
    /// always takes the signal); `started` says which happened.
    ///
    /// Not durable until [`Store::durable`](super::Store::durable) returns.
    ///
    /// # Errors
    /// `PayloadTooLarge` (the input, or the signal); `Corrupt`, `Storage`.
    /// Nothing is written on error.
    pub async fn signal_with_start_async(
        &self,
        req: StartRequest,
        name: &str,
        payload: Payload,
        sender: Option<&str>,
    ) -> Result<StartOutcome, StoreError> {
        self.inner
            .signal_with_start_async(req, name, payload, sender)
            .await
    }
}
