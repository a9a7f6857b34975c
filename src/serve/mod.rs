//! The daemon's HTTP server: the merged feed (and filtered ones) for feed readers, HTML pages for
//! people, health and metrics for monitoring.
//!
//! Feeds are answered with strong ETags and Last-Modified, so readers' revalidations cost a 304;
//! compression is negotiated. Every path from a request is checked to stay inside the archive.

mod pages;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::pipeline::{FeedFilter, feed_items};
use crate::publish::{atom, json_feed};
use crate::store::Store;

/// What the handlers share with the scheduler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Swapped on SIGHUP.
    pub settings: Arc<RwLock<Arc<Settings>>>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Scheduler cycles in a row in which every source fetched failed.
    pub failed_cycles: Arc<AtomicU32>,
}

impl AppState {
    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(
            &self
                .settings
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/atom.xml", get(atom_feed))
        .route("/feed.json", get(json_feed))
        .route("/tags/{tag}", get(tag_feed))
        .route("/sources/{id}", get(source_feed))
        .route("/articles/{*path}", get(pages::article))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

/// `Wed, 21 Oct 2015 07:28:00 GMT`.
fn http_date(at: &DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// A body with a strong ETag (of its bytes) and Last-Modified, or 304 when the client has it.
fn cacheable(
    request: &HeaderMap,
    content_type: &'static str,
    body: Vec<u8>,
    modified: DateTime<Utc>,
) -> Response {
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    let last_modified = http_date(&modified);
    let fresh = match request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        // Weak comparison: a `W/` prefix (added by compressing proxies) still matches.
        Some(tags) => tags
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag),
        None => request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::fetch::hints::parse_http_date)
            .is_some_and(|since| modified.timestamp() <= since.timestamp()),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&last_modified) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (headers, body).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}

fn newest(items: &[atom::FeedItem]) -> DateTime<Utc> {
    items
        .iter()
        .map(|i| i.updated.max(i.doc.date))
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The published feed file, as written by the last cycle.
async fn atom_feed(State(state): State<AppState>, request: HeaderMap) -> Response {
    let settings = state.settings();
    match std::fs::read(&settings.feed_path) {
        Ok(body) => {
            let modified = std::fs::metadata(&settings.feed_path)
                .and_then(|m| m.modified())
                .map(DateTime::<Utc>::from)
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
            cacheable(
                &request,
                "application/atom+xml; charset=utf-8",
                body,
                modified,
            )
        }
        Err(_) => filtered_atom(&state, &request, FeedFilter::All).await,
    }
}

async fn filtered_atom(state: &AppState, request: &HeaderMap, filter: FeedFilter<'_>) -> Response {
    let settings = state.settings();
    match feed_items(&settings, &state.store, filter).await {
        Ok(items) => {
            let body = atom::render(&settings.feed, &items);
            cacheable(
                request,
                "application/atom+xml; charset=utf-8",
                body,
                newest(&items),
            )
        }
        Err(e) => internal(e),
    }
}

/// `/tags/world.xml`, `/sources/ft.xml`.
fn feed_name(file: &str) -> Option<&str> {
    file.strip_suffix(".xml").filter(|name| !name.is_empty())
}

async fn tag_feed(
    State(state): State<AppState>,
    UrlPath(file): UrlPath<String>,
    request: HeaderMap,
) -> Response {
    match feed_name(&file) {
        Some(tag) => filtered_atom(&state, &request, FeedFilter::Tag(tag)).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn source_feed(
    State(state): State<AppState>,
    UrlPath(file): UrlPath<String>,
    request: HeaderMap,
) -> Response {
    let settings = state.settings();
    match feed_name(&file).filter(|id| settings.sources.iter().any(|s| s.id == *id)) {
        Some(id) => filtered_atom(&state, &request, FeedFilter::Source(id)).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn json_feed(State(state): State<AppState>, request: HeaderMap) -> Response {
    let settings = state.settings();
    match feed_items(&settings, &state.store, FeedFilter::All).await {
        Ok(items) => {
            let feed_url = settings.feed.self_url.rsplit_once('/').map_or_else(
                || "/feed.json".to_owned(),
                |(base, _)| format!("{base}/feed.json"),
            );
            let body = json_feed::render(&settings.feed, &feed_url, &items);
            cacheable(
                &request,
                "application/feed+json; charset=utf-8",
                body,
                newest(&items),
            )
        }
        Err(e) => internal(e),
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    let settings = state.settings();
    if !state.store.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "state database unusable\n").into_response();
    }
    let failed = state.failed_cycles.load(Ordering::Relaxed);
    if failed >= settings.serve.unhealthy_after_cycles {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("every source failed in the last {failed} cycles\n"),
        )
            .into_response();
    }
    "ok\n".into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let tokens = state
        .store
        .enrichment_totals()
        .await
        .map(|t| (t.prompt_tokens, t.completion_tokens))
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(tokens),
    )
        .into_response()
}
