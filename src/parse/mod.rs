//! Response bytes to one [`Feed`] model, whatever the format: RSS 0.90 to 2.0, Atom 0.3 and 1.0,
//! JSON Feed 1.0 and 1.1. The bytes are made UTF-8, read in one pass, and capped.
//!
//! Lenient per element, strict per document: a value that cannot be read (an unknown text
//! type, a JSON value of the wrong type, a date in no known form or far in the future) is left
//! out with a note, and the entry and the feed are kept; a document that is no feed is an error.

pub mod atom;
pub mod date;
pub mod encoding;
mod json;
pub mod model;
mod people;
mod rss;
pub mod xml;

use chrono::{DateTime, Utc};
use url::Url;

use crate::config::FetchConfig;
pub use model::{Entry, Feed, Format, History, Link, Text, TextKind};

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
    /// Notes for the log: encoding fallbacks, mended XML, values left out, entries or fields
    /// cut by the caps.
    pub warnings: Vec<String>,
}

/// Why a document is not read as a feed. Every message starts with "not a feed".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAFeed {
    #[error("not a feed: the text is not UTF-8 ({0})")]
    NotUtf8(String),
    #[error("not a feed: neither XML nor JSON")]
    NeitherXmlNorJson,
    #[error("not a feed: the document is empty")]
    Empty,
    #[error("not a feed: {0}")]
    Xml(#[from] xml::XmlError),
    /// A web page: `add` looks in it for an announced feed.
    #[error(
        "not a feed: an HTML page (root element <html>); `gazette add URL` finds the feed a \
         page announces"
    )]
    HtmlPage,
    #[error("not a feed: the root element is <{0}>")]
    UnknownRoot(String),
    /// Nothing whole was read: a cut-off download, not an empty feed.
    #[error("not a feed: the document is cut off ({0})")]
    CutOff(String),
    #[error("not a feed: invalid JSON ({0})")]
    BadJson(String),
    #[error("not a feed: a JSON document without JSON Feed's version or items")]
    NotJsonFeed,
}

/// Parses a feed document from its raw bytes. `base` is the URL it was fetched from, which
/// relative `xml:base` values resolve against.
pub fn parse_feed(
    body: &[u8],
    content_type: Option<&str>,
    base: Option<&Url>,
    limits: &ParseLimits,
) -> Result<ParsedFeed, NotAFeed> {
    parse_feed_at(body, content_type, base, limits, Utc::now())
}

/// [`parse_feed`] with the time that dates in the future are judged against.
pub fn parse_feed_at(
    body: &[u8],
    content_type: Option<&str>,
    base: Option<&Url>,
    limits: &ParseLimits,
    now: DateTime<Utc>,
) -> Result<ParsedFeed, NotAFeed> {
    let mut notes = Notes::new(now);
    let utf8 = encoding::to_utf8(body, content_type);
    notes.warnings.extend(utf8.warning);
    // Always UTF-8 after `to_utf8`; checked rather than trusted.
    let doc = std::str::from_utf8(&utf8.bytes).map_err(|e| NotAFeed::NotUtf8(e.to_string()))?;
    let mut feed = match doc.bytes().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => json::read_feed(doc.as_bytes(), &mut notes)?,
        Some(b'<') => read_xml(doc, base, limits, &mut notes)?,
        Some(_) => return Err(NotAFeed::NeitherXmlNorJson),
        None => return Err(NotAFeed::Empty),
    };
    apply_caps(&mut feed, limits, &mut notes.warnings);
    Ok(ParsedFeed {
        feed,
        warnings: notes.finish(),
    })
}

