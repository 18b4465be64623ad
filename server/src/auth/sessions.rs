//! Dashboard sessions and the one-time login link.
//!
//! A browser logs in once, with the one-time token of the link the server
//! prints at start (as Jupyter does, for the person who started it) or
//! with an identity's access token on the login page, and gets a session
//! cookie: `HttpOnly` (no script reads it), `SameSite=Strict` (no other
//! site's page sends it). Each session has its own CSRF token, which every
//! dashboard form carries and every dashboard write checks. Sessions live
//! in the server's memory: a restart logs everyone out, which costs a
//! login and keeps no secret on disk.

use super::identity::{new_token, same_secret, Identity, Role};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a session lasts after its login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "refrain_session";

/// The identity the one-time link logs in as: the person who started the
/// server, with every right.
pub const LOCAL_ADMIN: &str = "local-admin";

/// A logged-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// Who.
    pub identity: Arc<Identity>,
    /// The token its forms must carry.
    pub csrf: String,
    expires: Instant,
}

/// The server's sessions and its unused one-time token.
pub struct Sessions {
    inner: Mutex<Inner>,
}

struct Inner {
    by_id: HashMap<String, Session>,
    one_time: Option<String>,
}

impl Sessions {
    /// No session yet, and a fresh one-time token.
    pub fn new() -> Self {
        Sessions {
            inner: Mutex::new(Inner {
                by_id: HashMap::new(),
                one_time: Some(new_token()),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves the maps whole.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The one-time token, while unused (for the link printed at start).
    pub fn one_time_token(&self) -> Option<String> {
        self.lock().one_time.clone()
    }

    /// Uses the one-time token: `Some(session id)` of a new local-admin
    /// session if `token` is it and it was never used.
    pub fn redeem_one_time(&self, token: &str) -> Option<String> {
        let mut inner = self.lock();
        match &inner.one_time {
            Some(t) if same_secret(t, token) => {
                inner.one_time = None;
                drop(inner);
                let admin = Arc::new(Identity::new(LOCAL_ADMIN, Role::Admin));
                Some(self.create(admin))
            }
            _ => None,
        }
    }

    /// A new session of `identity`; returns its id (the cookie's value).
    pub fn create(&self, identity: Arc<Identity>) -> String {
        let id = new_token();
        let session = Session {
            identity,
            csrf: new_token(),
            expires: Instant::now() + SESSION_TTL,
        };
        let mut inner = self.lock();
        let now = Instant::now();
        inner.by_id.retain(|_, s| s.expires > now);
        inner.by_id.insert(id.clone(), session);
        id
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let inner = self.lock();
        inner
            .by_id
            .get(id)
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    /// Ends a session (logout).
    pub fn remove(&self, id: &str) {
        self.lock().by_id.remove(id);
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_time_token_logs_in_once() {
        let sessions = Sessions::new();
        let token = sessions.one_time_token().unwrap();
        assert!(sessions.redeem_one_time("wrong").is_none());
        let id = sessions.redeem_one_time(&token).unwrap();
        assert_eq!(sessions.get(&id).unwrap().identity.name, LOCAL_ADMIN);
        assert!(sessions.redeem_one_time(&token).is_none());
        assert!(sessions.one_time_token().is_none());
        sessions.remove(&id);
        assert!(sessions.get(&id).is_none());
    }
}
