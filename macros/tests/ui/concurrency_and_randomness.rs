use refrain::{Workflow, WorkflowContext, WorkflowError};

struct Fanout;

#[refrain::deterministic]
impl Workflow for Fanout {
    const NAME: &'static str = "fanout";
    type Input = ();
    type Output = u64;

    async fn run(_ctx: WorkflowContext, _: ()) -> Result<u64, WorkflowError> {
        let handle = tokio::spawn(async { 1u64 });
        let thread = std::thread::spawn(|| 2u64);
        tokio::select! {
            _ = async {} => {}
            _ = async {} => {}
        }
        let _ = (handle, thread);
        Ok(pick())
    }
}

#[refrain::deterministic]
fn pick() -> u64 {
    let mut rng = rand::rng();
    let roll: u64 = rand::random();
    println!("{}", rand::random::<u8>());
    if roll == 0 {
        std::process::exit(1);
    }
    let _ = &mut rng;
    roll
}

fn main() {}
