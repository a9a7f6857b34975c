//! Feed-reader habits: OPML import and export of the sources, and discovery of a web page's feed.

use std::fmt::Write as _;

use url::Url;

pub use crate::config::edit::FoundFeed;
use crate::config::{Location, Source};

/// The feeds of an OPML document (any version), with the folders they sit in as tags.
pub fn parse(text: &str) -> Result<Vec<FoundFeed>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not an OPML document: {e}"))?;
    let root = doc.root_element();
    if !root.has_tag_name("opml") {
        return Err(format!(
            "not an OPML document: the root element is <{}>",
            root.tag_name().name()
        ));
    }
    let Some(body) = root.children().find(|n| n.has_tag_name("body")) else {
        return Err("the OPML document has no <body>".to_owned());
    };
    let mut feeds = Vec::new();
    collect(body, &mut Vec::new(), &mut feeds);
    Ok(feeds)
}

fn collect(node: roxmltree::Node<'_, '_>, folders: &mut Vec<String>, out: &mut Vec<FoundFeed>) {
    for outline in node.children().filter(|n| n.has_tag_name("outline")) {
        let text = outline
            .attribute("title")
            .filter(|t| !t.trim().is_empty())
            .or_else(|| outline.attribute("text"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        match outline
            .attribute("xmlUrl")
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            Some(url) => {
                let mut tags = folders.clone();
                tags.extend(
                    outline
                        .attribute("category")
                        .unwrap_or_default()
                        .split(',')
                        .map(|c| c.trim().trim_start_matches('/').to_owned())
                        .filter(|c| !c.is_empty()),
                );
                out.push(FoundFeed {
                    title: text,
                    url: url.to_owned(),
                    tags: crate::normalize::normalize_tags(tags.iter().map(String::as_str)),
                    id: outline.attribute("gazetteId").map(str::to_owned),
                });
            }
            None => {
                folders.push(text);
                collect(outline, folders, out);
                folders.pop();
            }
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// OPML 2.0 of the sources; tags go into the `category` attribute.
/// What state knows of a source's feed, for the export: its own title and its site's address.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub title: Option<String>,
    pub site: Option<String>,
}

/// OPML 2.0 of `sources`, each named by its feed's own title (its id when state has none) and
/// linked to its site, so that another reader shows names; `gazetteId` keeps the id for a
/// round trip.
pub fn export(
    title: &str,
    sources: &[Source],
    known: &std::collections::HashMap<String, Known>,
) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n  <head>\n",
    );
    let _ = writeln!(out, "    <title>{}</title>", escape(title));
    out.push_str("  </head>\n  <body>\n");
    for source in sources {
        let url = match &source.location {
            Location::Http(url) => url.to_string(),
            Location::File(path) => Url::from_file_path(path)
                .map_or_else(|()| path.display().to_string(), |u| u.to_string()),
        };
        let category: Vec<String> = source.tags.iter().map(|t| format!("/{t}")).collect();
        let feed = known.get(&source.id);
        let name = feed
            .and_then(|k| k.title.as_deref())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(&source.id);
        let _ = write!(
            out,
            "    <outline type=\"rss\" text=\"{name}\" title=\"{name}\" xmlUrl=\"{url}\"",
            name = escape(name),
            url = escape(&url),
        );
        if let Some(site) = feed.and_then(|k| k.site.as_deref()) {
            let _ = write!(out, " htmlUrl=\"{}\"", escape(site));
        }
        let _ = write!(out, " gazetteId=\"{}\"", escape(&source.id));
        if !category.is_empty() {
            let _ = write!(out, " category=\"{}\"", escape(&category.join(",")));
        }
        out.push_str("/>\n");
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

const FEED_TYPES: &[&str] = &[
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
];

/// The feeds a web page announces with `<link rel="alternate" type="...">`, absolute.
pub fn discover(html: &str, page: &Url) -> Vec<FoundFeed> {
    let document = scraper::Html::parse_document(html);
    let Ok(selector) = scraper::Selector::parse("link[rel][href]") else {
        return Vec::new();
    };
    document
        .select(&selector)
        .filter_map(|link| {
            let element = link.value();
            let rel = element.attr("rel")?.to_ascii_lowercase();
            let kind = element
                .attr("type")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let kind = kind.split(';').next().unwrap_or_default().trim().to_owned();
            if !rel.split_whitespace().any(|r| r == "alternate")
                || !FEED_TYPES.contains(&kind.as_str())
            {
                return None;
            }
            let url = page.join(element.attr("href")?.trim()).ok()?;
            // A page may only point at web feeds, never at local files or other schemes.
            if !matches!(url.scheme(), "http" | "https") {
                return None;
            }
            Some(FoundFeed {
                title: element.attr("title").unwrap_or_default().trim().to_owned(),
                url: url.to_string(),
                tags: Vec::new(),
                id: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_categories_become_tags() {
        let opml = r#"<?xml version="1.0"?><opml version="2.0"><head/><body>
            <outline text="News"><outline text="World" type="rss" xmlUrl="https://example.org/w.xml" category="/Politics,/economy"/></outline>
            <outline type="rss" title="Flat" xmlUrl="https://example.org/f.xml"/></body></opml>"#;
        let feeds = parse(opml).expect("opml");
        assert_eq!(feeds.len(), 2);
        assert_eq!(feeds[0].tags, vec!["news", "politics", "economy"]);
        assert_eq!(feeds[1].title, "Flat");
        assert!(parse("<rss/>").is_err());
    }

    #[test]
    fn discovery_finds_announced_feeds_only() {
        let page = Url::parse("https://example.org/blog/").expect("url");
        let html = r#"<html><head><link rel="stylesheet" href="s.css">
            <link rel="alternate" type="application/atom+xml" title="Atom" href="/feed.atom">
            <link rel="alternate" type="text/html" hreflang="de" href="/de/">
            <link rel="alternate" type="application/rss+xml; charset=utf-8" href="rss.xml"></head></html>"#;
        let found: Vec<String> = discover(html, &page).into_iter().map(|f| f.url).collect();
        assert_eq!(
            found,
            vec![
                "https://example.org/feed.atom",
                "https://example.org/blog/rss.xml"
            ]
        );
    }
}
