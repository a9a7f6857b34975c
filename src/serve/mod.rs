//! The daemon's HTTP server: the merged feed (and filtered ones) for feed readers, HTML pages for
//! people, health and metrics for monitoring.
//!
//! Everything is built from the state database, never from the archive files, and rendered
//! bytes are cached until a commit (by this process or a `gazette fetch` beside it) changes
//! what they show. Feeds are answered with strong ETags and Last-Modified, so readers'
//! revalidations cost a 304; compression is negotiated.

mod cache;
pub mod connections;
mod pages;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Datelike, Utc};

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::publish::atom;
use crate::publish::feeds::{self, Feed};
use crate::store::Store;
pub use cache::RenderCache;
use cache::Rendered;

/// The reader pages' templates, and the address of the settings they were loaded for.
pub type LoadedSite = (usize, Arc<crate::publish::site::Site>);

/// What the handlers share with the scheduler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Swapped on SIGHUP.
    pub settings: Arc<RwLock<Arc<Settings>>>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Scheduler cycles in a row in which every source fetched failed.
    pub failed_cycles: Arc<AtomicU32>,
    pub cache: Arc<RenderCache>,
    /// The reader pages' templates, and the settings (by address) they were loaded for.
    pub site: Arc<std::sync::Mutex<Option<LoadedSite>>>,
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
        .route("/page/{n}/", get(pages::index_page))
        .route("/style.css", get(pages::style))
        .route("/search", get(pages::search))
        .route("/atom.xml", get(atom_feed))
        .route("/feed.json", get(json_feed))
        .route("/tags/", get(pages::tags))
        .route("/tags/{tag}", get(tag_feed))
        .route("/tags/{tag}/", get(pages::tag))
        .route("/tags/{tag}/page/{n}/", get(pages::tag_page))
        .route("/sources/", get(pages::sources))
        .route("/sources/{id}", get(source_feed))
        .route("/sources/{id}/", get(pages::source))
        .route("/sources/{id}/page/{n}/", get(pages::source_page))
        .route("/archive/", get(pages::months))
        .route("/archive/{year}/{month}/", get(pages::month))
        .route("/archive/{year}/{month}/page/{n}/", get(pages::month_page))
        .route("/articles/{*path}", get(pages::article))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(pages::not_found)
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

/// `Wed, 21 Oct 2015 07:28:00 GMT`; `None` outside the years 1970 to 9999, which an HTTP date
/// cannot express (and `httpdate` would panic on).
fn http_date(at: &DateTime<Utc>) -> Option<String> {
    (1970..=9999)
        .contains(&at.year())
        .then(|| httpdate::fmt_http_date((*at).into()))
}

/// A request's `If-Modified-Since`, in any of the forms HTTP allows.
fn parse_http_date(text: &str) -> Option<DateTime<Utc>> {
    httpdate::parse_http_date(text).ok().map(DateTime::from)
}

/// A rendered body with its strong ETag and Last-Modified, or 304 when the client has it.
fn cacheable(request: &HeaderMap, rendered: &Rendered) -> Response {
    let fresh = match request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        // Weak comparison: a `W/` prefix (added by compressing proxies) still matches.
        Some(tags) => tags
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == rendered.etag),
        None => request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
            .is_some_and(|since| rendered.modified.timestamp() <= since.timestamp()),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&rendered.etag) {
        headers.insert(header::ETAG, value);
    }
    if let Some(Ok(value)) = http_date(&rendered.modified).map(|d| HeaderValue::from_str(&d)) {
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
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(rendered.content_type),
    );
    (headers, rendered.body.clone()).into_response()
}

/// A cached or rendered response; the 404 page when there is nothing to render.
fn respond(
    state: &AppState,
    request: &HeaderMap,
    rendered: crate::error::Result<Option<Arc<Rendered>>>,
) -> Response {
    match rendered {
        Ok(Some(rendered)) => cacheable(request, &rendered),
        Ok(None) => pages::error_page(state, StatusCode::NOT_FOUND, None),
        Err(e) => pages::error_page(state, StatusCode::INTERNAL_SERVER_ERROR, Some(&e)),
    }
}

