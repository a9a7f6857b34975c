//! The `[serve]` table: the daemon's HTTP server, health rule and shutdown.

use std::time::Duration;

use serde::Deserialize;

use super::units::duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address of the HTTP server (`--listen` overrides it).
    pub listen: String,
    /// `/healthz` fails when every source failed in this many cycles in a row.
    pub unhealthy_after_cycles: u32,
    /// How long in-flight work may take to finish after SIGINT or SIGTERM.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// Longest pause between two looks at which sources are due.
    #[serde(with = "duration")]
    pub tick: Duration,
    /// A request's headers must arrive within this.
    #[serde(with = "duration")]
    pub header_timeout: Duration,
    /// A connection with no request in flight is closed after this.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Open connections at most; fewer when the file limit leaves less room. At the cap the
    /// connection idle the longest is closed for a new one.
    pub max_connections: usize,
    /// The largest request head read (request line and headers); larger ones get 431.
    #[serde(with = "super::units::byte_size")]
    pub max_header_bytes: u64,
    /// A folder of templates that replace the built-in ones of the same name (`base.html`,
    /// `list.html`, `article.html`, `search.html`, `error.html`, `style.css`, …), relative to
    /// the config file's folder.
    pub templates: Option<std::path::PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            unhealthy_after_cycles: 3,
            // Service managers give about five seconds before they kill.
            shutdown_grace: Duration::from_secs(4),
            tick: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_header_bytes: 16 * 1024,
            templates: None,
        }
    }
}
