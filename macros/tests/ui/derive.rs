use refrain::{Query, Signal};
use serde::{Deserialize, Serialize};

// A query that does not say what it answers with.
#[derive(Query)]
struct Status;

// A name that is not a string.
#[derive(Serialize, Deserialize, Signal)]
#[signal(name = approval)]
struct Approval {
    approved: bool,
}

// An empty name.
#[derive(Serialize, Deserialize, Signal)]
#[signal(name = "")]
struct Unnamed;

// A key the derive does not know (a query's key on a signal).
#[derive(Serialize, Deserialize, Signal)]
#[signal(result = String)]
struct Misplaced;

// A generic signal: one name for every instantiation.
#[derive(Serialize, Deserialize, Signal)]
struct Wrapped<T> {
    value: T,
}

// A union.
#[derive(Query)]
#[query(result = u32)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
