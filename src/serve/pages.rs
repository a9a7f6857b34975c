//! HTML for people: the reader pages of [`crate::publish::site`] (index, tags, sources, months,
//! articles, search), each article's Markdown file, the stylesheet, and error pages with a body
//! and a way back. Rendered from state, cached until a commit changes what they show.

use std::path::{Component, Path};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::cache::Rendered;
use super::{AppState, cacheable};
use crate::error::Result;
use crate::publish::archive;
use crate::publish::site::{Links, Page, Site};

const HTML: &str = "text/html; charset=utf-8";

/// The templates of the settings in force, loaded again when SIGHUP replaced them.
fn site(state: &AppState) -> Result<Arc<Site>> {
    let settings = state.settings();
    let mut loaded = state
        .site
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let current = Arc::as_ptr(&settings) as usize;
    if let Some((for_settings, site)) = loaded.as_ref()
        && *for_settings == current
    {
        return Ok(Arc::clone(site));
    }
    let site = Arc::new(Site::load(&settings)?);
    *loaded = Some((current, Arc::clone(&site)));
    Ok(site)
}

/// A reader page, from the cache or rendered; the 404 page when there is no such page.
async fn page(state: &AppState, request: &HeaderMap, page: Page) -> Response {
    let settings = state.settings();
    let site = match site(state) {
        Ok(site) => site,
        Err(e) => return error_page(state, StatusCode::INTERNAL_SERVER_ERROR, Some(&e)),
    };
    let key = format!("page:{page:?}");
    let rendered = state
        .cache
        .get_or_render(&state.store, &settings, key, || async {
            let html = site
                .render(&settings, &state.store, &page, &Links::server())
                .await?;
            // What a page shows changes with every commit; it is as new as the state.
            Ok(html.map(|html| Rendered::new(HTML, html.into_bytes(), Utc::now())))
        })
        .await;
    match rendered {
        Ok(Some(rendered)) => cacheable(request, &rendered),
        Ok(None) => error_page(state, StatusCode::NOT_FOUND, None),
        Err(e) => error_page(state, StatusCode::INTERNAL_SERVER_ERROR, Some(&e)),
    }
}

/// The error page for `status`, with its body; plain text when even that cannot be made.
pub(super) fn error_page(
    state: &AppState,
    status: StatusCode,
    cause: Option<&dyn std::fmt::Display>,
) -> Response {
    if let Some(cause) = cause {
        tracing::warn!(error = %cause, "request failed");
    }
    let settings = state.settings();
    match site(state).and_then(|site| site.error(&settings, &Links::server(), status.as_u16())) {
        Ok(html) => (status, [(header::CONTENT_TYPE, HTML)], html).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "the error page could not be made");
            (status, "error\n").into_response()
        }
    }
}

/// Any address no route answers.
pub(super) async fn not_found(State(state): State<AppState>) -> Response {
    error_page(&state, StatusCode::NOT_FOUND, None)
}

pub(super) async fn index(State(state): State<AppState>, request: HeaderMap) -> Response {
    page(&state, &request, Page::Index(1)).await
}

pub(super) async fn index_page(
    State(state): State<AppState>,
    UrlPath(n): UrlPath<usize>,
    request: HeaderMap,
) -> Response {
    page(&state, &request, Page::Index(n)).await
}

pub(super) async fn tags(State(state): State<AppState>, request: HeaderMap) -> Response {
    page(&state, &request, Page::Tags).await
}

pub(super) async fn tag(
    State(state): State<AppState>,
    UrlPath(tag): UrlPath<String>,
    request: HeaderMap,
) -> Response {
    page(&state, &request, Page::Tag(tag, 1)).await
}

pub(super) async fn tag_page(
    State(state): State<AppState>,
    UrlPath((tag, n)): UrlPath<(String, usize)>,
    request: HeaderMap,
) -> Response {
    page(&state, &request, Page::Tag(tag, n)).await
}

pub(super) async fn sources(State(state): State<AppState>, request: HeaderMap) -> Response {
    page(&state, &request, Page::Sources).await
}

pub(super) async fn source(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    request: HeaderMap,
) -> Response {
    page(&state, &request, Page::Source(id, 1)).await
}

pub(super) async fn source_page(
    State(state): State<AppState>,
    UrlPath((id, n)): UrlPath<(String, usize)>,
    request: HeaderMap,
) -> Response {
    page(&state, &request, Page::Source(id, n)).await
}

pub(super) async fn months(State(state): State<AppState>, request: HeaderMap) -> Response {
    page(&state, &request, Page::Months).await
}

pub(super) async fn month(
    State(state): State<AppState>,
    UrlPath((year, month)): UrlPath<(i32, u32)>,
    request: HeaderMap,
) -> Response {
    page(&state, &request, Page::Month(year, month, 1)).await
}

pub(super) async fn month_page(
    State(state): State<AppState>,
    UrlPath((year, month, n)): UrlPath<(i32, u32, usize)>,
    request: HeaderMap,
) -> Response {
    page(&state, &request, Page::Month(year, month, n)).await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<usize>,
}

pub(super) async fn search(
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
    request: HeaderMap,
) -> Response {
    let asked = Page::Search(query.q, query.page.unwrap_or(1).max(1));
    page(&state, &request, asked).await
}

pub(super) async fn style(State(state): State<AppState>) -> Response {
    match site(&state) {
        Ok(site) => (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            site.style().to_owned(),
        )
            .into_response(),
        Err(e) => error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, Some(&e)),
    }
}

/// Whether a request path can name an archived article: relative, no `..`, nothing hidden.
fn plain_relative(requested: &str) -> bool {
    let path = Path::new(requested);
    path.components().next().is_some()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(n) if !n.to_string_lossy().starts_with('.')))
}

/// `/articles/PATH.html`, the article's page; `/articles/PATH.md`, its file as archived.
pub(super) async fn article(
    State(state): State<AppState>,
    UrlPath(path): UrlPath<String>,
    request: HeaderMap,
) -> Response {
    let (markdown_path, raw) = match (path.strip_suffix(".html"), path.ends_with(".md")) {
        (Some(stem), _) => (format!("{stem}.md"), false),
        (None, true) => (path.clone(), true),
        _ => return error_page(&state, StatusCode::NOT_FOUND, None),
    };
    if !plain_relative(&markdown_path) {
        return error_page(&state, StatusCode::NOT_FOUND, None);
    }
    if !raw {
        return page(&state, &request, Page::Article(markdown_path)).await;
    }
    let settings = state.settings();
    let key = format!("md:{markdown_path}");
    let rendered = state
        .cache
        .get_or_render(&state.store, &settings, key, || async {
            let Some(record) = state.store.record_by_path(&markdown_path).await? else {
                return Ok(None);
            };
            let modified = record.updated_at.max(record.doc.date);
            let text = archive::render_article(&settings, record.guid.as_deref(), &record.doc);
            Ok(Some(Rendered::new(
                "text/markdown; charset=utf-8",
                text.into_bytes(),
                modified,
            )))
        })
        .await;
    match rendered {
        Ok(Some(rendered)) => cacheable(&request, &rendered),
        Ok(None) => error_page(&state, StatusCode::NOT_FOUND, None),
        Err(e) => error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, Some(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_cannot_leave_the_archive() {
        assert!(plain_relative("ft/a.md"));
        assert!(!plain_relative("../secret.md"));
        assert!(!plain_relative("/etc/passwd"));
        assert!(!plain_relative("ft/../../secret.md"));
        assert!(!plain_relative("ft/.hidden.md"));
        assert!(!plain_relative(""));
    }
}
