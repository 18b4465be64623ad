//! What every handler shares: the client, the identities and sessions,
//! the metrics handle.

use crate::auth::{Identities, Sessions};
use metrics_exporter_prometheus::PrometheusHandle;
use refrain::{Client, HistoryStore};
use std::sync::Arc;

/// The server's shared state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// Identities and sessions.
pub struct Auth {
    /// Who may call, by token.
    pub identities: Identities,
    /// Logged-in browsers and the one-time link.
    pub sessions: Sessions,
}

struct Inner {
    client: Client,
    auth: Auth,
    metrics: Option<PrometheusHandle>,
}

impl AppState {
    pub(crate) fn new(
        client: Client,
        identities: Identities,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        AppState {
            inner: Arc::new(Inner {
                client,
                auth: Auth {
                    identities,
                    sessions: Sessions::new(),
                },
                metrics,
            }),
        }
    }

    /// The client every handler acts through.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The store behind the client.
    pub fn store(&self) -> &Arc<dyn HistoryStore> {
        self.inner.client.history_store()
    }

    /// Identities and sessions.
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// The Prometheus rendering of this process's metrics, if recorded.
    pub fn metrics(&self) -> Option<&PrometheusHandle> {
        self.inner.metrics.as_ref()
    }
}