fn newest(items: &[atom::FeedItem]) -> DateTime<Utc> {
    items
        .iter()
        .map(|i| i.updated.max(i.doc.date))
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

const ATOM: &str = "application/atom+xml; charset=utf-8";

/// A feed, from the cache or rendered from state.
async fn atom_response(state: &AppState, request: &HeaderMap, feed: Feed<'_>) -> Response {
    let settings = state.settings();
    let key = format!("{feed:?}");
    let rendered = state
        .cache
        .get_or_render(&state.store, &settings, key, || async {
            let (body, items) = feeds::atom(&settings, &state.store, feed).await?;
            // A tag no live article carries is unknown, like an unknown source.
            if matches!(feed, Feed::Tag(_)) && items.is_empty() {
                return Ok(None);
            }
            Ok(Some(Rendered::new(ATOM, body, newest(&items))))
        })
        .await;
    respond(state, request, rendered)
}

async fn atom_feed(State(state): State<AppState>, request: HeaderMap) -> Response {
    atom_response(&state, &request, Feed::Merged).await
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
        Some(tag) => atom_response(&state, &request, Feed::Tag(tag)).await,
        None => pages::error_page(&state, StatusCode::NOT_FOUND, None),
    }
}

async fn source_feed(
    State(state): State<AppState>,
    UrlPath(file): UrlPath<String>,
    request: HeaderMap,
) -> Response {
    let settings = state.settings();
    match feed_name(&file).filter(|id| settings.sources.iter().any(|s| s.id == *id)) {
        Some(id) => atom_response(&state, &request, Feed::Source(id)).await,
        None => pages::error_page(&state, StatusCode::NOT_FOUND, None),
    }
}

async fn json_feed(State(state): State<AppState>, request: HeaderMap) -> Response {
    let settings = state.settings();
    let rendered = state
        .cache
        .get_or_render(&state.store, &settings, "json".to_owned(), || async {
            let items = feeds::items(&settings, &state.store, Feed::Merged).await?;
            let body = feeds::render_json(&settings.feed, &items);
            Ok(Some(Rendered::new(
                "application/feed+json; charset=utf-8",
                body,
                newest(&items),
            )))
        })
        .await;
    respond(&state, &request, rendered)
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
    let tokens = state.store.token_totals().await.unwrap_or_default();
    let now = Utc::now();
    let queue = state.store.queue(&now).await.unwrap_or_default();
    let processes = state.store.workers(&now).await.map_or(0, |w| w.len());
    let spend = state.store.token_spend(&now).await.unwrap_or_default();
    let enrich = &state.settings().enrich;
    let shared = crate::metrics::Shared {
        tokens_today: spend.today,
        tokens_this_month: spend.this_month,
        daily_budget: enrich.daily_token_budget,
        monthly_budget: enrich.monthly_token_budget,
        due: queue.due,
        leased: queue.leased,
        pending_enrichments: queue.pending_enrichments,
        processes: i64::try_from(processes).unwrap_or(i64::MAX),
        unrendered: queue.unrendered,
    };
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(tokens, shared),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_modified_is_an_imf_fixdate_within_what_http_can_say() {
        let at = DateTime::from_timestamp(1_445_412_480, 500_000_000).expect("timestamp");
        assert_eq!(
            http_date(&at).as_deref(),
            Some("Wed, 21 Oct 2015 07:28:00 GMT")
        );
        let before_1970 = DateTime::from_timestamp(-1, 0).expect("timestamp");
        assert_eq!(http_date(&before_1970), None);
        let after_9999 = DateTime::from_timestamp(253_402_300_800, 0).expect("timestamp");
        assert_eq!(http_date(&after_9999), None);
    }

    #[test]
    fn if_modified_since_reads_every_http_date_form() {
        let at = DateTime::from_timestamp(784_111_777, 0).expect("timestamp");
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(form), Some(at), "{form:?}");
        }
        assert_eq!(parse_http_date("not a date"), None);
    }
}
