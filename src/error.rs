//! One error type for the library. Every variant names what failed (a source id, a URL, a path)
//! so the message alone tells an operator where to look.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("source {source_id}: fetching {url} failed: {reason}")]
    Fetch {
        source_id: String,
        url: String,
        reason: String,
    },

    #[error("source {source_id}: {url} answered HTTP {status}: {reason}")]
    HttpStatus {
        source_id: String,
        url: String,
        status: u16,
        reason: String,
        /// What the server's `Retry-After` asked for (429, 503).
        retry_after: Option<std::time::Duration>,
    },

    #[error("source {source_id}: {url} is not a readable feed: {reason}")]
    Parse {
        source_id: String,
        url: String,
        reason: String,
    },

    #[error("cannot set up the HTTP client: {0}")]
    Client(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not an archive file: {reason}")]
    Archive { path: PathBuf, reason: String },

    #[error("state database: {0}")]
    State(#[from] sqlx::Error),

    #[error("state database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// The database's schema is not one this binary can use.
    #[error("state database {0}")]
    Schema(String),

    /// A write refused because it would lose what is published or archived; the message says
    /// what to run instead.
    #[error("{0}")]
    Refused(String),
}

impl Error {
    /// The delay the server asked for before the next attempt, if it asked.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::HttpStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// HTTP 410: the publisher removed the feed for good.
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::HttpStatus { status: 410, .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
