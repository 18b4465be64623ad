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