fn read_xml(
    doc: &str,
    base: Option<&Url>,
    limits: &ParseLimits,
    notes: &mut Notes,
) -> Result<Feed, NotAFeed> {
    let mut document = xml::read(doc, limits.max_depth, base)?;
    if !is_feed_root(&document.root)
        && let Some(start) = feed_start(doc)
        && let Ok(later) = xml::read(&doc[start..], limits.max_depth, base)
        && is_feed_root(&later.root)
    {
        // A server that printed errors (PHP warnings, say) before the feed: the feed is what
        // follows them.
        notes.feed(format!(
            "{start} bytes of something else come before the feed; skipped"
        ));
        document = later;
    }
    let root = &document.root;
    let feed = match (root.ns, root.name.as_str()) {
        (xml::Ns::None | xml::Ns::Rss | xml::Ns::Other, "rss" | "channel") => {
            rss::read_rss(root, notes)
        }
        (xml::Ns::Rdf | xml::Ns::None | xml::Ns::Other | xml::Ns::Rss090, "RDF" | "rdf") => {
            rss::read_rdf(root, notes)
        }
        (xml::Ns::Atom | xml::Ns::Atom03 | xml::Ns::None, "feed" | "entry") => {
            atom::read_feed(root, notes)
        }
        (_, "html" | "HTML") => {
            return Err(NotAFeed::HtmlPage);
        }
        (_, name) => return Err(NotAFeed::UnknownRoot(name.to_owned())),
    };
    if !document.root.complete && feed.entries.is_empty() {
        // Nothing whole was read: a cut-off download, not an empty feed.
        let why = document.warnings.join("; ");
        return Err(NotAFeed::CutOff(why));
    }
    // Mended faults are worth a note only once the document turned out to be a feed.
    notes.warnings.extend(document.warnings);
    Ok(feed)
}

fn is_feed_root(root: &xml::Element) -> bool {
    matches!(
        root.name.as_str(),
        "rss" | "channel" | "RDF" | "rdf" | "feed" | "entry"
    )
}

/// Where a feed's XML declaration or root element starts, when something else came first.
fn feed_start(doc: &str) -> Option<usize> {
    let head = &doc[..doc.floor_char_boundary(64 * 1024)];
    ["<?xml", "<rss", "<feed", "<rdf:RDF", "<RDF"]
        .iter()
        .filter_map(|marker| head.get(1..)?.find(marker).map(|at| at + 1))
        .min()
}

/// Feed-level authors kept, as each is copied into every entry without its own.
const MAX_FEED_AUTHORS: usize = 32;

/// The note for an entry the document ended (or broke off) inside of.
const CUT_OFF: &str = "the document ends inside this entry; left out";

/// What was left out or mended while reading, for the log; bounded so one bad feed cannot
/// flood it.
pub(crate) struct Notes {
    warnings: Vec<String>,
    overflow: usize,
    now: DateTime<Utc>,
}

/// Notes beyond this many are counted, not kept.
const MAX_NOTES: usize = 20;

/// Dates more than this far ahead of the clock are taken for mistakes: taken as they are,
/// they would pin an entry to the top of every feed.
const FUTURE_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::days(1);

impl Notes {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            warnings: Vec::new(),
            overflow: 0,
            now,
        }
    }

    fn push(&mut self, note: String) {
        if self.warnings.len() < MAX_NOTES {
            self.warnings.push(note);
        } else {
            self.overflow += 1;
        }
    }

    fn feed(&mut self, note: String) {
        self.push(note);
    }

    /// A note about the entry at `position` (from 1).
    fn entry(&mut self, position: usize, note: String) {
        self.push(format!("entry {position}: {note}"));
    }

    /// The date `text` names, unless it cannot be read (noted); a date in the future is kept
    /// here, for [`Notes::not_future`] to judge.
    fn date(&mut self, position: usize, field: &str, text: &str) -> Option<DateTime<Utc>> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        match date::parse_date(text) {
            Some(at) => Some(at),
            None => {
                let shown: String = text.chars().take(64).collect();
                self.entry(
                    position,
                    format!("{field} {shown:?} is not a date; ignored"),
                );
                None
            }
        }
    }

    fn not_future(
        &mut self,
        position: usize,
        field: &str,
        at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if at > self.now + FUTURE_TOLERANCE {
            self.entry(
                position,
                format!("{field} {} is in the future; ignored", at.to_rfc3339()),
            );
            return None;
        }
        Some(at)
    }

    fn finish(mut self) -> Vec<String> {
        if self.overflow > 0 {
            self.warnings
                .push(format!("and {} more notes like these", self.overflow));
        }
        self.warnings
    }
}

