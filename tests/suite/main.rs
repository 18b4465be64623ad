//! End-to-end tests of Refrain across its crates: real stores in temporary
//! directories, real workers, and, for crashes, a real child process killed
//! with SIGKILL. The modules read as the reliability contract they check.

/// SIGKILL at each interesting point, then restart.
mod crash;
/// A damaged data file is refused or reported, never read short.
mod damage;
/// Replay reaches the same decisions: `select` ties, cache size 0 vs N.
mod determinism;
/// Panics in workflows and activities; corrupt stored bytes.
mod failures;
/// Several stores over one shared storage: a store that dies mid-run
/// leaves its runs and attempts to the others once its leases expire.
mod fleet;
/// Every call keeps one idempotency key and its attempts their numbers,
/// across SIGKILLs that land while new runs hand out their first call.
mod idempotency;
/// Start, signal, describe, list; duplicate starts; the order of a history.
mod lifecycle;
/// Changed or nondeterministic code stops with a descriptive error.
mod nondeterminism;
/// An oversized result or command input fails the run by name, recorded.
mod payload_limits;
/// Activity retries, backoff, non-retryable errors, timeouts, heartbeats.
mod retries;
/// Open runs replayed against new code before a deploy.
mod shadow;
