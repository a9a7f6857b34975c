//! Getting bytes politely and safely: one shared HTTP client for `http(s)://` sources, the file
//! system for `file://` URLs and paths.
//!
//! Redirects are followed here, not inside reqwest, so every hop can be counted, checked for
//! loops, classified as permanent or not, and (for content-driven fetches) checked by the guard.
//! Bodies are streamed and counted after decompression, so neither a huge body nor a gzip bomb
//! can exhaust memory, and one deadline covers the whole exchange, so a server trickling one
//! byte a second cannot hold a fetch open. The body is returned as raw bytes, never decoded
//! text: the XML prolog names the encoding and the parser must see it as sent.

pub mod guard;
pub mod hints;
mod tls;
pub mod walls;

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::config::{FetchConfig, Location, Source};
use crate::error::{Error, FetchFailure, Result};
pub use hints::CacheHints;

pub use crate::model::Validators;

impl Validators {
    fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            etag: text(header::ETAG),
            last_modified: text(header::LAST_MODIFIED),
        }
    }
}

/// What an HTTP exchange said besides its body.
#[derive(Debug, Clone, Default)]
pub struct ResponseMeta {
    /// 200 for a body, 304 for not modified; `None` for local files.
    pub status: Option<u16>,
    pub validators: Validators,
    pub cache: CacheHints,
    /// The URL that answered, after redirects; the base for relative links.
    pub url: Option<Url>,
    /// Where the feed now lives when every redirect on the way was permanent (301, 308).
    pub moved_permanently_to: Option<Url>,
}

/// A fetched document.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Bytes,
    pub content_type: Option<String>,
    pub meta: ResponseMeta,
}

/// How a fetch ended when it did not fail.
#[derive(Debug, Clone)]
pub enum FetchOutcome {
    /// 304: nothing changed since the validators were issued.
    NotModified(ResponseMeta),
    Body(Fetched),
}

pub use crate::config::default_user_agent;

/// Fetches sources and content; clone it freely, clones share pools and limits.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// For sources the operator configured: may reach any address.
    sources: reqwest::Client,
    /// For addresses that feed content points at: non-public addresses are refused.
    content: reqwest::Client,
    policy: Arc<guard::AddressPolicy>,
    limits: Arc<Limits>,
    roots: Arc<tls::LazyRoots>,
}

#[derive(Debug)]
struct Limits {
    config: FetchConfig,
    in_flight: Arc<Semaphore>,
    per_host: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Who asks for a URL decides what it may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    Operator,
    Content,
}

