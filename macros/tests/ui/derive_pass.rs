#![deny(warnings)]

use refrain::{Query, Signal};
use serde::{Deserialize, Serialize};

// Named after the type, in kebab case.
#[derive(Serialize, Deserialize, Signal)]
struct StockResolved {
    sku: String,
}

// Named explicitly; enums and tuple structs are signals too.
#[derive(Serialize, Deserialize, Signal)]
#[signal(name = "decision")]
enum Decision {
    Approve,
    Reject { why: String },
}

#[derive(Serialize, Deserialize, Signal)]
struct Approve(String);

#[derive(Query)]
#[query(result = Vec<String>)]
struct Approvals;

#[derive(Query)]
#[query(name = "approvals-by", args = String, result = Vec<String>)]
struct ApprovalsBy;

fn takes_args<Q: Query<Args = ()>>() {}

fn main() {
    assert_eq!(StockResolved::NAME, "stock-resolved");
    assert_eq!(Decision::NAME, "decision");
    assert_eq!(Approve::NAME, "approve");
    assert_eq!(Approvals::NAME, "approvals");
    assert_eq!(ApprovalsBy::NAME, "approvals-by");
    takes_args::<Approvals>();
    let _: <ApprovalsBy as Query>::Args = String::new();
    let _: <ApprovalsBy as Query>::Result = Vec::new();
    let _ = (StockResolved { sku: String::new() }.sku, Decision::Approve, Decision::Reject { why: String::new() }, Approve(String::new()).0);
}