/// An entry's dates as its elements give them; the first readable one of each kind wins.
#[derive(Debug, Default)]
struct Dates {
    published: Option<DateTime<Utc>>,
    updated: Option<DateTime<Utc>>,
    created: Option<DateTime<Utc>>,
}

impl Dates {
    /// Fills `slot` from `element` unless an earlier element already did.
    fn first(
        slot: &mut Option<DateTime<Utc>>,
        element: &xml::Element,
        notes: &mut Notes,
        position: usize,
    ) {
        if slot.is_none() {
            *slot = notes.date(position, &element.name, &element.text());
        }
    }

    fn published(&mut self, element: &xml::Element, notes: &mut Notes, position: usize) {
        Self::first(&mut self.published, element, notes, position);
    }

    fn updated(&mut self, element: &xml::Element, notes: &mut Notes, position: usize) {
        Self::first(&mut self.updated, element, notes, position);
    }

    fn created(&mut self, element: &xml::Element, notes: &mut Notes, position: usize) {
        Self::first(&mut self.created, element, notes, position);
    }

    /// Sets the entry's dates: a creation date stands in only when there is no other, and a
    /// date too far in the future counts as absent.
    fn apply(self, entry: &mut Entry, notes: &mut Notes) {
        let published = self.published.or(if self.updated.is_none() {
            self.created
        } else {
            None
        });
        set_dates(entry, published, self.updated, notes);
    }
}

/// The entry's dates as read, judged against the clock. The key of an entry with neither id
/// nor link is made from the date as read, so it does not change as the clock passes it.
fn set_dates(
    entry: &mut Entry,
    published: Option<DateTime<Utc>>,
    updated: Option<DateTime<Utc>>,
    notes: &mut Notes,
) {
    entry.key_date = published.or(updated);
    entry.published = published.and_then(|d| notes.not_future(entry.position, "published", d));
    entry.updated = updated.and_then(|d| notes.not_future(entry.position, "updated", d));
}

/// An enclosure given by attributes (RSS `enclosure`, Media RSS `media:content`).
fn attr_enclosure(
    element: &xml::Element,
    url: &str,
    length: &str,
) -> Option<crate::model::Enclosure> {
    let href = element.attr(url)?.trim();
    if href.is_empty() {
        return None;
    }
    Some(crate::model::Enclosure {
        url: element.resolve(href),
        media_type: element
            .attr("type")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        length: element
            .attr(length)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .filter(|l| *l > 0),
    })
}

