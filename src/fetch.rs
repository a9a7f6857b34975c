//! Getting a source's bytes: one shared HTTP client for `http(s)://` sources, the file system for
//! `file://` URLs and paths.
//!
//! The body is returned as raw bytes, never decoded text: the XML prolog names the encoding and
//! the parser must see it as sent.

use std::error::Error as _;

use bytes::Bytes;
use url::Url;

use crate::config::{FetchConfig, Location, Source};
use crate::error::{Error, Result};

/// A fetched feed document.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Bytes,
    /// Where the body finally came from (after redirects); the base for relative links.
    pub url: Option<Url>,
    pub content_type: Option<String>,
}

/// The User-Agent sent unless configured otherwise.
pub fn default_user_agent() -> String {
    format!("Gazette/{} (feed aggregator)", env!("CARGO_PKG_VERSION"))
}

/// Fetches sources; clone it freely, clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Self> {
        let user_agent = config.user_agent.clone().unwrap_or_else(default_user_agent);
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| Error::Fetch {
                source_id: String::new(),
                url: String::new(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self { client })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub async fn fetch(&self, source: &Source) -> Result<Fetched> {
        match &source.location {
            Location::File(path) => {
                let body = tokio::fs::read(path).await.map_err(|e| Error::Fetch {
                    source_id: source.id.clone(),
                    url: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                Ok(Fetched {
                    body: Bytes::from(body),
                    url: Url::from_file_path(path).ok(),
                    content_type: None,
                })
            }
            Location::Http(url) => self.fetch_http(source, url).await,
        }
    }

    async fn fetch_http(&self, source: &Source, url: &Url) -> Result<Fetched> {
        let failed = |e: reqwest::Error| Error::Fetch {
            source_id: source.id.clone(),
            url: url.to_string(),
            reason: describe(&e),
        };
        let response = self.client.get(url.clone()).send().await.map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::HttpStatus {
                source_id: source.id.clone(),
                url: url.to_string(),
                status: status.as_u16(),
                reason: status_reason(status).to_owned(),
            });
        }
        let final_url = response.url().clone();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(failed)?;
        Ok(Fetched {
            body,
            url: Some(final_url),
            content_type,
        })
    }
}

/// reqwest's top-level message is generic ("error sending request"); the cause says what happened.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "too many redirects"
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = e.source();
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

/// What an HTTP status means for someone running an aggregator.
fn status_reason(status: reqwest::StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "the server rejected the request as malformed",
        401 | 403 => "access denied; the feed may need credentials or blocks this client",
        404 => "not found; the feed may have moved",
        410 => "gone; the publisher removed this feed for good",
        429 => "too many requests; the server asks us to slow down",
        500..=599 => "the server failed; it may recover later",
        300..=399 => "a redirect without a usable location",
        _ => "unexpected status",
    }
}
