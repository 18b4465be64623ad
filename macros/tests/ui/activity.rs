use refrain::{Activity, ActivityContext, ActivityError};

// The determinism check put on an activity by mistake.
struct Stamp;
#[refrain::deterministic]
impl Activity for Stamp {
    const NAME: &'static str = "stamp";
    type Input = ();
    type Output = u64;
    async fn run(&self, _ctx: ActivityContext, _: ()) -> Result<u64, ActivityError> {
        Ok(0)
    }
}

// `run` written without `async`.
struct Blocking;
#[refrain::activity]
impl Activity for Blocking {
    const NAME: &'static str = "blocking";
    type Input = ();
    type Output = u64;
    fn run(&self, _ctx: ActivityContext, _: ()) -> Result<u64, ActivityError> {
        Ok(0)
    }
}

// On the struct instead of the impl.
#[refrain::activity]
struct Misplaced;

fn main() {}
