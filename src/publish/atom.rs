//! The merged Atom feed (RFC 4287) of the newest articles across all sources.
//!
//! Everything in the feed derives from stored data (no "now"), so the same state gives the same
//! bytes and an unchanged feed is never rewritten, which keeps feed readers' caches valid.

use atom_syndication as atom;
use chrono::{DateTime, Utc};

use crate::config::FeedConfig;
use crate::model::{Byline, Document, Enclosure};
use crate::text::markdown_to_html;

/// Where an article came from, for `atom:source`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceInfo {
    /// The source's configured id.
    pub key: String,
    /// The source feed's own id, for `atom:source`.
    pub id: String,
    pub title: String,
    pub link: Option<String>,
}

/// One entry of the merged feed.
#[derive(Debug, Clone, Hash)]
pub struct FeedItem {
    pub atom_id: String,
    /// The archive file, relative to the archive folder.
    pub path: String,
    pub doc: Document,
    /// When the article's file last changed.
    pub updated: DateTime<Utc>,
    pub source: SourceInfo,
    /// The entry's own authors; the source's author key stands in when there are none.
    pub bylines: Vec<Byline>,
    pub enclosures: Vec<Enclosure>,
}

/// What tells one published feed from another: a feed reader that subscribes to two of them
/// must see two feeds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Head {
    pub id: String,
    pub title: String,
    /// Where the feed is published (`rel="self"`).
    pub self_url: String,
}

impl Head {
    /// The merged feed's, as configured.
    pub fn merged(config: &FeedConfig) -> Self {
        Self {
            id: config.id.clone(),
            title: config.title.clone(),
            self_url: config.self_url.clone(),
        }
    }
}

/// Renders a feed; `items` newest first.
pub fn render(config: &FeedConfig, head: &Head, items: &[FeedItem]) -> Vec<u8> {
    let newest = items
        .iter()
        .map(|i| i.updated.max(i.doc.date))
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let feed = atom::Feed {
        title: atom::Text::plain(xml_safe(&head.title)),
        id: head.id.clone(),
        updated: newest.fixed_offset(),
        authors: vec![person(&config.author)],
        links: std::iter::once(atom::Link {
            href: head.self_url.clone(),
            rel: "self".to_owned(),
            mime_type: Some("application/atom+xml".to_owned()),
            ..Default::default()
        })
        .chain(config.hubs.iter().map(|hub| atom::Link {
            href: hub.clone(),
            rel: "hub".to_owned(),
            ..Default::default()
        }))
        .collect(),
        generator: Some(atom::Generator {
            value: "Gazette".to_owned(),
            uri: None,
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }),
        entries: items.iter().map(entry).collect(),
        ..Default::default()
    };
    let config = atom::WriteConfig {
        write_document_declaration: true,
        indent_size: Some(2),
    };
    let mut out = feed
        .write_with_config(Vec::with_capacity(64 * 1024), config)
        .unwrap_or_default();
    out.push(b'\n');
    out
}

fn person(name: &str) -> atom::Person {
    atom::Person {
        name: xml_safe(name),
        ..Default::default()
    }
}

fn byline(b: &Byline) -> atom::Person {
    atom::Person {
        name: xml_safe(&b.name),
        email: b.email.as_deref().map(xml_safe),
        uri: b.uri.clone(),
        ..Default::default()
    }
}

fn enclosure_link(e: &Enclosure) -> atom::Link {
    atom::Link {
        href: e.url.clone(),
        rel: "enclosure".to_owned(),
        mime_type: e.media_type.as_deref().map(xml_safe),
        length: e.length.map(|l| l.to_string()),
        ..Default::default()
    }
}

