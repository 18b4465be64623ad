#![deny(warnings)]

use refrain::{join, Activity, ActivityContext, ActivityError, Workflow, WorkflowContext, WorkflowError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

struct Clean;

#[refrain::deterministic]
impl Workflow for Clean {
    const NAME: &'static str = "clean";
    type Input = Vec<String>;
    type Output = String;

    async fn run(ctx: WorkflowContext, names: Vec<String>) -> Result<String, WorkflowError> {
        let started = ctx.now();
        ctx.sleep(Duration::from_secs(60)).await;
        let (a, b) = join(ctx.sleep(Duration::from_secs(1)), ctx.sleep(Duration::from_secs(2))).await;
        let _ = (a, b, started, ctx.random(), ctx.uuid());

        // Ordered iteration, and hash lookups without iteration.
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        let mut index = HashMap::new();
        for name in &names {
            *counts.entry(name).or_default() += 1;
            index.insert(name.clone(), name.len());
        }
        let mut report = String::new();
        for (name, count) in &counts {
            report.push_str(&format!("{name}={count}/{:?};", index.get(*name)));
        }

        // Collecting into an ordered container is the way out, and the
        // ordered container it is rebound to is not flagged.
        let lengths = index.values().copied().collect::<BTreeSet<usize>>();
        let index: BTreeMap<_, _> = index.into_iter().collect();
        for (name, len) in index.iter() {
            report.push_str(&format!("{name}:{len}:{lengths:?}"));
        }

        // Judged harmless: a sum does not depend on the order.
        #[allow(deprecated)]
        let total: usize = HashMap::from([(1, 2)]).len() + {
            let sizes: HashMap<u8, usize> = HashMap::new();
            sizes.values().sum::<usize>()
        };
        Ok(format!("{report}{total}{}", helper::sleep()))
    }
}

// An activity written without `#[async_trait]`, and free to read the clock.
struct Stamp;

#[refrain::activity]
impl Activity for Stamp {
    const NAME: &'static str = "stamp";
    type Input = ();
    type Output = u64;

    async fn run(&self, _ctx: ActivityContext, _: ()) -> Result<u64, ActivityError> {
        let now = std::time::SystemTime::now();
        Ok(now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }
}

fn registered<A: Activity>() -> &'static str {
    A::NAME
}

mod helper {
    // A function of one's own named `sleep` is not `thread::sleep`.
    pub fn sleep() -> &'static str {
        ""
    }
}

fn main() {
    let _ = registered::<Stamp>();
}
