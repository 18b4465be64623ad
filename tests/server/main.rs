//! The HTTP server end to end: every API route with its errors
//! (`api_*`), the dashboard and its inbox (`dashboard`), the runs list's
//! order (`run_order`), authentication (`auth`). Requests go through the
//! server's router in-process, on a store with the examples' workflows
//! and a worker running them; `cli` runs the command line against the
//! same server listening on a port.

mod api_claim;
mod api_groups;
mod api_queries;
mod api_retention;
mod api_schedules;
mod api_signals;
mod api_support;
mod api_tasks;
mod api_workflows;
mod auth;
mod cli;
mod dashboard;
mod dashboard_groups;
mod dashboard_scale;
mod dashboard_support;
mod decide_race;
mod harness;
mod metrics;
mod run_order;
mod waiting;
