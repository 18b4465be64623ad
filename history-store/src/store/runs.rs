//! Runs: starting them, signalling them, reading them, and claiming and
//! releasing their workflow tasks. Committing an activation lives in
//! `commit.rs`.

use super::batch::block_on;
use super::engine::TxTree;
use super::integrity;
use super::tx::{
    abort, allocate_run, check_payload, decode, decode_u64, encode, finish, get_run, missing,
    push_inbox, put_run, record_run_number, RunIds, TxResult,
};
use super::Inner;
use crate::codec::CodecError;
use crate::error::StoreError;
use crate::event::{Event, Payload};
use crate::ids::{CommandSeq, LeaseToken, RunId, WorkflowId};
use crate::keys;
use crate::store::api::{
    IdConflictPolicy, RunFilter, RunSummary, StartOutcome, StartRequest, WorkflowTask,
};
use crate::store::records::{ActivityTaskRecord, RunLease, RunRecord};

impl Inner {
    pub(super) fn start_workflow(&self, req: StartRequest) -> Result<StartOutcome, StoreError> {
        block_on(self.start_workflow_async(req))
    }

    pub(super) async fn start_workflow_async(
        &self,
        req: StartRequest,
    ) -> Result<StartOutcome, StoreError> {
        let limit = self.config.max_payload_bytes;
        check_payload(req.input.len(), limit)?;
        check_payload(req.workflow_type.len(), limit)?;
        check_payload(req.workflow_id.as_str().len(), limit)?;
        let started = Event::WorkflowStarted {
            workflow_type: req.workflow_type.clone(),
            workflow_id: req.workflow_id.clone(),
            input: req.input.clone(),
            seed: req.seed,
            start_time: req.now,
            continued_from: None,
            parent: None,
        };
        // Neither value depends on the run number, so both are encoded once,
        // outside the (possibly re-run) transaction.
        let event = encode(&started, "history", None)?;
        let record = RunRecord::started(
            req.workflow_id.clone(),
            req.workflow_type.clone(),
            req.now,
            event.len() as u64,
            None,
            None,
        );
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
                move |tx| {
                    let t = &tx.task;
                    let (run, mut record) = open_run_of(tx.ids, t.runs, &workflow_id)?;
                    push_inbox(t.inbox, run, &mut record, &event)?;
                    put_run(t.runs, t.ready, run, &record)?;
                    Ok(run)
                },
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
        let mut out = Vec::new();
        for item in self.trees.runs.iter() {
            let (key, bytes) = item?;
            let run = keys::parse_run_key(&key).map_err(|bad| StoreError::Corrupt {
                what: "run key",
                run: None,
                source: CodecError::Decode(format!("{bad:?}")),
            })?;
            let record: RunRecord = decode(&bytes, "run", Some(run))?;
            if filter.status.is_some_and(|s| s != record.status)
                || filter
                    .workflow_type
                    .as_ref()
                    .is_some_and(|t| *t != record.workflow_type)
            {
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
        }
        Ok(out)
    }

    pub(super) fn read_history(&self, run: RunId) -> Result<Vec<Event>, StoreError> {
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
        let mut size = 0u64;
        for item in self.trees.history.scan_prefix(keys::run_key(run)) {
            let (key, bytes) = item?;
            size += bytes.len() as u64;
            let (_, seq) =
                keys::parse_run_seq_key(&key).map_err(|bad| corrupt(format!("key {bad:?}")))?;
            let expected = events.len() as u64 + 1;
            if seq != expected {
                return Err(corrupt(format!("expected event {expected}, found {seq}")));
            }
            events.push(decode(&bytes, "history", Some(run))?);
        }
        // A history cut short reads as a whole one unless compared with
        // what was appended.
        integrity::check_history(run, &record, events.len() as u64, size)?;
        Ok(events)
    }

    pub(super) fn claim_workflow_task(
        &self,
        run: RunId,
    ) -> Result<Option<WorkflowTask>, StoreError> {
        // Tokens only need to be unique, and the engine's id generator
        // stays unique across restarts; drawing it outside keeps the closure pure.
        let token = LeaseToken(self.trees.engine.generate_id()?);
        let epoch = self.epoch;
        let t = &self.trees;
        // The inbox is read inside the transaction: the task then matches
        // the record exactly, and a corrupt item aborts the claim instead of
        // leaving a lease nobody holds a token for.
        finish(
            t.engine
                .transaction([&t.runs, &t.inbox, &t.ready], |[runs, inbox, ready]| {
                    let Some(mut record) = get_run(runs, run)? else {
                        return Ok(None);
                    };
                    if !record.is_ready() || record.lease.is_some_and(|l| l.epoch == epoch) {
                        return Ok(None);
                    }
                    let mut items = Vec::new();
                    for n in record.inbox_head..record.inbox_tail {
                        let Some(bytes) = inbox.get(keys::run_seq_key(run, n))? else {
                            return Err(abort(missing("inbox", Some(run))));
                        };
                        items.push(decode(&bytes, "inbox", Some(run)).map_err(abort)?);
                    }
                    record.lease = Some(RunLease { token, epoch });
                    put_run(runs, ready, run, &record)?;
                    Ok(Some(WorkflowTask {
                        run,
                        token,
                        inbox_upto: record.inbox_tail,
                        record,
                        inbox: items,
                    }))
                }),
        )
    }

    pub(super) fn release_workflow_task(
        &self,
        run: RunId,
        token: LeaseToken,
        failure: Option<String>,
    ) -> Result<(), StoreError> {
        let epoch = self.epoch;
        self.batcher.apply(&self.trees, move |tx| {
            let (runs, ready) = (tx.task.runs, tx.task.ready);
            let Some(mut record) = get_run(runs, run)? else {
                return Err(abort(StoreError::RunNotFound { run }));
            };
            if !record.admits_task(token, epoch) {
                return Err(abort(StoreError::LeaseLost { run }));
            }
            record.lease = None;
            record.last_task_failure = failure.clone();
            put_run(runs, ready, run, &record)
        })
    }

    pub(super) fn begin_workflow_task(
        &self,
        run: RunId,
        only_if_ready: bool,
    ) -> Result<Option<WorkflowTask>, StoreError> {
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
        if !has_work || !record.admits_task(LeaseToken::UNLEASED, self.epoch) {
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
        Ok(Some(WorkflowTask {
            run,
            token: LeaseToken::UNLEASED,
            inbox_upto: record.inbox_tail,
            record,
            inbox: items,
        }))
    }
}

/// The transactional part of a start (shared with schedule fires): maps
/// `workflow_id` to a new run whose first event is the encoded `event` and
/// whose record is `record`, unless `on_conflict` says otherwise about an
/// open run of the id. The caller queues the run after the commit.
pub(super) fn start_in_tx(
    (meta, ids, runs, history, ready): (
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
    ),
    number: RunNumber<'_>,
    workflow_id: &WorkflowId,
    on_conflict: IdConflictPolicy,
    event: &[u8],
    record: &RunRecord,
) -> TxResult<StartOutcome> {
    let id_key = workflow_id.as_str().as_bytes();
    if let Some(latest) = ids.get(id_key)? {
        let run = RunId(decode_u64(&latest, "workflow id", None).map_err(abort)?);
        if on_conflict == IdConflictPolicy::UseExisting {
            return Ok(StartOutcome {
                run,
                started: false,
            });
        }
        if let Some(open) = get_run(runs, run)?.filter(|r| r.status.is_open()) {
            return match on_conflict {
                IdConflictPolicy::Reject => Err(abort(StoreError::AlreadyRunning {
                    workflow_id: open.workflow_id,
                    run,
                })),
                IdConflictPolicy::AttachToOpen | IdConflictPolicy::UseExisting => {
                    Ok(StartOutcome {
                        run,
                        started: false,
                    })
                }
            };
        }
    }
    let run = match number {
        RunNumber::Draw(ids) => allocate_run(meta, ids)?,
        RunNumber::Reserved(run) => {
            record_run_number(meta, run)?;
            run
        }
    };
    history.insert(&keys::run_seq_key(run, 1)[..], event)?;
    put_run(runs, ready, run, record)?;
    ids.insert(id_key, &keys::run_key(run)[..])?;
    Ok(StartOutcome { run, started: true })
}

/// Where a started run's number comes from.
pub(super) enum RunNumber<'a> {
    /// The next number, drawn in the transaction.
    Draw(&'a RunIds),
    /// A number reserved before the transaction (see [`RunIds`]).
    Reserved(RunId),
}

/// The latest run of `workflow_id`, which must be open.
pub(super) fn open_run_of(
    ids: &TxTree<'_>,
    runs: &TxTree<'_>,
    workflow_id: &WorkflowId,
) -> super::tx::TxResult<(RunId, RunRecord)> {
    let Some(latest) = ids.get(workflow_id.as_str().as_bytes())? else {
        return Err(abort(StoreError::WorkflowNotFound {
            workflow_id: workflow_id.clone(),
        }));
    };
    let run = RunId(decode_u64(&latest, "workflow id", None).map_err(abort)?);
    let Some(record) = get_run(runs, run)? else {
        return Err(abort(missing("run", Some(run))));
    };
    if !record.status.is_open() {
        return Err(abort(StoreError::WorkflowClosed {
            workflow_id: workflow_id.clone(),
            run,
            status: record.status,
        }));
    }
    Ok((run, record))
}
