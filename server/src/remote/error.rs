//! What a request to the API can end in besides its answer: the API's own
//! error (with its stable `code`), or no Refrain server to ask.

use std::fmt;

/// A request to the API did not get the answer it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteError {
    /// The server URL is not one this client can use.
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// An `https://` URL: this client speaks plain HTTP only. Reach a
    /// remote server through a tunnel to its loopback address, or a TLS
    /// proxy in front of it from a client of your own.
    TlsUnsupported {
        /// The URL.
        url: String,
    },
    /// Nothing answers at the URL (connection refused, unknown host, no
    /// route, timed out connecting).
    Connect {
        /// The server URL.
        url: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The connection broke before a whole answer came.
    Transport {
        /// The server URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Something answered that is not a Refrain server (no API error
    /// body, no `ok` from `/healthz`).
    NotRefrain {
        /// The server URL.
        url: String,
        /// The HTTP status it answered.
        status: u16,
        /// The start of its answer.
        detail: String,
    },
    /// The API answered with an error (see `refrain_server::codes`).
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable error code, e.g. `not_found`, `unauthorized`.
        code: String,
        /// What happened, for people.
        message: String,
    },
    /// A success answer that is not the JSON the route documents (a
    /// server of another version?).
    BadAnswer {
        /// The request path.
        path: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl RemoteError {
    /// The API's error code, for an error the API answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            RemoteError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The API's HTTP status, for an error the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            RemoteError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::BadUrl { url, reason } => write!(f, "bad server URL {url:?}: {reason}"),
            RemoteError::TlsUnsupported { url } => write!(
                f,
                "{url}: https is not supported by this client; use http:// to a tunnel \
                 (e.g. ssh -L 8233:127.0.0.1:8233 HOST) or to the server's loopback address"
            ),
            RemoteError::Connect { url, reason } => {
                write!(f, "cannot connect to a Refrain server at {url}: {reason}")
            }
            RemoteError::Transport { url, reason } => {
                write!(f, "the connection to {url} failed: {reason}")
            }
            RemoteError::NotRefrain {
                url,
                status,
                detail,
            } => write!(
                f,
                "{url} is not a Refrain server (HTTP {status} without an API error body: {detail:?})"
            ),
            RemoteError::Api {
                status,
                code,
                message,
            } => write!(f, "{message} ({code}, HTTP {status})"),
            RemoteError::BadAnswer { path, reason } => write!(
                f,
                "the server's answer to {path} is not what this client expects \
                 (a server of another version?): {reason}"
            ),
        }
    }
}

impl std::error::Error for RemoteError {}
