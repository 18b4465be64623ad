use refrain::{Workflow, WorkflowContext, WorkflowError};
use std::time::{Duration, Instant, SystemTime};

struct Timing;

#[refrain::deterministic]
impl Workflow for Timing {
    const NAME: &'static str = "timing";
    type Input = ();
    type Output = u64;

    async fn run(_ctx: WorkflowContext, _: ()) -> Result<u64, WorkflowError> {
        let started = SystemTime::now();
        let clock = Instant::now();
        std::thread::sleep(Duration::from_millis(1));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {}).await;
        let _ = (started, clock);
        Ok(0)
    }
}

fn main() {}