struct Request<'a> {
    label: &'a str,
    url: &'a Url,
    trust: Trust,
    validators: &'a Validators,
    user_agent: Option<&'a str>,
    headers: &'a [(String, String)],
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Self> {
        let policy = Arc::new(guard::AddressPolicy::new(&config.allow_private));
        let roots = tls::LazyRoots::new();
        let tls = roots
            .client_config()
            .map_err(|e| client_error(format!("TLS: {e}")))?;
        let builder = || {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls.clone())
                .user_agent(config.user_agent.clone().unwrap_or_else(default_user_agent))
                .timeout(config.timeout)
                .connect_timeout(config.connect_timeout)
                .read_timeout(config.read_timeout)
                .redirect(reqwest::redirect::Policy::none())
        };
        let sources = builder().build().map_err(|e| client_error(e.to_string()))?;
        // No proxy for content: a proxy would resolve names itself, past the guard.
        let content = builder()
            .no_proxy()
            .dns_resolver(guard::GuardedResolver::new(Arc::clone(&policy)))
            .build()
            .map_err(|e| client_error(e.to_string()))?;
        Ok(Self {
            sources,
            content,
            policy,
            roots,
            limits: Arc::new(Limits {
                config: config.clone(),
                in_flight: Arc::new(Semaphore::new(config.concurrency)),
                per_host: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Fetches a source from `url` (its configured location, or where it has moved to),
    /// conditionally when `validators` are known.
    pub async fn fetch_source(
        &self,
        source: &Source,
        url: &Location,
        validators: &Validators,
    ) -> Result<FetchOutcome> {
        match url {
            Location::File(path) => {
                let body = tokio::fs::read(path).await.map_err(|e| Error::Fetch {
                    source_id: source.id.clone(),
                    url: path.display().to_string(),
                    kind: FetchFailure::File,
                    reason: e.to_string(),
                })?;
                if body.len() as u64 > self.limits.config.max_body {
                    return Err(Error::Fetch {
                        source_id: source.id.clone(),
                        url: path.display().to_string(),
                        kind: FetchFailure::TooLarge,
                        reason: format!(
                            "the file is larger than the {} byte limit",
                            self.limits.config.max_body
                        ),
                    });
                }
                Ok(FetchOutcome::Body(Fetched {
                    body: Bytes::from(body),
                    content_type: None,
                    meta: ResponseMeta {
                        url: Url::from_file_path(path).ok(),
                        ..ResponseMeta::default()
                    },
                }))
            }
            Location::Http(url) => {
                self.fetch_http(Request {
                    label: &source.id,
                    url,
                    trust: Trust::Operator,
                    validators,
                    user_agent: source.user_agent.as_deref(),
                    headers: &source.headers,
                })
                .await
            }
        }
    }

    /// Fetches a page of a source's history (RFC 5005) that its feed links to, conditionally
    /// when `validators` are known. On the feed's own origin it goes as the feed does (the
    /// source's headers, the operator's trust); elsewhere as content: through the address
    /// guard and without the source's headers, which may carry credentials. A feed read from
    /// a file may link to files; one on the web may not.
    pub async fn fetch_linked(
        &self,
        source: &Source,
        feed: &Location,
        page: &Location,
        validators: &Validators,
    ) -> Result<FetchOutcome> {
        match (feed, page) {
            (Location::File(_), Location::File(_)) => {
                self.fetch_source(source, page, validators).await
            }
            (Location::Http(feed), Location::Http(url)) if feed.origin() == url.origin() => {
                self.fetch_source(source, page, validators).await
            }
            (_, Location::Http(url)) => {
                self.fetch_http(Request {
                    label: &source.id,
                    url,
                    trust: Trust::Content,
                    validators,
                    user_agent: source.user_agent.as_deref(),
                    headers: &[],
                })
                .await
            }
            (Location::Http(_), Location::File(path)) => Err(Error::Fetch {
                source_id: source.id.clone(),
                url: path.display().to_string(),
                kind: FetchFailure::Refused,
                reason: "a feed on the web links to a local file; not read".to_owned(),
            }),
        }
    }

    /// Fetches a URL that feed content points at (an article page, an image): only http(s),
    /// only public addresses unless `fetch.allow_private` opens a range, checked on every hop.
    pub async fn fetch_content(&self, label: &str, url: &Url) -> Result<Fetched> {
        let outcome = self
            .fetch_http(Request {
                label,
                url,
                trust: Trust::Content,
                validators: &Validators::default(),
                user_agent: None,
                headers: &[],
            })
            .await?;
        match outcome {
            FetchOutcome::Body(fetched) => Ok(fetched),
            FetchOutcome::NotModified(_) => Err(Error::Fetch {
                source_id: label.to_owned(),
                url: url.to_string(),
                kind: FetchFailure::Protocol,
                reason: "answered 304 Not Modified to an unconditional request".to_owned(),
            }),
        }
    }

    async fn fetch_http(&self, request: Request<'_>) -> Result<FetchOutcome> {
        let deadline = self.limits.config.timeout;
        match tokio::time::timeout(deadline, self.exchange(&request)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Fetch {
                source_id: request.label.to_owned(),
                url: request.url.to_string(),
                kind: FetchFailure::Timeout,
                reason: format!(
                    "timed out: no complete response within {}",
                    humantime::format_duration(deadline)
                ),
            }),
        }
    }

    async fn exchange(&self, request: &Request<'_>) -> Result<FetchOutcome> {
        let config = &self.limits.config;
        let fail = |url: &Url, kind: FetchFailure, reason: String| Error::Fetch {
            source_id: request.label.to_owned(),
            url: url.to_string(),
            kind,
            reason,
        };
        let client = match request.trust {
            Trust::Operator => &self.sources,
            Trust::Content => &self.content,
        };
        let mut url = request.url.clone();
        let mut visited = vec![url.clone()];
        let mut all_permanent = true;
        let mut moved_permanently_to = None;
        loop {
            if request.trust == Trust::Content {
                guard::check_url(&url, &self.policy)
                    .map_err(|refusal| fail(&url, FetchFailure::Refused, refusal.to_string()))?;
            }
            if url.scheme() == "https" {
                self.roots.ready().await;
            }
            let _permits = self.acquire(&url).await;
            let response = self
                .build(client, request, &url)
                .send()
                .await
                .map_err(|e| fail(&url, failure_of(&e), describe(&e)))?;
            let status = response.status();

            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let next = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|location| url.join(location.trim()).ok())
                    .ok_or_else(|| {
                        fail(
                            &url,
                            FetchFailure::Redirect,
                            format!("HTTP {status} without a usable Location header"),
                        )
                    })?;
                if visited.contains(&next) {
                    return Err(fail(
                        request.url,
                        FetchFailure::Redirect,
                        format!("redirect loop: {next} was already visited"),
                    ));
                }
                if visited.len() > config.max_redirects {
                    return Err(fail(
                        request.url,
                        FetchFailure::Redirect,
                        format!("too many redirects (more than {})", config.max_redirects),
                    ));
                }
                let permanent = matches!(
                    status,
                    StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
                );
                all_permanent &= permanent;
                if all_permanent {
                    moved_permanently_to = Some(next.clone());
                }
                visited.push(next.clone());
                url = next;
                continue;
            }

            let meta = ResponseMeta {
                status: Some(status.as_u16()),
                validators: Validators::from_headers(response.headers()),
                cache: CacheHints::from_headers(response.headers()),
                url: Some(url.clone()),
                moved_permanently_to: moved_permanently_to.clone(),
            };
            if status == StatusCode::NOT_MODIFIED {
                return Ok(FetchOutcome::NotModified(meta));
            }
            if !status.is_success() {
                let retry_after = hints::retry_after(response.headers(), Utc::now());
                let wall = match walls::in_headers(response.headers()) {
                    Some(wall) => Some(wall),
                    // The statuses walls answer with: their page says whose it is.
                    None if matches!(status.as_u16(), 403 | 429 | 503) => {
                        walls::in_page(&page_prefix(response).await)
                    }
                    None => None,
                };
                if let Some(wall) = wall {
                    return Err(Error::BotWall {
                        source_id: request.label.to_owned(),
                        url: url.to_string(),
                        wall: wall.to_string(),
                        status: Some(status.as_u16()),
                        hint: walls::HINT,
                        retry_after,
                    });
                }
                return Err(Error::HttpStatus {
                    source_id: request.label.to_owned(),
                    url: url.to_string(),
                    status: status.as_u16(),
                    reason: status_reason(status).to_owned(),
                    retry_after,
                });
            }
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = read_body(response, config.max_body)
                .await
                .map_err(|e| fail(&url, e.failure(), e.to_string()))?;
            return Ok(FetchOutcome::Body(Fetched {
                body,
                content_type,
                meta,
            }));
        }
    }

    fn build(
        &self,
        client: &reqwest::Client,
        request: &Request<'_>,
        url: &Url,
    ) -> reqwest::RequestBuilder {
        let mut builder = client.get(url.clone());
        if let Some(agent) = request.user_agent {
            builder = builder.header(header::USER_AGENT, agent);
        }
        for (name, value) in request.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                builder = builder.header(name, value);
            }
        }
        if let Some(etag) = &request.validators.etag {
            builder = builder.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &request.validators.last_modified {
            builder = builder.header(header::IF_MODIFIED_SINCE, modified);
        }
        builder
    }

    /// One permit of the overall budget and one of the host's.
    async fn acquire(
        &self,
        url: &Url,
    ) -> (Option<OwnedSemaphorePermit>, Option<OwnedSemaphorePermit>) {
        let host = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        let host_limit = {
            let mut map = self
                .limits
                .per_host
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(
                map.entry(host)
                    .or_insert_with(|| Arc::new(Semaphore::new(self.limits.config.per_host))),
            )
        };
        let overall = Arc::clone(&self.limits.in_flight)
            .acquire_owned()
            .await
            .ok();
        let host = host_limit.acquire_owned().await.ok();
        (overall, host)
    }
}

