//! Gazette: fetch many source feeds, normalize every entry into one [`Article`] model, and publish
//! a Markdown archive plus a merged Atom feed.
//!
//! The modules follow the pipeline in the order an entry travels through it.

pub mod clock; // the scheduler's time: the system clock, or a manual one in tests
pub mod config; // TOML file + flags -> checked `Settings`
pub mod daemon; // `gazette run`: scheduler and HTTP server in one process
pub mod enrich; // optional LLM sections: translations and a summary
pub mod error; // the library's error type
pub mod extract; // full text from the article page; canonical links
pub mod fetch; // one shared HTTP client; local files for `file://` and paths
pub mod files; // atomic, durable file writes
pub mod format; // the archive format's own types: path template, labels, front-matter date
pub mod lock; // one writer per archive: an advisory lock beside the state database
pub mod metrics; // counters of the daemon, for /metrics
pub mod model; // `Article` and `Section`: the one shape every entry takes; records stages share
pub mod normalize; // parsed entry -> `Article` (key, dates, absolute links, Markdown body)
pub mod opml; // OPML import and export, feed discovery on web pages
pub mod parse; // response bytes -> one feed model (RSS 0.90-2.0, Atom 0.3/1.0, JSON Feed)
pub mod pipeline; // `refresh_source`: fetch -> parse -> normalize -> store -> archive; rebuild, verify
pub mod publish; // Markdown archive files and the feeds (merged, per tag, per source, JSON), from state
pub mod schedule; // when each source is due: intervals, feed and server hints, back-off
pub mod serve; // the daemon's HTTP server: feeds and pages from state, health, metrics
pub mod store; // SQLite state: sources, and every archived article whole
pub mod text; // HTML -> text/Markdown, whitespace, description and slug rules

pub use error::{Error, FetchFailure, FetchFailureKind, Result};
pub use model::{Article, Document, Section};
