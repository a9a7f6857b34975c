//! What a feed document says, in one shape for every format: the parser's output and
//! normalization's input. Everything is optional here, because feeds leave anything out.

use chrono::{DateTime, Utc};
use url::Url;

use crate::model::{Byline, Enclosure};

/// The format and version a document was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rss090,
    Rss091,
    Rss092,
    Rss093,
    Rss094,
    Rss10,
    Rss20,
    Atom03,
    Atom10,
    JsonFeed10,
    JsonFeed11,
}

impl Format {
    /// RSS "plain text" fields often carry escaped HTML; the other formats say what they mean.
    pub fn is_rss(self) -> bool {
        matches!(
            self,
            Self::Rss090
                | Self::Rss091
                | Self::Rss092
                | Self::Rss093
                | Self::Rss094
                | Self::Rss10
                | Self::Rss20
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rss090 => "RSS 0.90",
            Self::Rss091 => "RSS 0.91",
            Self::Rss092 => "RSS 0.92",
            Self::Rss093 => "RSS 0.93",
            Self::Rss094 => "RSS 0.94",
            Self::Rss10 => "RSS 1.0",
            Self::Rss20 => "RSS 2.0",
            Self::Atom03 => "Atom 0.3",
            Self::Atom10 => "Atom 1.0",
            Self::JsonFeed10 => "JSON Feed 1.0",
            Self::JsonFeed11 => "JSON Feed 1.1",
        }
    }
}

/// How a text's value is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TextKind {
    Plain,
    /// HTML markup, already unescaped from the XML (or XHTML serialized as HTML).
    Html,
}

/// A text construct: a title, a summary, a body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Text {
    pub kind: TextKind,
    pub value: String,
    /// What relative references inside it resolve against (`xml:base` in scope), when the
    /// document says.
    pub base: Option<Url>,
}

impl Text {
    pub fn plain(value: impl Into<String>) -> Self {
        Self {
            kind: TextKind::Plain,
            value: value.into(),
            base: None,
        }
    }

    pub fn html(value: impl Into<String>) -> Self {
        Self {
            kind: TextKind::Html,
            value: value.into(),
            base: None,
        }
    }

    pub fn is_html(&self) -> bool {
        self.kind == TextKind::Html
    }

    pub fn is_blank(&self) -> bool {
        self.value.trim().is_empty()
    }
}

/// A link as the document writes it; `href` is made absolute where `xml:base` allows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    pub href: String,
    /// Atom's `rel`; `None` when absent (which Atom reads as `alternate`).
    pub rel: Option<String>,
    pub media_type: Option<String>,
    pub length: Option<u64>,
}

impl Link {
    pub fn new(href: impl Into<String>) -> Self {
        Self {
            href: href.into(),
            rel: None,
            media_type: None,
            length: None,
        }
    }
}

/// One entry (RSS `item`, Atom `entry`, JSON Feed item).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Position in the document, from 1, to name the entry in messages when it has no id.
    pub position: usize,
    /// RSS `guid`, Atom `id`, JSON Feed `id`; empty when absent.
    pub id: String,
    pub title: Option<Text>,
    /// RSS `description`, Atom `summary`, JSON Feed `summary`.
    pub summary: Option<Text>,
    /// RSS `content:encoded`, Atom `content`, JSON Feed `content_html`/`content_text`.
    pub content: Option<Text>,
    pub links: Vec<Link>,
    pub categories: Vec<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    /// Published, else updated, as read, even when too far in the future to file under: what
    /// the key of an entry without id or link is made from, so that it never changes.
    pub key_date: Option<DateTime<Utc>>,
    /// The entry element's `xml:base` in scope, for its links.
    pub base: Option<Url>,
    pub language: Option<String>,
    pub authors: Vec<Byline>,
    pub enclosures: Vec<Enclosure>,
}

impl Entry {
    /// How messages name the entry: its id, else its position.
    pub fn label(&self) -> String {
        let id = self.id.trim();
        if id.is_empty() {
            format!("entry {}", self.position)
        } else {
            format!("entry {id:?}")
        }
    }

    /// The date the archive files it under: published, else updated.
    pub fn date(&self) -> Option<DateTime<Utc>> {
        self.published.or(self.updated)
    }
}

/// A whole feed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub format: Format,
    /// Atom `id`, JSON Feed `feed_url`; empty when absent.
    pub id: String,
    pub title: Option<Text>,
    /// The feed's links: its site (`alternate`), itself (`self`), hubs.
    pub links: Vec<Link>,
    pub language: Option<String>,
    /// RSS `<ttl>`, in minutes.
    pub ttl: Option<u32>,
    /// What the document says of its place in the feed's history (RFC 5005).
    pub history: History,
    pub entries: Vec<Entry>,
}

/// RFC 5005's markers: a complete feed lists every entry there is (what it leaves out is gone);
/// an archive document is one page of the feed's past, which should not change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    pub complete: bool,
    pub archive: bool,
}

impl Feed {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            id: String::new(),
            title: None,
            links: Vec::new(),
            language: None,
            ttl: None,
            history: History::default(),
            entries: Vec::new(),
        }
    }

    /// The first link with relation `rel`.
    pub fn link(&self, rel: &str) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.rel.as_deref() == Some(rel))
            .map(|l| l.href.as_str())
    }
}
