//! `refrain serve` and `refrain token`: the HTTP API and dashboard on a
//! store, and the credentials to reach them.
//!
//! `serve` opens the store, runs its time service (timers, activity
//! deadlines, schedules) and the server, and runs until Ctrl-C or SIGTERM;
//! then it stops accepting requests, lets those in flight finish, stops
//! the time service and waits until everything written is durable. It runs
//! no workflow code: what it starts, signals or decides is carried on by
//! the application's workers when they next run on the store.

use super::{acknowledge, open_store, CliError, Out};
use crate::timers::TimeService;
use refrain::Client;
use refrain_server::auth::{new_token, token_digest};
use refrain_server::{Identities, Server};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub(super) fn serve(
    db: Option<&Path>,
    bind: SocketAddr,
    identities: Option<PathBuf>,
) -> Result<(), CliError> {
    // The identities first: a typo in the file should not cost a store
    // open (and its lock) to find out.
    let identities = match identities {
        Some(path) => Identities::load(&path).map_err(|e| {
            CliError::Unusable(format!(
                "cannot use the identities file {}: {e}",
                path.display()
            ))
        })?,
        None => Identities::new(),
    };
    let store = open_store(db)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("refrain-serve")
        .build()
        .map_err(|e| CliError::Unusable(format!("cannot start the async runtime: {e}")))?;
    let served = runtime.block_on(async {
        let client = Client::new(store.clone());
        let time = TimeService::start(client.history_store().clone());
        let server = match Server::new(client)
            .identities(identities)
            .bind(bind)
            .start()
            .await
        {
            Ok(server) => server,
            Err(e) => {
                time.shutdown().await;
                return Err(CliError::Unusable(e.to_string()));
            }
        };
        eprintln!(
            "  serving the store at {}; Ctrl-C or SIGTERM stops",
            store_path(db)
        );
        let stopped = stop_signal().await;
        eprintln!("stopping ({stopped})");
        server.shutdown().await;
        time.shutdown().await;
        Ok(())
    });
    drop(runtime);
    served?;
    acknowledge(&store, "the last changes")?;
    eprintln!("stopped");
    Ok(())
}

fn store_path(db: Option<&Path>) -> String {
    db.map_or_else(String::new, |p| p.display().to_string())
}

/// Waits for Ctrl-C or, on Unix, SIGTERM (what a supervisor sends).
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupted",
                _ = term.recv() => "terminated",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "interrupted"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "interrupted"
    }
}

/// `refrain token`: a new token on stdout, and the digest line that lets
/// an identity of an identities file use it (the file keeps only the
/// digest; the token is shown once).
pub(super) fn token(as_json: bool, out: Out<'_>) -> Result<(), CliError> {
    let token = new_token();
    if as_json {
        let v = serde_json::json!({ "token": token, "token_sha256": token_digest(&token) });
        return super::remote::print_json(out, &v);
    }
    writeln!(out, "{token}")?;
    writeln!(out, "token_sha256 = \"{}\"", token_digest(&token))?;
    Ok(())
}
