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
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            unhealthy_after_cycles: 3,
            // Service managers give about five seconds before they kill.
            shutdown_grace: Duration::from_secs(4),
            tick: Duration::from_secs(30),
        }
    }
}
