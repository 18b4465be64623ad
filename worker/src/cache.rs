//! The sticky cache: live workflow instances kept between activations so
//! that a hit applies only the new inbox batch instead of replaying the
//! whole history. Bounded, least recently used out first. A size of zero
//! replays every activation, and must produce identical histories.

use refrain::replay::WorkflowMachine;
use refrain_history::RunId;
use std::collections::{BTreeMap, HashMap};

pub(crate) struct StickyCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<RunId, (u64, WorkflowMachine)>,
    by_age: BTreeMap<u64, RunId>,
}

impl StickyCache {
    pub fn new(capacity: usize) -> Self {
        StickyCache {
            capacity,
            tick: 0,
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
        }
    }

    /// Removes and returns the instance of `run`, if cached.
    pub fn take(&mut self, run: RunId) -> Option<WorkflowMachine> {
        let (age, m) = self.entries.remove(&run)?;
        self.by_age.remove(&age);
        Some(m)
    }

    /// Keeps `machine` for `run`, evicting the least recently used entry
    /// when full.
    pub fn put(&mut self, run: RunId, machine: WorkflowMachine) {
        if self.capacity == 0 {
            return;
        }
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.tick += 1;
        self.by_age.insert(self.tick, run);
        self.entries.insert(run, (self.tick, machine));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refrain::replay::WorkflowType;
    use refrain::{Workflow, WorkflowContext, WorkflowError};
    use refrain_history::{Event, Payload, Timestamp};

    struct Idle;
    impl Workflow for Idle {
        const NAME: &'static str = "idle";
        type Input = ();
        type Output = ();
        async fn run(_: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
            Ok(())
        }
    }

    fn machine(run: u64) -> WorkflowMachine {
        let started = Event::WorkflowStarted {
            workflow_type: "idle".into(),
            workflow_id: format!("w{run}").into(),
            input: Payload::from_bytes(b"null".to_vec()),
            seed: 0,
            start_time: Timestamp(0),
            continued_from: None,
            parent: None,
        };
        WorkflowMachine::new(&WorkflowType::<Idle>::new(), RunId(run), &started).unwrap()
    }

    #[test]
    fn the_least_recently_used_instance_is_evicted_first() {
        let mut cache = StickyCache::new(2);
        cache.put(RunId(1), machine(1));
        cache.put(RunId(2), machine(2));
        // Touch run 1: take and put back, as an activation does.
        let m = cache.take(RunId(1)).unwrap();
        cache.put(RunId(1), m);
        cache.put(RunId(3), machine(3));
        assert_eq!(cache.len(), 2);
        assert!(
            cache.take(RunId(2)).is_none(),
            "run 2 was least recently used"
        );
        assert!(cache.take(RunId(1)).is_some());
        assert!(cache.take(RunId(3)).is_some());
    }

    #[test]
    fn a_zero_sized_cache_keeps_nothing() {
        let mut cache = StickyCache::new(0);
        cache.put(RunId(1), machine(1));
        assert_eq!(cache.len(), 0);
        assert!(cache.take(RunId(1)).is_none());
    }
}
