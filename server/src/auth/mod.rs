//! Authentication and roles: who is calling, and what they may do.
//!
//! - **The API** (`/api/v1/…`, `/metrics`) takes a bearer token:
//!   `Authorization: Bearer TOKEN`, the token of an identity of the
//!   identities file. No cookie is accepted there, so no other site's page
//!   can make a browser call it (no CSRF to defend).
//! - **The dashboard** takes a session cookie, got by logging in with the
//!   one-time link or with an access token on the login page; every form
//!   carries the session's CSRF token.
//! - `GET /healthz` is the one route open to anyone, besides the login page
//!   itself (`/login`, `/?token=`) and the stylesheet it is drawn with.
//!
//! Without a credential the answer is 401 (a dashboard page redirects to
//! the login page); with a role too low, or on another person's human
//! task, 403. The identity is the actor every write records: a decision's
//! `decided_by` is the caller's name, never a field of the request.

mod extract;
mod identity;
mod sessions;

pub use extract::{ApiCaller, WebCaller};
pub use identity::{new_token, token_digest, Identities, IdentitiesError, Identity, Role};
pub use sessions::{Session, Sessions, LOCAL_ADMIN, SESSION_COOKIE, SESSION_TTL};
