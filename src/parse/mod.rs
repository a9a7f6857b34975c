//! Response bytes to the feed-rs model (RSS 0.9x/1.0/2.0, Atom, JSON Feed), after the bytes are
//! made UTF-8 and defused, and with the per-fetch caps applied.

pub mod encoding;
pub mod xml_guard;

use feed_rs::model::{Entry, Feed, Text};
use url::Url;

use crate::config::FetchConfig;

/// Caps on what one fetch may put into memory and into the archive.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Entries kept (the newest).
    pub max_entries: usize,
    /// Bytes kept of each text field.
    pub max_field: usize,
    /// Element nesting accepted.
    pub max_depth: usize,
}

impl ParseLimits {
    pub fn from_config(config: &FetchConfig) -> Self {
        Self {
            max_entries: config.max_entries,
            max_field: usize::try_from(config.max_field).unwrap_or(usize::MAX),
            max_depth: config.max_depth,
        }
    }
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self::from_config(&FetchConfig::default())
    }
}

/// A parsed feed and what was adjusted on the way.
#[derive(Debug)]
pub struct ParsedFeed {
    pub feed: Feed,
    /// Notes for the log: encoding fallbacks, entries or fields cut by the caps.
    pub warnings: Vec<String>,
}

/// Parses a feed document from its raw bytes.
///
/// feed-rs invents ids for entries that have none (some random, so they change on every parse);
/// here a missing id stays empty, so normalization can fall back to the link or a content hash
/// that is stable across runs.
pub fn parse_feed(
    body: &[u8],
    content_type: Option<&str>,
    base: Option<&Url>,
    limits: &ParseLimits,
) -> Result<ParsedFeed, String> {
    let mut warnings = Vec::new();
    let utf8 = encoding::to_utf8(body, content_type);
    warnings.extend(utf8.warning);
    let defused = xml_guard::strip_doctype(&utf8.bytes);
    if looks_like_xml(&defused) {
        xml_guard::check_depth(&defused, limits.max_depth)?;
    }
    let parser = feed_rs::parser::Builder::new()
        .base_uri(base.map(Url::as_str))
        .sanitize_content(false)
        .id_generator(|_links, _title, _uri| String::new())
        .build();
    let mut feed = parser.parse(&defused[..]).map_err(|e| match e {
        feed_rs::parser::ParseFeedError::ParseError(kind) => format!("not a feed: {kind}"),
        other => other.to_string(),
    })?;
    apply_caps(&mut feed, limits, &mut warnings);
    Ok(ParsedFeed { feed, warnings })
}

fn looks_like_xml(doc: &[u8]) -> bool {
    doc.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

fn apply_caps(feed: &mut Feed, limits: &ParseLimits, warnings: &mut Vec<String>) {
    if feed.entries.len() > limits.max_entries {
        let total = feed.entries.len();
        // Newest first; entries without a date count as oldest. Stable, so feed order breaks ties.
        feed.entries
            .sort_by_key(|e| std::cmp::Reverse(e.published.or(e.updated)));
        feed.entries.truncate(limits.max_entries);
        warnings.push(format!(
            "the feed has {total} entries; kept the newest {}",
            limits.max_entries
        ));
    }
    let mut cut = 0usize;
    for entry in &mut feed.entries {
        cut += cap_entry(entry, limits.max_field);
    }
    if cut > 0 {
        warnings.push(format!(
            "{cut} fields were longer than {} bytes and were cut",
            limits.max_field
        ));
    }
}

fn cap_entry(entry: &mut Entry, max: usize) -> usize {
    let mut cut = 0;
    let mut cap_text = |text: &mut Option<Text>| {
        if let Some(t) = text {
            cut += usize::from(truncate_on_char(&mut t.content, max));
        }
    };
    cap_text(&mut entry.title);
    cap_text(&mut entry.summary);
    if let Some(body) = entry.content.as_mut().and_then(|c| c.body.as_mut()) {
        cut += usize::from(truncate_on_char(body, max));
    }
    cut
}

/// Cuts `s` to at most `max` bytes on a character boundary; true when it was cut.
fn truncate_on_char(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &[u8]) -> Result<ParsedFeed, String> {
        parse_feed(body, None, None, &ParseLimits::default())
    }

    #[test]
    fn missing_ids_stay_empty_and_garbage_is_an_error() {
        let rss = br#"<rss version="2.0"><channel><title>t</title>
            <item><title>a</title><link>https://example.org/a</link></item></channel></rss>"#;
        let feed = parse(rss).expect("valid RSS").feed;
        assert_eq!(feed.id, "");
        assert_eq!(feed.entries[0].id, "");
        let err = parse(b"<html><body>not a feed</body></html>").expect_err("html");
        assert!(err.contains("not a feed"), "{err}");
        assert!(parse(b"<rss version=\"2.0\"><channel><item>").is_err());
    }

    #[test]
    fn caps_keep_the_newest_entries_and_cut_long_fields() {
        let items: String = (1..=5)
            .map(|d| format!("<item><guid>{d}</guid><title>{}</title><pubDate>0{d} May 2024 00:00:00 GMT</pubDate></item>", "é".repeat(10)))
            .collect();
        let rss = format!("<rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>");
        let limits = ParseLimits {
            max_entries: 2,
            max_field: 5,
            max_depth: 16,
        };
        let parsed = parse_feed(rss.as_bytes(), None, None, &limits).expect("feed");
        let ids: Vec<&str> = parsed.feed.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, vec!["5", "4"]);
        assert_eq!(
            parsed.feed.entries[0]
                .title
                .as_ref()
                .expect("title")
                .content,
            "éé"
        );
        assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
    }

    #[test]
    fn entity_bombs_are_not_expanded() {
        let mut doc =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n<!ENTITY lol \"lol\">\n");
        for i in 1..=9 {
            doc.push_str(&format!(
                "<!ENTITY lol{i} \"{}\">\n",
                format!("&lol{};", i - 1)
                    .replace("&lol0;", "&lol;")
                    .repeat(10)
            ));
        }
        doc.push_str("]>\n<rss version=\"2.0\"><channel><title>t</title><item><guid>1</guid><title>&lol9;</title></item></channel></rss>");
        match parse(doc.as_bytes()) {
            Ok(parsed) => {
                let title = parsed.feed.entries[0]
                    .title
                    .as_ref()
                    .map(|t| t.content.clone())
                    .unwrap_or_default();
                assert!(title.len() < 100, "expanded: {} bytes", title.len());
            }
            Err(e) => assert!(!e.is_empty()),
        }
    }
}