fn client_error(reason: String) -> Error {
    Error::Client(reason)
}

/// Why a response body was not taken.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the body of {length} bytes is larger than the {max} byte limit")]
    Declared { length: u64, max: u64 },
    #[error("the body is larger than the {max} byte limit (counted after decompression)")]
    TooLarge { max: u64 },
    /// The connection or the decoder failed; the text is [`describe`]'s.
    #[error("{0}")]
    Read(String),
}

impl BodyError {
    fn failure(&self) -> FetchFailure {
        match self {
            BodyError::Declared { .. } | BodyError::TooLarge { .. } => FetchFailure::TooLarge,
            BodyError::Read(_) => FetchFailure::Body,
        }
    }
}

/// The kind of a failed request, for the back-off rule and `status`.
fn failure_of(e: &reqwest::Error) -> FetchFailure {
    if e.is_timeout() {
        FetchFailure::Timeout
    } else if e.is_connect() {
        FetchFailure::Connect
    } else if e.is_body() || e.is_decode() {
        FetchFailure::Body
    } else if e.is_redirect() {
        FetchFailure::Redirect
    } else {
        FetchFailure::Other
    }
}

/// Streams the body, refusing it as soon as it is known to exceed `max` bytes (decoded).
async fn read_body(response: reqwest::Response, max: u64) -> std::result::Result<Bytes, BodyError> {
    let declared = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&l| l > max) {
        return Err(BodyError::Declared { length, max });
    }
    let capacity = declared.unwrap_or(64 * 1024).min(max) as usize;
    let mut body = BytesMut::with_capacity(capacity);
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(describe(&e)))?;
        if body.len() as u64 + chunk.len() as u64 > max {
            return Err(BodyError::TooLarge { max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// reqwest's top-level message is generic ("error sending request"); the cause says what happened.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
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
/// The first [`walls::PAGE_PREFIX`] bytes of an error response's body (less when it breaks
/// off: what came is enough to look at).
async fn page_prefix(mut response: reqwest::Response) -> Vec<u8> {
    let mut prefix = Vec::new();
    while prefix.len() < walls::PAGE_PREFIX {
        match response.chunk().await {
            Ok(Some(chunk)) => prefix.extend_from_slice(&chunk),
            _ => break,
        }
    }
    prefix
}

fn status_reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "the server rejected the request as malformed",
        401 | 403 => "access denied; the feed may need credentials or blocks this client",
        404 => "not found; the feed may have moved",
        410 => "gone; the publisher removed this feed for good, so the source is disabled",
        429 => "too many requests; the server asks us to slow down",
        503 => "the service is unavailable; it may recover later",
        500..=599 => "the server failed; it may recover later",
        _ => "unexpected status",
    }
}
