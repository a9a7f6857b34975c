//! HTML for people: the newest articles, and each archived article as a page (or as its
//! Markdown file), all from state. No JavaScript; the feeds are announced with
//! `<link rel="alternate">`.

use std::fmt::Write as _;
use std::path::{Component, Path};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cache::Rendered;
use super::{AppState, respond};
use crate::config::Settings;
use crate::format::format_date;
use crate::publish::archive;
use crate::publish::atom::content_html;
use crate::publish::feeds::{self, Feed};

const HTML: &str = "text/html; charset=utf-8";

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(settings: &Settings, title: &str, main: &str) -> Vec<u8> {
    let mut html = String::with_capacity(main.len() + 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <link rel=\"alternate\" type=\"application/atom+xml\" title=\"{feed} (Atom)\" href=\"/atom.xml\">\n\
         <link rel=\"alternate\" type=\"application/feed+json\" title=\"{feed} (JSON Feed)\" href=\"/feed.json\">\n\
         <style>body{{max-width:46rem;margin:2rem auto;padding:0 1rem;font-family:system-ui,sans-serif;line-height:1.5}}\
         article{{margin-bottom:1.5rem}}.meta{{color:#555;font-size:.9rem}}.tag{{margin-right:.4rem}}</style>\n\
         </head>\n<body>\n<header><a href=\"/\">{feed}</a> · <a href=\"/atom.xml\">Atom</a> · <a href=\"/feed.json\">JSON Feed</a></header>\n\
         <main>\n{main}</main>\n</body>\n</html>\n",
        escape(title),
        feed = escape(&settings.feed.title),
    );
    html.into_bytes()
}

/// The archive file's page address: `ft/2024/05/13/slug.md` -> `/articles/ft/2024/05/13/slug.html`.
fn page_url(path: &str) -> String {
    let stem = path.strip_suffix(".md").unwrap_or(path);
    let encoded: Vec<String> = stem
        .split('/')
        .map(|part| {
            url::form_urlencoded::byte_serialize(part.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        })
        .collect();
    format!("/articles/{}.html", encoded.join("/"))
}

pub(super) async fn index(State(state): State<AppState>, request: HeaderMap) -> Response {
    let settings = state.settings();
    let rendered = state
        .cache
        .get_or_render(&state.store, &settings, "index".to_owned(), || async {
            let items = feeds::items(&settings, &state.store, Feed::Merged).await?;
            Ok(Some(Rendered::new(
                HTML,
                index_html(&settings, &items),
                super::newest(&items),
            )))
        })
        .await;
    respond(&request, rendered)
}

fn index_html(settings: &Settings, items: &[crate::publish::atom::FeedItem]) -> Vec<u8> {
    let mut main = format!("<h1>{}</h1>\n", escape(&settings.feed.title));
    if items.is_empty() {
        main.push_str("<p>Nothing archived yet.</p>\n");
    }
    for item in items {
        let doc = &item.doc;
        let tags: String = doc
            .tags
            .iter()
            .map(|t| {
                format!(
                    "<a class=\"tag\" href=\"/tags/{}.xml\">#{}</a>",
                    escape(&urlencode(t)),
                    escape(t)
                )
            })
            .collect();
        let _ = write!(
            main,
            "<article>\n<h2><a href=\"{href}\">{title}</a></h2>\n\
             <p class=\"meta\"><a href=\"/sources/{source_key}.xml\">{source}</a> · <time datetime=\"{date}\">{date}</time> {tags}</p>\n\
             <p>{description}</p>\n</article>\n",
            href = escape(&page_url(&item.path)),
            title = escape(doc.title()),
            source_key = escape(&item.source.key),
            source = escape(&item.source.title),
            date = format_date(&doc.date),
            description = escape(&doc.description),
        );
    }
    page(settings, &settings.feed.title, &main)
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Whether a request path can name an archived article: relative, no `..`, nothing hidden.
fn plain_relative(requested: &str) -> bool {
    let path = Path::new(requested);
    path.components().next().is_some()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(n) if !n.to_string_lossy().starts_with('.')))
}

pub(super) async fn article(
    State(state): State<AppState>,
    UrlPath(path): UrlPath<String>,
    request: HeaderMap,
) -> Response {
    let settings = state.settings();
    let (markdown_path, raw) = match (path.strip_suffix(".html"), path.ends_with(".md")) {
        (Some(stem), _) => (format!("{stem}.md"), false),
        (None, true) => (path.clone(), true),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if !plain_relative(&markdown_path) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let key = format!("{}:{markdown_path}", if raw { "md" } else { "page" });
    let rendered = state
        .cache
        .get_or_render(&state.store, &settings, key, || async {
            let Some(record) = state.store.record_by_path(&markdown_path).await? else {
                return Ok(None);
            };
            let modified = record.updated_at.max(record.doc.date);
            let rendered = if raw {
                let text = archive::render_article(&settings, record.guid.as_deref(), &record.doc);
                Rendered::new("text/markdown; charset=utf-8", text.into_bytes(), modified)
            } else {
                Rendered::new(
                    HTML,
                    article_html(&settings, &record, &markdown_path),
                    modified,
                )
            };
            Ok(Some(rendered))
        })
        .await;
    respond(&request, rendered)
}

fn article_html(
    settings: &Settings,
    record: &crate::store::ArticleRecord,
    markdown_path: &str,
) -> Vec<u8> {
    let doc = &record.doc;
    let (bylines, enclosures) = (&record.bylines, &record.enclosures);
    let author = if bylines.is_empty() {
        escape(&doc.author)
    } else {
        bylines
            .iter()
            .map(|b| match &b.uri {
                Some(uri) => format!(
                    "<a rel=\"author\" href=\"{}\">{}</a>",
                    escape(uri),
                    escape(&b.name)
                ),
                None => escape(&b.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut main = String::new();
    let _ = write!(
        main,
        "<article>\n<h1>{title}</h1>\n<p class=\"meta\"><time datetime=\"{date}\">{date}</time> · <span class=\"byline\">{author}</span> · \
         <a href=\"{link}\">original</a> · <a href=\"/articles/{raw}\">Markdown</a></p>\n",
        title = escape(doc.title()),
        date = format_date(&doc.date),
        link = escape(&doc.link),
        raw = escape(markdown_path),
    );
    main.push_str(&content_html(doc));
    if !enclosures.is_empty() {
        main.push_str("<ul class=\"enclosures\">\n");
        for e in enclosures {
            let _ = writeln!(
                main,
                "<li><a href=\"{url}\">{name}</a>{kind}</li>",
                url = escape(&e.url),
                name = escape(
                    e.url
                        .rsplit('/')
                        .next()
                        .filter(|file| !file.is_empty())
                        .unwrap_or(&e.url)
                ),
                kind = e
                    .media_type
                    .as_deref()
                    .map(|t| format!(" ({})", escape(t)))
                    .unwrap_or_default(),
            );
        }
        main.push_str("</ul>\n");
    }
    main.push_str("</article>\n");
    page(settings, doc.title(), &main)
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
        assert_eq!(page_url("ft/2024/a b.md"), "/articles/ft/2024/a%20b.html");
    }
}
