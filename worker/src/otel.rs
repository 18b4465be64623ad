//! OpenTelemetry export of Refrain's `tracing` spans (cargo feature
//! `otel`).
//!
//! The worker already describes its work with `tracing` spans: a
//! `workflow_task` span per activation (`workflow_id`, `run`,
//! `workflow_type`) and an `activity` span per attempt (`workflow_id`,
//! `run`, `cmd`, `activity_type`, `attempt`), with the
//! store's events inside them. [`layer`] turns them into OpenTelemetry
//! spans sent through the application's own tracer provider, so that they
//! reach whichever collector its exporter speaks to (OTLP, Jaeger, …):
//!
//! ```
//! use refrain_worker::otel::{self, opentelemetry_sdk::trace::SdkTracerProvider};
//! use tracing_subscriber::prelude::*;
//!
//! // The application's provider, with its exporter (an OTLP one, say):
//! // `SdkTracerProvider::builder().with_batch_exporter(exporter).build()`.
//! let provider = SdkTracerProvider::builder().build();
//! let subscriber = tracing_subscriber::registry().with(otel::layer(&provider));
//! tracing::subscriber::with_default(subscriber, || {
//!     // start the worker and the server here
//! });
//! // Sends the spans still buffered before the process exits.
//! provider.shutdown().ok();
//! ```
//!
//! The `opentelemetry` crates are re-exported: their versions must be the
//! ones this crate was built with (0.33, and `tracing-opentelemetry`
//! 0.34), or the types do not match.

pub use opentelemetry;
pub use opentelemetry_sdk;
pub use tracing_opentelemetry;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// The instrumentation scope the spans are reported under.
pub const SCOPE: &str = "refrain";

/// A `tracing-subscriber` layer that exports every span it sees, with its
/// fields as attributes and its events as span events, through a tracer
/// of `provider` named [`SCOPE`]. Spans are exported as they close;
/// [`SdkTracerProvider::shutdown`] flushes the ones a batch exporter still
/// holds.
pub fn layer<S>(provider: &SdkTracerProvider) -> OpenTelemetryLayer<S, SdkTracer>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer(SCOPE))
}
