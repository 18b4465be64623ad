//! Queries on a workflow thread, and the instances they (and activations
//! that find no cached instance) rebuild from a run's history.

use super::{start_here, Executor, QueryJob};
use refrain::replay::WorkflowMachine;
use refrain_history::{EventSeq, Payload, QueryError, RunId, RunRecord};
use tracing::debug;

impl Executor {
    /// Answers a query and hands the answer to the store, without waiting.
    pub(super) fn answer(&mut self, q: QueryJob) {
        let answer = self
            .query(q.run, &q.name, &q.args)
            .map_err(|reason| QueryError::Refused { reason });
        let store = self.store.clone();
        start_here(&self.rt, async move {
            // Refused only if the caller stopped waiting: nobody to tell.
            if let Err(e) = store.answer_query(q.id, answer).await {
                debug!(error = %e, "query answer not delivered");
            }
        });
    }

    /// Answers a query from the cached instance of `run`, or from one
    /// rebuilt by replaying its history (kept in the cache if the run is
    /// open).
    fn query(&mut self, run: RunId, name: &str, args: &Payload) -> Result<Payload, String> {
        let record = self
            .rt
            .block_on(self.store.run_record(run))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no such run {run}"))?;
        let machine = match self.cache.take(run) {
            Some(m) if m.last_seq() == record.last_seq => m,
            _ => self.rebuild(run, &record)?,
        };
        let answer = machine.query(name, args).map_err(|e| e.to_string());
        if !machine.is_closed() {
            self.cache.put(run, machine);
        }
        answer
    }

    /// Builds the instance of `run` by replaying its stored history.
    pub(super) fn rebuild(
        &self,
        run: RunId,
        record: &RunRecord,
    ) -> Result<WorkflowMachine, String> {
        let workflow = self
            .registry
            .workflows
            .get(&record.workflow_type)
            .ok_or_else(|| {
                format!(
                    "workflow type {:?} is not registered on this worker",
                    record.workflow_type
                )
            })?;
        let history = self
            .rt
            .block_on(self.store.read_history(run, EventSeq(1)))
            .map_err(|e| e.to_string())?;
        let Some((first, rest)) = history.split_first() else {
            return Err(format!("{run} has an empty history"));
        };
        let mut machine =
            WorkflowMachine::new(workflow.as_ref(), run, first).map_err(|e| e.to_string())?;
        machine.replay(rest).map_err(|e| e.to_string())?;
        debug!(events = history.len(), "replayed history");
        Ok(machine)
    }
}
