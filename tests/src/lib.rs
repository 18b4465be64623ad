//! Shared fixtures of Refrain's end-to-end suite (`tests/suite`) and of the
//! `crash-child` process it kills: activities that write to a side-effect
//! [`Ledger`](ledger::Ledger), the workflows of the crash tests, a store in
//! a temporary directory, bounded waits, and the structural checks every
//! recorded history must pass.

pub mod activities;
pub mod crash;
pub mod env;
pub mod history;
pub mod keys;
pub mod ledger;
