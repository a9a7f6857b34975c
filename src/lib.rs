//! Gazette: fetch many source feeds, normalize every entry into one [`Article`] model, and publish
//! a Markdown archive plus a merged Atom feed.
//!
//! Data flows one way: config -> schedule -> fetch -> parse -> normalize -> extract -> enrich ->
//! store -> publish -> serve. A module uses the ground floor and the layers before it, never
//! one after it; `tests/layers.rs` fails when a `use` breaks that. The modules, by layer:

// Ground floor: imports no stage.
pub mod clock; // the scheduler's time: the system clock, or a manual one in tests
pub mod error; // the library's error type; the kinds of fetch failure
pub mod files; // atomic, durable file writes
pub mod format; // the archive format's own types: path template, labels, front-matter date
pub mod model; // `Article` and `Section`: the one shape every entry takes; records stages share
pub mod text; // HTML -> text/Markdown, whitespace, code fences, description and slug rules

// Settings and plain services: the ground floor only.
pub mod config; // TOML file + flags -> checked `Settings`; adding sources to the file
pub mod lock; // one writer per archive: an advisory lock beside the state database
pub mod metrics; // counters of the daemon, for /metrics, from plain events
pub mod store; // SQLite state: sources, and every archived article whole, as plain records

// The stages (their order is the flow above).
pub mod enrich; // optional LLM sections: translations and a summary
pub mod extract; // full text from the article page; canonical links
pub mod fetch; // one shared HTTP client; local files for `file://` and paths; no state
pub mod normalize; // parsed entry -> `Article` (key, dates, absolute links, Markdown body)
pub mod opml; // OPML import and export, feed discovery on web pages
pub mod parse; // response bytes -> one feed model (RSS 0.90-2.0, Atom 0.3/1.0, JSON Feed)
pub mod publish; // Markdown archive files and the feeds (merged, tag, source, JSON), from state
pub mod schedule; // when each source is due (the one rule): intervals, hints, back-off

// What drives the stages.
pub mod daemon; // `gazette run`: the cycle on a schedule, and the HTTP server, in one process
pub mod pipeline; // the one run cycle cron and the daemon share; rebuild, verify
pub mod serve; // the HTTP server: feeds and pages from state and the publishers, health

pub use error::{Error, FetchFailure, FetchFailureKind, Result};
pub use model::{Article, Document, Section};
