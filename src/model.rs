//! The article model: what every entry of every feed format becomes, and what an archive file
//! holds. Input fields are optional in the feeds; here every field has a value. Also the plain
//! records several stages pass between them (validators, a feed's metadata, a page's text), so
//! that a later stage needs no import of an earlier one for them.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One language's text of an article: a heading and Markdown paragraphs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Section {
    pub language: String,
    pub title: String,
    /// Markdown paragraphs separated by blank lines; never starts or ends with a newline.
    pub body: String,
}

/// What one archive file holds: front matter, sections and link. Reading a file gives this back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Document {
    /// Absolute link to the article page (RSS `link`, Atom `link rel=alternate`).
    pub link: String,
    /// Published, else updated, else first seen; UTC.
    pub date: DateTime<Utc>,
    /// Plain text, one line, at most 300 characters (RSS `description`, Atom `summary`).
    pub description: String,
    /// Trimmed, lowercased, de-duplicated: configured tags first, then the entry's categories.
    pub tags: Vec<String>,
    /// The source's configured author key.
    pub author: String,
    /// Translated sections, in configured order; written before the original.
    pub translations: Vec<Section>,
    /// The section in the source's own language.
    pub original: Section,
}

impl Document {
    /// Sections in file order: translations first, the original last.
    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.translations
            .iter()
            .chain(std::iter::once(&self.original))
    }

    /// The title the front matter shows: the first section's.
    pub fn title(&self) -> &str {
        self.translations
            .first()
            .map_or(self.original.title.as_str(), |s| s.title.as_str())
    }
}

/// A normalized article: a document plus what identifies it across runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    /// The configured source id.
    pub source: String,
    /// Stable within the source: the entry's guid/id, else its link, else a hash of title and date.
    pub key: String,
    /// The id of the merged Atom feed's entry.
    pub atom_id: String,
    /// The entry's own guid/id, when it has one.
    pub guid: Option<String>,
    /// Hash of everything the entry's file is made from; unchanged hash, unchanged file.
    pub content_hash: String,
    /// The entry's own authors, as the feed names them.
    pub bylines: Vec<Byline>,
    pub enclosures: Vec<Enclosure>,
    pub doc: Document,
}

/// One of an entry's authors as its feed names them (`dc:creator`, RSS `author`, Atom `author`,
/// JSON Feed `authors`). Not the archive's `author` key, which is the source's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Byline {
    pub name: String,
    pub email: Option<String>,
    pub uri: Option<String>,
}

/// A file attached to an entry: a podcast episode, an image (RSS `enclosure`, Atom
/// `link rel="enclosure"`, Media RSS `media:content`, JSON Feed `attachments`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Enclosure {
    /// Absolute http(s) URL.
    pub url: String,
    /// MIME type, when the feed gives one.
    #[serde(rename = "type")]
    pub media_type: Option<String>,
    /// Size in bytes, when the feed gives one.
    pub length: Option<u64>,
}

/// HTTP validators of the last successful fetch, sent back for a conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// The server's own view of how long a response stays fresh (`Cache-Control`, `Expires`): read
/// by fetch, weighed by the schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheHints {
    pub max_age: Option<std::time::Duration>,
    pub expires: Option<DateTime<Utc>>,
}

/// A source feed's own metadata, for `atom:source`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedMeta {
    pub id: String,
    pub title: String,
    pub link: Option<String>,
}

/// What an article's page gave for its full text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The article's HTML, unsanitized (conversion sanitizes it).
    pub html: String,
    /// The page's `<link rel="canonical">`, absolute.
    pub canonical: Option<String>,
}
