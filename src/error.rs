//! One error type for the library. Every variant names what failed (a source id, a URL, a path)
//! so the message alone tells an operator where to look.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kinds of fetch failure (besides an HTTP status, which is [`Error::HttpStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFailure {
    /// No complete response in time (`fetch.timeout`).
    Timeout,
    /// No connection: refused, unreachable, DNS, TLS.
    Connect,
    /// The body is larger than `fetch.max_body`.
    TooLarge,
    /// The body broke off or could not be decoded.
    Body,
    /// A redirect without a usable target, a loop, or too many.
    Redirect,
    /// The address guard refused the URL (a private address, a scheme other than http(s)).
    Refused,
    /// The run's deadline passed first (`fetch.run_deadline`).
    Deadline,
    /// A local file could not be read.
    File,
    /// The server answered against the protocol (304 to an unconditional request).
    Protocol,
    /// An anti-bot wall answered: a challenge, a captcha or a block page instead of the feed.
    BotWall,
    /// Anything else the HTTP client reports.
    Other,
}

impl FetchFailure {
    /// The name `status` shows and state keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchFailure::Timeout => "timeout",
            FetchFailure::Connect => "connect",
            FetchFailure::TooLarge => "too-large",
            FetchFailure::Body => "body",
            FetchFailure::Redirect => "redirect",
            FetchFailure::Refused => "refused",
            FetchFailure::Deadline => "deadline",
            FetchFailure::File => "file",
            FetchFailure::Protocol => "protocol",
            FetchFailure::BotWall => "anti-bot",
            FetchFailure::Other => "other",
        }
    }

    /// Whether asking again soon can help. A body over the limit, a refused address or a
    /// redirect loop stay as they are until someone changes the feed or the config.
    pub fn is_transient(self) -> bool {
        !matches!(
            self,
            FetchFailure::TooLarge | FetchFailure::Refused | FetchFailure::Redirect
        )
    }
}

/// How a fetch failed: the status a server answered, or another [`FetchFailure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFailureKind {
    Status(u16),
    Failure(FetchFailure),
}

impl FetchFailureKind {
    /// `http-503`, `timeout`, ...: what state keeps and `status` shows.
    pub fn label(self) -> String {
        match self {
            FetchFailureKind::Status(code) => format!("http-{code}"),
            FetchFailureKind::Failure(kind) => kind.as_str().to_owned(),
        }
    }

    /// Whether asking again soon can help. Statuses back off as usual (a 404 is often a
    /// feed being moved; a 410 disables the source on its own); other failures say for
    /// themselves.
    pub fn is_transient(self) -> bool {
        match self {
            FetchFailureKind::Status(_) => true,
            FetchFailureKind::Failure(kind) => kind.is_transient(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("source {source_id}: fetching {url} failed: {reason}")]
    Fetch {
        source_id: String,
        url: String,
        /// What kind of failure: the back-off rule and `status` go by it.
        kind: FetchFailure,
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

    /// A bot check answered instead of the feed; `wall` names the service and its answer,
    /// and the message says what may help.
    #[error(
        "source {source_id}: {url} answered with an anti-bot wall ({wall}{}), not the feed; {hint}",
        status.map(|s| format!(", HTTP {s}")).unwrap_or_default()
    )]
    BotWall {
        source_id: String,
        url: String,
        wall: String,
        status: Option<u16>,
        hint: &'static str,
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

    #[error("state database: {}", database_message(.0))]
    State(#[from] sqlx::Error),

    /// A batch of sources' work could not be committed; each source in it reports the cause.
    #[error("{0}")]
    Commit(String),

    /// Another source written in the same batch failed part-way, and the batch was rolled
    /// back with it: nothing of this source's work is in state. Its caller runs it again.
    #[error("written together with source {failed}, whose failure took the batch back: {cause}")]
    RolledBack { failed: String, cause: String },

    #[error("state database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// The state database is damaged; the message names the damage and the ways out.
    #[error("{0}")]
    Damaged(String),

    /// The database's schema is not one this binary can use.
    #[error("state database {0}")]
    Schema(String),

    /// A write refused because it would lose what is published or archived; the message says
    /// what to run instead.
    #[error("{0}")]
    Refused(String),

    /// A worker's lease on the source ran out before its results were committed; another
    /// worker may have the source now, so nothing of this run of it is kept.
    #[error(
        "source {source_id}: the lease ran out before the results were committed; another worker takes the source"
    )]
    LeaseLost { source_id: String },
}

/// What every message about a damaged state database ends with: the ways out.
pub const DAMAGED_STATE_WAY_OUT: &str = "run `gazette rebuild` to recover the state from the \
                                         archive (after moving the damaged file aside), or \
                                         restore a backup";

/// SQLite's own words and code ("database or disk is full (code 13)"), without sqlx's
/// "error returned from database" around them.
fn database_message(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(e) => match e.code().as_deref() {
            // CORRUPT and NOTADB: met while working, not only at open; say the way out.
            Some(code @ ("11" | "26")) => format!(
                "{} (code {code}): the file is damaged; {}",
                e.message(),
                DAMAGED_STATE_WAY_OUT
            ),
            Some(code) => format!("{} (code {code})", e.message()),
            None => e.message().to_owned(),
        },
        other => other.to_string(),
    }
}

impl Error {
    /// The delay the server asked for before the next attempt, if it asked.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::HttpStatus { retry_after, .. } | Error::BotWall { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The kind of a failed fetch: its [`FetchFailure`], or its HTTP status.
    pub fn fetch_failure(&self) -> Option<FetchFailureKind> {
        match self {
            Error::Fetch { kind, .. } => Some(FetchFailureKind::Failure(*kind)),
            Error::HttpStatus { status, .. } => Some(FetchFailureKind::Status(*status)),
            Error::BotWall { .. } => Some(FetchFailureKind::Failure(FetchFailure::BotWall)),
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
