//! HTML for people: the newest articles, and each archived file as a page (or as raw Markdown).
//! No JavaScript; the feeds are announced with `<link rel="alternate">`.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, internal};
use crate::config::Settings;
use crate::pipeline::{FeedFilter, feed_items};
use crate::publish::archive::{self, format_date};
use crate::publish::atom::content_html;

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

fn page(settings: &Settings, title: &str, main: &str) -> Response {
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
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
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

pub(super) async fn index(State(state): State<AppState>) -> Response {
    let settings = state.settings();
    let items = match feed_items(&settings, &state.store, FeedFilter::All).await {
        Ok(items) => items,
        Err(e) => return internal(e),
    };
    let mut main = format!("<h1>{}</h1>\n", escape(&settings.feed.title));
    if items.is_empty() {
        main.push_str("<p>Nothing archived yet.</p>\n");
    }
    for item in &items {
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
    page(&settings, &settings.feed.title, &main)
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The file below the archive folder a request path names, if it names one that exists there.
fn archived_file(archive_dir: &Path, requested: &str) -> Option<PathBuf> {
    let relative = Path::new(requested);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let root = archive_dir.canonicalize().ok()?;
    let file = root.join(relative).canonicalize().ok()?;
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

pub(super) async fn article(
    State(state): State<AppState>,
    UrlPath(path): UrlPath<String>,
) -> Response {
    let settings = state.settings();
    let (markdown_path, raw) = match (path.strip_suffix(".html"), path.ends_with(".md")) {
        (Some(stem), _) => (format!("{stem}.md"), false),
        (None, true) => (path.clone(), true),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let Some(file) = archived_file(&settings.archive_dir, &markdown_path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) => return internal(e),
    };
    if raw {
        return (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            text,
        )
            .into_response();
    }
    let doc = match archive::read(&text, &settings.labels, &[]) {
        Ok(doc) => doc,
        Err(e) => return internal(e),
    };
    // Without state (or before it knows the file) the page still shows, with the source's key.
    let (bylines, enclosures) = state
        .store
        .attachments_of(&markdown_path)
        .await
        .unwrap_or_default();
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
        raw = escape(&markdown_path),
    );
    main.push_str(&content_html(&doc));
    if !enclosures.is_empty() {
        main.push_str("<ul class=\"enclosures\">\n");
        for e in &enclosures {
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
    page(&settings, doc.title(), &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_cannot_leave_the_archive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = dir.path().join("archive");
        std::fs::create_dir_all(archive.join("ft")).expect("dirs");
        std::fs::write(archive.join("ft/a.md"), "x").expect("file");
        std::fs::write(dir.path().join("secret.md"), "x").expect("secret");
        assert!(archived_file(&archive, "ft/a.md").is_some());
        assert!(archived_file(&archive, "../secret.md").is_none());
        assert!(archived_file(&archive, "/etc/passwd").is_none());
        assert!(archived_file(&archive, "ft/../../secret.md").is_none());
        assert!(archived_file(&archive, "ft/missing.md").is_none());
        assert_eq!(page_url("ft/2024/a b.md"), "/articles/ft/2024/a%20b.html");
    }
}
