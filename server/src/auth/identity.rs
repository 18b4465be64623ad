//! Who may use the server: identities, their role and groups, and the
//! digests of their access tokens, as the operator configures them.
//!
//! An identities file is TOML:
//!
//! ```toml
//! [[identity]]
//! name = "underwriter-1"          # what `decided_by` records
//! role = "viewer"                 # viewer | operator | admin
//! groups = ["underwriters"]       # human tasks assigned to a group
//! token_sha256 = "9f86d08188…"    # `refrain token` prints a token and this
//! ```
//!
//! Only digests are kept, so the file (and a memory dump) holds no usable
//! secret; `token = "…"` in clear is accepted too, for a trial on one's own
//! machine. A token is looked up by its digest, so comparing secrets takes
//! the same time whichever byte differs.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// What an identity may do. Each role may do everything the ones before
/// it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees runs, histories, schedules and metrics; decides the human tasks
    /// assigned to it or its groups (every role may).
    Viewer,
    /// Also starts, signals, updates, cancels and terminates runs, and
    /// pauses, resumes and triggers schedules.
    Operator,
    /// Also creates and deletes schedules.
    Admin,
}

impl Role {
    /// The name used in files and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person or service the server knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Its name: what the history records as the actor (`decided_by`,
    /// a signal's sender) and the assignee name of its human tasks.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Groups it belongs to: a human task assigned to a group is in the
    /// inbox of each member.
    pub groups: Vec<String>,
}

impl Identity {
    /// An identity with `role` and no group.
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Identity {
            name: name.into(),
            role,
            groups: Vec::new(),
        }
    }

    /// Adds a group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }

    /// Whether it may do what `role` may.
    pub fn has(&self, role: Role) -> bool {
        self.role >= role
    }

    /// Whether a human task assigned to `assignee` is this identity's: its
    /// own name or one of its groups.
    pub fn is_assignee(&self, assignee: &str) -> bool {
        self.name == assignee || self.groups.iter().any(|g| g == assignee)
    }

    /// The assignee names whose tasks are in its inbox: its name, then its
    /// groups.
    pub fn inbox_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.groups.iter().map(String::as_str))
    }
}

/// The SHA-256 digest of a token, in lowercase hex: what an identities
/// file keeps instead of the token.
pub fn token_digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A new random access token (256 bits, hex).
pub fn new_token() -> String {
    use rand::Rng;
    hex(&rand::rng().random::<[u8; 32]>())
}

/// Whether two secrets are equal, in a time that says nothing about where
/// they differ: their digests are compared, not their bytes.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The identities of a server, found by token.
#[derive(Clone, Default)]
pub struct Identities {
    by_digest: HashMap<String, Arc<Identity>>,
}

impl fmt::Debug for Identities {
    // Names and roles only: digests stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.by_digest.values().map(|i| (&i.name, i.role)))
            .finish()
    }
}

