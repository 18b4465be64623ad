//! Refrain while it runs: a JSON HTTP API, a web dashboard with a
//! human-task inbox, and a Prometheus endpoint, all behind
//! authentication.
//!
//! One server, used two ways with the same routes:
//!
//! - **Embedded** beside the application's worker, on the worker's client:
//!
//!   ```no_run
//!   # async fn demo(client: refrain::Client) -> Result<(), Box<dyn std::error::Error>> {
//!   use refrain_server::{Identities, Server};
//!   // `client`: the worker's, `worker.client()`
//!   let server = Server::new(client)
//!       .identities(Identities::load("identities.toml".as_ref())?)
//!       .start()
//!       .await?;
//!   // prints: Refrain server on http://127.0.0.1:8233
//!   //           open http://127.0.0.1:8233/?token=… to log in
//!   # server.shutdown().await; Ok(()) }
//!   ```
//!
//! - **Standalone**, `refrain --db DIR serve`: the server owns the store
//!   and runs its timer and schedule services, but no workflow code (the
//!   application's workers run that).
//!
//! It binds to 127.0.0.1:8233 unless told otherwise. Every route but
//! `GET /healthz` needs a credential (see [`auth`]): the API and `/metrics`
//! a bearer token, the dashboard a session from the one-time login link
//! printed at start or from an access token on the login page.
//!
//! # Routes
//!
//! - `/api/v1/…`: the JSON API; `GET /api/v1/openapi.json` describes it.
//! - `/`, `/runs`, `/runs/{id}`, `/inbox`, `/inbox/{run}/{cmd}`,
//!   `/schedules`, `/kpis`: the dashboard; `/login` and `/logout`; its
//!   stylesheet `/assets/style.css`.
//! - `/metrics`: Prometheus text format.
//! - `/healthz`: `ok`, unauthenticated.

mod api;
pub mod auth;
mod dashboard;
mod error;
mod metrics;
pub mod remote;
mod state;
mod util;

/// The API's JSON forms of the store's records (times, payloads, runs,
/// failures, human tasks, schedules): what the CLI's `--json` prints too.
pub use api::json;
pub use auth::{Identities, IdentitiesError, Identity, Role};
pub use error::{codes, ApiError};
pub use state::AppState;

use axum::routing::get;
use axum::Router;
use refrain::Client;
use std::fmt;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where a server listens unless told otherwise: this machine only.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8233);

/// A server to start; see the crate documentation.
pub struct Server {
    client: Client,
    identities: Identities,
    addr: SocketAddr,
    print_link: bool,
}

impl Server {
    /// A server acting through `client` (a worker's client when embedded),
    /// on [`DEFAULT_ADDR`], with no identity but the one-time login link.
    pub fn new(client: Client) -> Self {
        Server {
            client,
            identities: Identities::new(),
            addr: DEFAULT_ADDR,
            print_link: true,
        }
    }

    /// The identities that may log in or call the API.
    pub fn identities(mut self, identities: Identities) -> Self {
        self.identities = identities;
        self
    }

    /// Listens on `addr` (port 0 for any free port). Binding to another
    /// interface than loopback exposes the server to the network: put TLS
    /// in front of it (a reverse proxy).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Does not print the address and login link at start (tests; the
    /// link stays available from [`RunningServer::login_url`]).
    pub fn quiet(mut self) -> Self {
        self.print_link = false;
        self
    }

    /// The routes, for serving them yourself (behind your own listener or
    /// under your own axum application). Prometheus metrics are recorded
    /// from here on.
    pub fn into_router(self) -> (Router, AppState) {
        let state = AppState::new(self.client, self.identities, metrics::install());
        (router(state.clone()), state)
    }

    /// Binds and serves in the background until
    /// [`RunningServer::shutdown`].
    ///
    /// # Errors
    /// `Bind` if the address cannot be listened on.
    pub async fn start(self) -> Result<RunningServer, ServerError> {
        let addr = self.addr;
        let print_link = self.print_link;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let (router, state) = self.into_router();
        let url = format!("http://{addr}");
        let login_url = state
            .auth()
            .sessions
            .one_time_token()
            .map(|t| format!("{url}/?token={t}"));
        if print_link {
            // The terminal of the person who started it, not the logs:
            // the link carries a (one-time) secret.
            eprintln!("Refrain server on {url}");
            if let Some(link) = &login_url {
                eprintln!("  open {link} to log in");
            }
        }
        tracing::info!(%addr, "refrain server listening");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "refrain server stopped");
            }
        });
        Ok(RunningServer {
            addr,
            url,
            login_url,
            state,
            stop: Some(stop),
            task,
        })
    }
}

/// The routes of a server on `state`.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::render))
        .merge(api::routes())
        .merge(dashboard::routes())
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers every answer carries: pages load nothing from elsewhere and
/// run no script, no other site may frame them (clickjacking on the
/// decide and terminate forms), and no address (the login link's one-time
/// token) leaks through `Referer`.
async fn security_headers(mut res: axum::response::Response) -> axum::response::Response {
    use axum::http::header::{self, HeaderValue};
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// A server serving in the background.
pub struct RunningServer {
    addr: SocketAddr,
    url: String,
    login_url: Option<String>,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The one-time login link printed at start (usable once).
    pub fn login_url(&self) -> Option<&str> {
        self.login_url.as_deref()
    }

    /// Its shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting, lets requests in flight finish, and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// A server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// The address cannot be listened on (in use, not this machine's, no
    /// permission).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Bind { source, .. } => Some(source),
        }
    }
}