fn apply_caps(feed: &mut Feed, limits: &ParseLimits, warnings: &mut Vec<String>) {
    if feed.entries.len() > limits.max_entries {
        let total = feed.entries.len();
        // Newest first; entries without a date count as oldest. Stable, so feed order breaks ties.
        feed.entries.sort_by_key(|e| std::cmp::Reverse(e.date()));
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
    for text in [&mut entry.title, &mut entry.summary, &mut entry.content]
        .into_iter()
        .flatten()
    {
        cut += usize::from(truncate_on_char(&mut text.value, max));
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

    fn parse(body: &[u8]) -> Result<ParsedFeed, NotAFeed> {
        parse_feed(body, None, None, &ParseLimits::default())
    }

    #[test]
    fn history_links_and_markers_are_read_in_every_format() {
        let rss = br#"<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"
              xmlns:fh="http://purl.org/syndication/history/1.0"><channel><title>t</title>
            <atom:link rel="prev-archive" href="https://example.org/2019.xml"/><fh:archive/>
            </channel></rss>"#;
        let feed = parse(rss).expect("RSS").feed;
        assert_eq!(
            feed.link("prev-archive"),
            Some("https://example.org/2019.xml")
        );
        assert_eq!(
            feed.history,
            History {
                complete: false,
                archive: true
            }
        );
        let atom = br#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:fh="http://purl.org/syndication/history/1.0">
            <fh:complete/><link rel="http://www.iana.org/assignments/relation/next" href="https://example.org/p2"/></feed>"#;
        let feed = parse(atom).expect("Atom").feed;
        assert!(feed.history.complete && !feed.history.archive);
        assert_eq!(feed.link("next"), Some("https://example.org/p2"));
        // Without the namespace, `complete` is some other vocabulary's element.
        let foreign = br#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:x="urn:other"><x:complete/></feed>"#;
        assert!(!parse(foreign).expect("Atom").feed.history.complete);
        let json = br#"{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [],
            "next_url": "https://example.org/feed.json?page=2"}"#;
        let feed = parse(json).expect("JSON Feed").feed;
        assert_eq!(
            feed.link("next"),
            Some("https://example.org/feed.json?page=2")
        );
    }

    #[test]
    fn missing_ids_stay_empty_and_garbage_is_an_error() {
        let rss = br#"<rss version="2.0"><channel><title>t</title>
            <item><title>a</title><link>https://example.org/a</link></item></channel></rss>"#;
        let feed = parse(rss).expect("valid RSS").feed;
        assert_eq!(feed.id, "");
        assert_eq!(feed.entries[0].id, "");
        let err = parse(b"<html><body>not a feed</body></html>").expect_err("html");
        assert_eq!(err, NotAFeed::HtmlPage);
        // A document cut off mid-way keeps what was read, with a note.
        let cut = parse(
            b"<rss version=\"2.0\"><channel><item><title>kept</title></item><item><title>cut o",
        )
        .expect("truncated feed");
        assert_eq!(cut.feed.entries.len(), 1);
        assert!(
            cut.warnings.iter().any(|w| w.contains("ends before")),
            "{:?}",
            cut.warnings
        );
        assert!(
            cut.warnings
                .iter()
                .any(|w| w.contains("entry 2: the document ends inside")),
            "{:?}",
            cut.warnings
        );
        let err =
            parse(b"<rss version=\"2.0\"><channel><item><title>cut").expect_err("nothing whole");
        assert!(matches!(err, NotAFeed::CutOff(_)), "{err}");
        let php = parse(b"<br />\n<b>Warning</b>: something failed in <b>x.php</b><br />\n<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title><item><title>after the warning</title></item></channel></rss>")
            .expect("feed after junk");
        assert_eq!(php.feed.entries.len(), 1);
        assert!(
            php.warnings.iter().any(|w| w.contains("something else")),
            "{:?}",
            php.warnings
        );
        let junk: [(&[u8], NotAFeed); 5] = [
            (b"", NotAFeed::Empty),
            (b"   ", NotAFeed::Empty),
            (b"\x00\x01binary", NotAFeed::NeitherXmlNorJson),
            (b"{\"not\": \"a feed\"}", NotAFeed::NotJsonFeed),
            (
                b"<!DOCTYPE html><html><body>x</body></html>",
                NotAFeed::HtmlPage,
            ),
        ];
        for (body, expected) in junk {
            let err = parse(body).expect_err("not a feed");
            assert!(err.to_string().starts_with("not a feed: "), "{err}");
            assert_eq!(err, expected);
        }
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
            parsed.feed.entries[0].title.as_ref().expect("title").value,
            "éé"
        );
        assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
    }

    #[test]
    fn documents_of_countless_tiny_entries_stay_small() {
        let items = "<item><title>t</title></item>".repeat(25_000);
        let rss = format!("<rss version=\"2.0\"><channel>{items}</channel></rss>");
        let parsed = parse(rss.as_bytes()).expect("feed");
        assert_eq!(
            parsed.feed.entries.len(),
            ParseLimits::default().max_entries
        );
        assert!(
            parsed
                .warnings
                .iter()
                .any(|w| w.contains("5000 elements beyond")),
            "{:?}",
            parsed.warnings
        );
        let items = vec![r#"{"id":"x","title":"t"}"#; 25_000].join(",");
        let json = format!(r#"{{"version":"https://jsonfeed.org/version/1.1","items":[{items}]}}"#);
        let parsed = parse(json.as_bytes()).expect("feed");
        assert!(
            parsed
                .warnings
                .iter()
                .any(|w| w.contains("5000 items beyond")),
            "{:?}",
            parsed.warnings
        );
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
        // Read, with the entities left as they are: no billion laughs.
        let parsed = parse(doc.as_bytes()).expect("read without expanding the bomb");
        let title = parsed.feed.entries[0]
            .title
            .as_ref()
            .map(|t| t.value.clone())
            .unwrap_or_default();
        assert!(title.len() < 100, "expanded: {} bytes", title.len());
    }
}
