#![deny(deprecated)]

use std::collections::{HashMap, HashSet};

#[refrain::deterministic]
fn order(scores: &HashMap<String, u32>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, _) in scores {
        out.push(name.clone());
    }
    let seen: HashSet<&str> = out.iter().map(|s| s.as_str()).collect();
    let firsts: Vec<&str> = seen.iter().copied().collect();
    let region = std::env::var("REGION").unwrap_or_default();
    out.push(format!("{firsts:?}{region}"));
    out
}

fn main() {}