/// An identities file could not be used; nothing was loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum IdentitiesError {
    /// The file could not be read.
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    Parse {
        /// The parser's message (line and column included).
        message: String,
    },
    /// An entry is unusable: no token, two tokens, a malformed digest, a
    /// name or token used twice.
    Invalid {
        /// The entry's name.
        name: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for IdentitiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentitiesError::Read { path, source } => {
                write!(f, "cannot read identities file {path}: {source}")
            }
            IdentitiesError::Parse { message } => write!(f, "identities file: {message}"),
            IdentitiesError::Invalid { name, reason } => {
                write!(f, "identities file: identity {name:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for IdentitiesError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    identity: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    role: Role,
    #[serde(default)]
    groups: Vec<String>,
    token_sha256: Option<String>,
    token: Option<String>,
}

impl Identities {
    /// No identity: only the one-time login link of the server's start
    /// gets in.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `identity`, which logs in with `token`.
    ///
    /// # Errors
    /// `Invalid` if the name or the token is already used.
    pub fn with(self, identity: Identity, token: &str) -> Result<Self, IdentitiesError> {
        self.with_digest(identity, token_digest(token))
    }

    fn with_digest(mut self, identity: Identity, digest: String) -> Result<Self, IdentitiesError> {
        let invalid = |reason: &str| IdentitiesError::Invalid {
            name: identity.name.clone(),
            reason: reason.to_owned(),
        };
        if identity.name.trim().is_empty() {
            return Err(invalid("the name is empty"));
        }
        if self.by_digest.values().any(|i| i.name == identity.name) {
            return Err(invalid("the name is used twice"));
        }
        if self.by_digest.contains_key(&digest) {
            return Err(invalid("its token is another identity's"));
        }
        self.by_digest.insert(digest, Arc::new(identity));
        Ok(self)
    }

    /// Parses an identities file's text (see the module documentation).
    ///
    /// # Errors
    /// `Parse` or `Invalid`, naming the entry.
    pub fn from_toml(text: &str) -> Result<Self, IdentitiesError> {
        let file: File = toml::from_str(text).map_err(|e| IdentitiesError::Parse {
            message: e.to_string(),
        })?;
        let mut identities = Identities::new();
        for entry in file.identity {
            let invalid = |reason: &str| IdentitiesError::Invalid {
                name: entry.name.clone(),
                reason: reason.to_owned(),
            };
            let digest = match (&entry.token_sha256, &entry.token) {
                (Some(d), None) => {
                    let d = d.to_ascii_lowercase();
                    if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(invalid("token_sha256 is not 64 hex digits"));
                    }
                    d
                }
                (None, Some(t)) if t.len() >= 16 => token_digest(t),
                (None, Some(_)) => return Err(invalid("token is shorter than 16 characters")),
                (None, None) => return Err(invalid("it has neither token_sha256 nor token")),
                (Some(_), Some(_)) => return Err(invalid("it has both token_sha256 and token")),
            };
            let identity = Identity {
                name: entry.name.clone(),
                role: entry.role,
                groups: entry.groups.clone(),
            };
            identities = identities.with_digest(identity, digest)?;
        }
        Ok(identities)
    }

    /// Reads and parses an identities file.
    ///
    /// # Errors
    /// `Read`, `Parse` or `Invalid`.
    pub fn load(path: &Path) -> Result<Self, IdentitiesError> {
        let text = std::fs::read_to_string(path).map_err(|source| IdentitiesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The identity whose token this is.
    pub fn by_token(&self, token: &str) -> Option<Arc<Identity>> {
        self.by_digest.get(&token_digest(token)).cloned()
    }

    /// How many identities there are.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gives_identities_found_by_token_only() {
        let digest = token_digest("underwriter-secret-1");
        let text = format!(
            r#"
            [[identity]]
            name = "underwriter-1"
            role = "viewer"
            groups = ["underwriters"]
            token_sha256 = "{digest}"

            [[identity]]
            name = "ops"
            role = "operator"
            token = "operator-secret-123"
            "#
        );
        let ids = Identities::from_toml(&text).unwrap();
        let u = ids.by_token("underwriter-secret-1").unwrap();
        assert_eq!(u.name, "underwriter-1");
        assert!(u.is_assignee("underwriters") && !u.has(Role::Operator));
        assert!(ids
            .by_token("operator-secret-123")
            .unwrap()
            .has(Role::Operator));
        assert!(ids.by_token(&digest).is_none(), "a digest is not a token");
        assert!(!format!("{ids:?}").contains(&digest));
    }

    #[test]
    fn unusable_entries_are_refused_by_name() {
        let two = r#"
            [[identity]]
            name = "a"
            role = "viewer"
            token = "aaaaaaaaaaaaaaaa"
            [[identity]]
            name = "a"
            role = "admin"
            token = "bbbbbbbbbbbbbbbb"
        "#;
        let e = Identities::from_toml(two).unwrap_err();
        assert!(
            matches!(e, IdentitiesError::Invalid { ref name, .. } if name == "a"),
            "{e}"
        );
        let short = "[[identity]]\nname = \"b\"\nrole = \"viewer\"\ntoken = \"short\"\n";
        assert!(Identities::from_toml(short)
            .unwrap_err()
            .to_string()
            .contains("shorter"));
        let bad_role =
            "[[identity]]\nname = \"c\"\nrole = \"root\"\ntoken = \"cccccccccccccccc\"\n";
        assert!(matches!(
            Identities::from_toml(bad_role),
            Err(IdentitiesError::Parse { .. })
        ));
    }
}
