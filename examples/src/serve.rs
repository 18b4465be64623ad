//! `--serve ADDR` on every example: the dashboard, the JSON API and the
//! metrics of [`refrain_server`] beside the example's worker, on the
//! worker's client, so that a person can watch the story in a browser,
//! decide its human tasks in the inbox, and look around once it is over.
//!
//! ```text
//! cargo run --release --example loan_approval -- --serve 127.0.0.1:8233
//! cargo run --release --example loan_approval -- --serve 127.0.0.1:8233 --identities identities.toml
//! ```
//!
//! The server prints its address and a one-time login link on stderr. An
//! example started with `--serve` keeps serving after its story ends,
//! until Ctrl-C; without it, nothing changes.

use anyhow::{Context as _, Result};
use refrain::Client;
use refrain_server::{Identities, RunningServer, Server};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The `--serve` and `--identities` options of every example.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Serve the dashboard, the JSON API and metrics on ADDR beside the
    /// worker (127.0.0.1:8233; port 0 picks a free one), and keep serving
    /// after the example's story ends, until Ctrl-C.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<SocketAddr>,
    /// Identities that may log in or call the API, as a TOML file (see
    /// `refrain_server::auth`). Without it, only the one-time login link
    /// printed at start logs in.
    #[arg(long, value_name = "FILE", requires = "serve")]
    pub identities: Option<PathBuf>,
}

impl ServeArgs {
    /// Whether `--serve` was given.
    pub fn enabled(&self) -> bool {
        self.serve.is_some()
    }

    /// Starts the server on `client` (the worker's) when `--serve` was
    /// given; it prints its address and login link. `None` otherwise.
    ///
    /// # Errors
    /// An identities file that cannot be read or is invalid, and an
    /// address that cannot be listened on.
    pub async fn start(&self, client: Client) -> Result<Option<Serving>> {
        let Some(addr) = self.serve else {
            return Ok(None);
        };
        let mut server = Server::new(client).bind(addr);
        if let Some(path) = &self.identities {
            let identities = Identities::load(path)
                .with_context(|| format!("loading identities from {}", path.display()))?;
            server = server.identities(identities);
        }
        let running = server.start().await.context("starting the server")?;
        Ok(Some(Serving(running)))
    }
}

/// A server started by [`ServeArgs::start`].
pub struct Serving(RunningServer);

impl Serving {
    /// `http://ADDR`.
    pub fn url(&self) -> &str {
        self.0.url()
    }

    /// Keeps serving until Ctrl-C (or SIGTERM on Unix), then stops the
    /// server, letting requests in flight finish. The worker must still be
    /// running meanwhile: decisions taken in the inbox are carried out by
    /// it.
    ///
    /// # Errors
    /// If the signal handlers cannot be installed.
    pub async fn until_interrupted(self) -> Result<()> {
        eprintln!(
            "The example's story is over; still serving on {} until Ctrl-C.",
            self.url()
        );
        interrupted().await?;
        eprintln!("Stopping the server.");
        self.0.shutdown().await;
        Ok(())
    }
}

/// Waits for Ctrl-C or, on Unix, SIGTERM (how service managers and test
/// harnesses stop a process).
async fn interrupted() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    }
}

/// Keeps serving until interrupted if `serving` is `Some`; returns at once
/// otherwise (the example's behaviour without `--serve`).
///
/// # Errors
/// As [`Serving::until_interrupted`].
pub async fn keep_serving(serving: Option<Serving>) -> Result<()> {
    match serving {
        Some(s) => s.until_interrupted().await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use refrain::{Store, StoreConfig};

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn client() -> Client {
        Client::new(Store::in_memory(StoreConfig::default()))
    }

    #[tokio::test]
    async fn without_serve_nothing_is_started() {
        let args = Args::try_parse_from(["example"]).unwrap();
        assert!(!args.serve.enabled());
        assert!(args.serve.start(client()).await.unwrap().is_none());
    }

    #[test]
    fn identities_without_serve_is_refused() {
        let e = Args::try_parse_from(["example", "--identities", "ids.toml"])
            .err()
            .expect("refused");
        assert!(e.to_string().contains("--serve"), "{e}");
    }

    #[tokio::test]
    async fn an_unreadable_identities_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("identities.toml");
        let args = Args::try_parse_from([
            "example",
            "--serve",
            "127.0.0.1:0",
            "--identities",
            missing.to_str().unwrap(),
        ])
        .unwrap();
        let e = match args.serve.start(client()).await {
            Ok(_) => panic!("started with a missing identities file"),
            Err(e) => format!("{e:#}"),
        };
        assert!(e.contains(&missing.display().to_string()), "{e}");
    }

    #[tokio::test]
    async fn serve_starts_the_server_on_the_address() {
        let args = Args::try_parse_from(["example", "--serve", "127.0.0.1:0"]).unwrap();
        let serving = args.serve.start(client()).await.unwrap().expect("serving");
        assert!(
            serving.url().starts_with("http://127.0.0.1:"),
            "{}",
            serving.url()
        );
        assert!(!serving.url().ends_with(":0"), "{}", serving.url());
        serving.0.shutdown().await;
    }
}
