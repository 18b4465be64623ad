//! Activity tasks, the shell: claiming attempts in chunks (and one by one
//! when a chunk is refused), recording outcomes and heartbeats through the
//! batcher, and the wake-ups that follow. What each of them does to the
//! tables is `transitions::activities`.

use super::batch::block_on;
use super::engine::Bytes;
use super::transitions::activities::{self, claim_one, Claim};
use super::transitions::tables::{TaskTx, Tx};
use super::tx::{check_payload, finish, TxResult};
use super::Inner;
use crate::error::StoreError;
use crate::event::{Failure, Payload};
use crate::ids::{CommandSeq, LeaseToken, RunId, Timestamp};
use crate::keys;
use crate::store::api::{ActivityResolution, HeartbeatAck};
use crate::store::records::ActivityTask;
use std::ops::Bound;

/// Tree name used for quarantined `activity_ready` keys.
pub(super) const READY_INDEX: &str = "activity_ready";

/// Runs `f` in a transaction over the trees of `TaskTx` (a view of a tree
/// costs nothing until it is written, so this is the store's one
/// transaction over every tree).
pub(super) fn task_transaction<A>(
    inner: &Inner,
    f: impl Fn(&TaskTx<'_>) -> TxResult<A>,
) -> Result<A, StoreError> {
    finish(super::batch::transaction(&inner.trees, |ctx| f(&ctx.task)))
}

impl Inner {
    pub(super) fn claim_activity_tasks(
        &self,
        now: Timestamp,
        max: usize,
    ) -> Result<Vec<ActivityTask>, StoreError> {
        block_on(self.claim_activity_tasks_async(now, max))
    }

    pub(super) async fn claim_activity_tasks_async(
        &self,
        now: Timestamp,
        max: usize,
    ) -> Result<Vec<ActivityTask>, StoreError> {
        const CHUNK: usize = 64;
        let mut claimed = Vec::new();
        let mut deadline_added = false;
        let upper = Bytes::from(&keys::time_upper_bound(now)[..]);
        let mut after: Option<Bytes> = None;
        let owner = self.owner.id;
        while claimed.len() < max {
            let lower = after.clone().map_or(Bound::Unbounded, Bound::Excluded);
            let scanned: Vec<Bytes> = self
                .trees
                .activity_ready
                .range::<Bytes, _>((lower, Bound::Excluded(upper.clone())))
                .keys()
                .take(CHUNK)
                .collect::<Result<_, _>>()?;
            let Some(last) = scanned.last().cloned() else {
                break;
            };
            let mut due: Vec<Bytes> = scanned
                .iter()
                .filter(|key| !self.quarantine.contains(READY_INDEX, key))
                .cloned()
                .collect();
            due.truncate(max - claimed.len());
            after = Some(due.last().cloned().unwrap_or(last));
            let tokens = due
                .iter()
                .map(|_| self.trees.engine.generate_id().map(LeaseToken))
                .collect::<Result<Vec<_>, _>>()?;
            // Every due task of the chunk in one transaction.
            let keys_in = due.clone();
            let tokens_again = tokens.clone();
            let claims = self
                .batcher
                .apply_async(&self.trees, move |tx| {
                    keys_in
                        .iter()
                        .zip(&tokens)
                        .map(|(key, token)| claim_one(&tx.task, key, (*token, owner), now))
                        .collect::<TxResult<Vec<Claim>>>()
                })
                .await;
            let claims = match claims {
                Ok(claims) => claims,
                Err(StoreError::Storage(e)) => return Err(StoreError::Storage(e)),
                // One task refused its claim and took the chunk's
                // transaction with it: claim them one by one, so the others
                // still run and the culprit is set aside.
                Err(_) => {
                    let mut one_by_one = Vec::with_capacity(due.len());
                    for (key, token) in due.iter().zip(tokens_again) {
                        let key_in = key.clone();
                        let claim = self
                            .batcher
                            .apply_async(&self.trees, move |tx| {
                                claim_one(&tx.task, &key_in, (token, owner), now)
                            })
                            .await;
                        one_by_one.push(claim.unwrap_or_else(Claim::Corrupt));
                    }
                    one_by_one
                }
            };
            for (key, claim) in due.iter().zip(claims) {
                match claim {
                    Claim::Claimed(task) => {
                        deadline_added |= task.deadline != Timestamp(u64::MAX);
                        claimed.push(task);
                    }
                    Claim::Expired(run) => self.ready_queue.push(run),
                    Claim::Skipped => {}
                    Claim::Corrupt(e) => {
                        tracing::warn!(error = %e, "skipping an activity task that cannot be claimed");
                        self.quarantine.add(READY_INDEX, key);
                    }
                }
            }
            if scanned.len() < CHUNK {
                break;
            }
        }
        if deadline_added {
            self.timer_notify.notify_one();
        }
        if !claimed.is_empty() {
            // Not one attempt may start before its claim is durable: a
            // crash would undo the claim after the attempt's side effects
            // began, and the attempt would run again under the same number.
            // The caller waits for the ticket where it starts each attempt,
            // not here: a poller must not hold its free activity slots
            // through a flush.
            let ticket = self.flusher.ticket();
            for task in &mut claimed {
                task.durable_after = ticket;
            }
        }
        Ok(claimed)
    }

    pub(super) fn next_activity_visible(&self) -> Result<Option<Timestamp>, StoreError> {
        for key in self.trees.activity_ready.iter().keys() {
            let key = key?;
            if self.quarantine.contains(READY_INDEX, &key) {
                continue;
            }
            if let Ok((at, _, _)) = keys::parse_time_key(&key) {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    pub(super) fn complete_activity(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        outcome: Result<Payload, Failure>,
        now: Timestamp,
    ) -> Result<ActivityResolution, StoreError> {
        let op = self.completion(run, cmd, token, outcome, now)?;
        let resolution = self.batcher.apply(&self.trees, op)?;
        self.after_resolution(run, resolution);
        Ok(resolution)
    }

    pub(super) async fn complete_activity_async(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        outcome: Result<Payload, Failure>,
        now: Timestamp,
    ) -> Result<ActivityResolution, StoreError> {
        let op = self.completion(run, cmd, token, outcome, now)?;
        let (ready, activity) = (self.ready_queue.clone(), self.activity_notify.clone());
        let after = move |resolution: &ActivityResolution| match resolution {
            ActivityResolution::Recorded => ready.push(run),
            ActivityResolution::RetryScheduled { .. } => activity.notify_one(),
        };
        self.batcher.apply_async_then(&self.trees, op, after).await
    }

    /// Checks the outcome's size and returns the transaction that records
    /// it.
    fn completion(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        outcome: Result<Payload, Failure>,
        now: Timestamp,
    ) -> Result<impl Fn(&Tx<'_>) -> TxResult<ActivityResolution> + Send + 'static, StoreError> {
        let limit = self.config.max_payload_bytes;
        match &outcome {
            Ok(result) => check_payload(result.len(), limit)?,
            Err(failure) => {
                check_payload(failure.details.as_ref().map_or(0, |d| d.len()), limit)?;
                check_payload(failure.message.len(), limit)?;
            }
        }
        Ok(move |ctx: &Tx<'_>| activities::complete(&ctx.task, run, cmd, token, &outcome, now))
    }

    /// Wake-ups after an attempt was resolved.
    pub(super) fn after_resolution(&self, run: RunId, resolution: ActivityResolution) {
        match resolution {
            ActivityResolution::Recorded => self.ready_queue.push(run),
            ActivityResolution::RetryScheduled { .. } => self.activity_notify.notify_one(),
        }
    }

    pub(super) fn heartbeat_activity(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
    ) -> Result<HeartbeatAck, StoreError> {
        if let Some(d) = &details {
            check_payload(d.len(), self.config.max_payload_bytes)?;
        }
        let moved_earlier = self.batcher.apply(&self.trees, move |ctx| {
            activities::heartbeat(&ctx.task, run, cmd, token, &details, now)
        })?;
        if moved_earlier.0 {
            self.timer_notify.notify_one();
        }
        Ok(HeartbeatAck {
            cancel_requested: moved_earlier.1,
        })
    }
}