fn entry(item: &FeedItem) -> atom::Entry {
    let doc = &item.doc;
    let updated = item.updated.max(doc.date);
    atom::Entry {
        title: atom::Text::plain(xml_safe(doc.title())),
        id: item.atom_id.clone(),
        updated: updated.fixed_offset(),
        published: Some(doc.date.fixed_offset()),
        authors: if item.bylines.is_empty() {
            vec![person(&doc.author)]
        } else {
            item.bylines.iter().map(byline).collect()
        },
        categories: doc
            .tags
            .iter()
            .map(|t| atom::Category {
                term: xml_safe(t),
                ..Default::default()
            })
            .collect(),
        links: (!doc.link.is_empty())
            .then(|| atom::Link {
                href: doc.link.clone(),
                rel: "alternate".to_owned(),
                mime_type: Some("text/html".to_owned()),
                ..Default::default()
            })
            .into_iter()
            .chain(item.enclosures.iter().map(enclosure_link))
            .collect(),
        summary: (!doc.description.is_empty())
            .then(|| atom::Text::plain(xml_safe(&doc.description))),
        content: Some(atom::Content {
            value: Some(xml_safe(&content_html(doc))),
            content_type: Some("html".to_owned()),
            ..Default::default()
        }),
        source: Some(atom::Source {
            title: atom::Text::plain(xml_safe(&item.source.title)),
            id: item.source.id.clone(),
            updated: updated.fixed_offset(),
            links: item
                .source
                .link
                .iter()
                .map(|href| atom::Link {
                    href: href.clone(),
                    rel: "alternate".to_owned(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The article's sections as HTML; translations get their own headings.
pub fn content_html(doc: &Document) -> String {
    if doc.translations.is_empty() {
        return markdown_to_html(&doc.original.body);
    }
    let markdown = doc
        .sections()
        .map(|s| format!("# {}\n\n{}", s.title, s.body))
        .collect::<Vec<_>>()
        .join("\n\n---\n\n");
    markdown_to_html(&markdown)
}

/// XML 1.0 cannot carry most control characters, even escaped; they are dropped.
fn xml_safe(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r')
                || ('\u{20}'..='\u{D7FF}').contains(&c)
                || ('\u{E000}'..='\u{FFFD}').contains(&c)
                || c >= '\u{10000}'
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Section;

    fn item(title: &str) -> FeedItem {
        let date = DateTime::parse_from_rfc3339("2024-05-13T09:00:53.911Z")
            .expect("date")
            .with_timezone(&Utc);
        FeedItem {
            atom_id: "urn:uuid:00000000-0000-5000-8000-000000000000".to_owned(),
            path: "ex/a.md".to_owned(),
            doc: Document {
                link: "https://example.org/a?x=1&y=2".to_owned(),
                date,
                description: "d".to_owned(),
                tags: vec!["world".to_owned()],
                author: "ex".to_owned(),
                translations: vec![],
                original: Section {
                    language: "en".to_owned(),
                    title: title.to_owned(),
                    body: "**bold** <script>x</script>".to_owned(),
                },
            },
            updated: date,
            source: SourceInfo {
                key: "ex".to_owned(),
                id: "https://example.org/feed".to_owned(),
                title: "Example".to_owned(),
                link: Some("https://example.org/".to_owned()),
            },
            bylines: vec![],
            enclosures: vec![],
        }
    }

    #[test]
    fn feed_is_deterministic_escaped_and_sanitized() {
        let config = FeedConfig::default();
        let head = Head::merged(&config);
        let a = render(&config, &head, &[item("A \u{1} & <b>")]);
        assert_eq!(a, render(&config, &head, &[item("A \u{1} & <b>")]));
        let text = String::from_utf8(a).expect("utf-8");
        assert!(text.contains("<title>A  &amp; &lt;b&gt;</title>"), "{text}");
        assert!(text.contains("&lt;strong&gt;bold&lt;/strong&gt;"), "{text}");
        assert!(!text.contains("script"), "{text}");
        assert!(
            text.contains("<updated>2024-05-13T09:00:53.911+00:00</updated>"),
            "{text}"
        );
        assert!(text.contains("version=\"0.1.0\""), "{text}");
        assert!(text.contains("<author>\n      <name>ex</name>"), "{text}");
    }

    #[test]
    fn bylines_and_enclosures_are_published() {
        let mut with = item("A");
        with.bylines = vec![Byline {
            name: "Jo Doe".to_owned(),
            email: Some("jo@example.org".to_owned()),
            uri: Some("https://example.org/jo".to_owned()),
        }];
        with.enclosures = vec![Enclosure {
            url: "https://example.org/ep1.mp3".to_owned(),
            media_type: Some("audio/mpeg".to_owned()),
            length: Some(1234),
        }];
        let config = FeedConfig::default();
        let text =
            String::from_utf8(render(&config, &Head::merged(&config), &[with])).expect("utf-8");
        assert!(text.contains("<name>Jo Doe</name>"), "{text}");
        assert!(text.contains("<email>jo@example.org</email>"), "{text}");
        assert!(text.contains("<uri>https://example.org/jo</uri>"), "{text}");
        assert!(!text.contains("<name>ex</name>"), "{text}");
        assert!(
            text.contains(r#"<link href="https://example.org/ep1.mp3" rel="enclosure" type="audio/mpeg" length="1234"/>"#),
            "{text}"
        );
    }
}
