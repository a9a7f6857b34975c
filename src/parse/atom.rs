//! Atom 1.0 (RFC 4287) and its predecessor Atom 0.3, which differs in names (`issued`,
//! `modified`, `created`, `tagline`, an author's `url`) and in how content says what it is
//! (`mode="escaped|base64|xml"` and a MIME `type`).

use base64::Engine as _;

use super::model::{Entry, Feed, Format, Link, Text, TextKind};
use super::xml::{Element, Ns};
use super::{Dates, Notes, people};
use crate::model::{Byline, Enclosure};

const ATOM: &[Ns] = &[Ns::None, Ns::Atom, Ns::Atom03];

/// Reads a `<feed>` root, or a lone `<entry>` document as a feed of one.
pub(super) fn read_feed(root: &Element, notes: &mut Notes) -> Feed {
    let format = if root.ns == Ns::Atom03 || root.attr("version").is_some_and(|v| v.trim() == "0.3")
    {
        Format::Atom03
    } else {
        Format::Atom10
    };
    let mut feed = Feed::new(format);
    feed.language = lang(root);
    if root.is(ATOM, "entry") {
        feed.entries.push(read_entry(root, 1, &[], None, notes));
        return feed;
    }
    let mut authors = Vec::new();
    for child in root.elements() {
        match (child.ns, child.name.as_str()) {
            (Ns::None | Ns::Atom | Ns::Atom03, "id") => {
                feed.id = child.text_trimmed().unwrap_or_default();
            }
            (Ns::None | Ns::Atom | Ns::Atom03, "title") => {
                feed.title = text_construct(child, "title", 0, notes);
            }
            (Ns::None | Ns::Atom | Ns::Atom03, "link") => feed.links.extend(read_link(child)),
            (Ns::History, _) => read_history(child, &mut feed),
            // Copied into every entry that names none: a handful is plenty.
            (Ns::None | Ns::Atom | Ns::Atom03, "author")
                if authors.len() < super::MAX_FEED_AUTHORS =>
            {
                authors.extend(people::from_atom(child));
            }
            _ => {}
        }
    }
    let language = feed.language.clone();
    for (index, child) in root.elements().filter(|e| e.is(ATOM, "entry")).enumerate() {
        let position = index + 1;
        if child.complete {
            let entry = read_entry(child, position, &authors, language.as_deref(), notes);
            feed.entries.push(entry);
        } else {
            notes.entry(position, super::CUT_OFF.to_owned());
        }
    }
    feed
}

fn read_entry(
    element: &Element,
    position: usize,
    feed_authors: &[Byline],
    feed_language: Option<&str>,
    notes: &mut Notes,
) -> Entry {
    let mut entry = Entry {
        position,
        base: element.base_url(),
        language: lang(element).or_else(|| feed_language.map(str::to_owned)),
        ..Entry::default()
    };
    let mut dates = Dates::default();
    let mut source_authors = Vec::new();
    for child in element.elements() {
        match (child.ns, child.name.as_str()) {
            (Ns::None | Ns::Atom | Ns::Atom03, name) => match name {
                "id" => entry.id = child.text_trimmed().unwrap_or_default(),
                "title" => entry.title = text_construct(child, "title", position, notes),
                "summary" => entry.summary = text_construct(child, "summary", position, notes),
                "content" => entry.content = content(child, position, notes),
                "link" => {
                    if let Some(link) = read_link(child) {
                        if link.rel.as_deref() == Some("enclosure") {
                            entry.enclosures.extend(enclosure_of(&link));
                        } else {
                            entry.links.push(link);
                        }
                    }
                }
                "category" => {
                    let term = child
                        .attr("term")
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .or_else(|| child.text_trimmed());
                    entry.categories.extend(term);
                }
                "author" => entry.authors.extend(people::from_atom(child)),
                "published" | "issued" => dates.published(child, notes, position),
                "updated" | "modified" => dates.updated(child, notes, position),
                "created" => dates.created(child, notes, position),
                "source" => {
                    source_authors = child
                        .elements()
                        .filter(|e| e.is(ATOM, "author"))
                        .filter_map(people::from_atom)
                        .collect();
                }
                _ => {}
            },
            (Ns::Dc, "date") => dates.updated(child, notes, position),
            (Ns::Dcterms, "issued") => dates.published(child, notes, position),
            (Ns::Dcterms, "modified") => dates.updated(child, notes, position),
            (Ns::Dcterms, "created") => dates.created(child, notes, position),
            (Ns::Dc, "creator") => entry.authors.extend(people::from_name(child)),
            (Ns::Dc, "subject") => entry.categories.extend(child.text_trimmed()),
            (Ns::Media, "group") => {
                for media in child.elements().filter(|e| e.is(&[Ns::Media], "content")) {
                    entry
                        .enclosures
                        .extend(super::attr_enclosure(media, "url", "fileSize"));
                }
            }
            (Ns::Media, "content") => entry
                .enclosures
                .extend(super::attr_enclosure(child, "url", "fileSize")),
            _ => {}
        }
    }
    dates.apply(&mut entry, notes);
    // RFC 4287 4.2.1: an entry without an author has its source's, else the feed's.
    if entry.authors.is_empty() {
        entry.authors = if source_authors.is_empty() {
            feed_authors.to_vec()
        } else {
            source_authors
        };
    }
    entry
}

/// `fh:complete` and `fh:archive` (RFC 5005), in Atom feeds and RSS channels alike.
pub(super) fn read_history(element: &Element, feed: &mut Feed) {
    match element.name.as_str() {
        "complete" => feed.history.complete = true,
        "archive" => feed.history.archive = true,
        _ => {}
    }
}

/// `<link>`: its `href` (Atom 1.0, Atom 0.3) made absolute against `xml:base`.
pub(super) fn read_link(element: &Element) -> Option<Link> {
    let href = element
        .attr("href")
        .map(str::to_owned)
        .or_else(|| element.text_trimmed())?;
    if href.trim().is_empty() {
        return None;
    }
    let attr = |name: &str| {
        element
            .attr(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    Some(Link {
        href: element.resolve(&href),
        rel: attr("rel").map(|r| {
            // RFC 4287 4.2.7.2: the IANA relations may be written as full IRIs.
            r.strip_prefix("http://www.iana.org/assignments/relation/")
                .map_or(r.clone(), str::to_owned)
        }),
        media_type: attr("type"),
        length: attr("length").and_then(|l| l.parse().ok()),
    })
}

pub(super) fn enclosure_of(link: &Link) -> Option<Enclosure> {
    Some(Enclosure {
        url: link.href.clone(),
        media_type: link.media_type.clone(),
        length: link.length.filter(|l| *l > 0),
    })
}

/// The element's own `xml:lang`.
fn lang(element: &Element) -> Option<String> {
    element
        .attrs
        .iter()
        .find(|a| a.name == "xml:lang")
        .map(|a| a.value.trim().to_owned())
        .filter(|l| !l.is_empty())
}

/// What a `type` attribute says the text is.
enum Declared {
    Text,
    Html,
    Xhtml,
    /// Another media type: XML of its own, or base64 of a binary file.
    Other(String),
}

fn declared_type(element: &Element) -> Declared {
    let Some(ty) = element.attr("type") else {
        return Declared::Text;
    };
    let ty = ty.trim().to_ascii_lowercase();
    match ty.as_str() {
        "" | "text" | "text/plain" => Declared::Text,
        "html" | "text/html" => Declared::Html,
        "xhtml" | "application/xhtml+xml" => Declared::Xhtml,
        _ if ty.starts_with("text/") => Declared::Text,
        _ => Declared::Other(ty),
    }
}

/// A title or summary: a type Atom does not know is read as text, never a reason to lose it.
fn text_construct(
    element: &Element,
    field: &str,
    position: usize,
    notes: &mut Notes,
) -> Option<Text> {
    let declared = declared_type(element);
    if let Declared::Other(ty) = &declared {
        let ty: String = ty.chars().take(64).collect();
        // RFC 4287 4.1.3.3: a type that is neither text nor XML means base64. A title that
        // decodes to text is that text; anything else is read as written.
        if !ty.contains("xml")
            && !element.has_element_children()
            && let Some(decoded) = element.text_trimmed().as_deref().and_then(base64_text)
        {
            return Some(Text {
                base: element.base_url(),
                ..Text::plain(decoded)
            });
        }
        notes.entry(
            position,
            format!("{field} has type {ty:?}, which is not a text type; read as text"),
        );
    }
    let text = read_text(element, declared, field, position, notes)?;
    (!text.is_blank()).then_some(text)
}

/// `<content>`: like a text construct, except that another media type is a file (base64, or
/// out of line with `src`), which is no text to archive.
fn content(element: &Element, position: usize, notes: &mut Notes) -> Option<Text> {
    if element.attr("src").is_some() {
        return None;
    }
    let declared = declared_type(element);
    if let Declared::Other(ty) = &declared
        && !(ty.ends_with("+xml") || ty.ends_with("/xml"))
    {
        let ty: String = ty.chars().take(64).collect();
        notes.entry(
            position,
            format!("content of type {ty:?} is not text; left out"),
        );
        return None;
    }
    let text = read_text(element, declared, "content", position, notes)?;
    (!text.is_blank()).then_some(text)
}

fn read_text(
    element: &Element,
    declared: Declared,
    field: &str,
    position: usize,
    notes: &mut Notes,
) -> Option<Text> {
    let base = element.base_url();
    let mode = element.attr("mode").map(|m| m.trim().to_ascii_lowercase());
    let escaped_value = || element.text_trimmed();
    let (kind, value) = match mode.as_deref() {
        // Atom 0.3: the markup was escaped, or the whole value base64-encoded.
        Some("escaped") => (kind_of(&declared), escaped_value()?),
        Some("base64") => match escaped_value().as_deref().and_then(base64_text) {
            Some(text) => (kind_of(&declared), text),
            None => {
                notes.entry(position, format!("{field} is not base64 of text; left out"));
                return None;
            }
        },
        _ => match declared {
            Declared::Xhtml => (TextKind::Html, xhtml(element)),
            Declared::Html if element.has_element_children() => {
                (TextKind::Html, element.inner_html().trim().to_owned())
            }
            Declared::Html => (TextKind::Html, escaped_value()?),
            _ if element.has_element_children() => (TextKind::Html, xhtml(element)),
            _ => (TextKind::Plain, escaped_value()?),
        },
    };
    Some(Text { kind, value, base })
}

/// The UTF-8 text that `raw` is the base64 of, if it is.
fn base64_text(raw: &str) -> Option<String> {
    let compact: String = raw.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let text = text.trim();
    (!text.is_empty() && !text.chars().any(|c| c.is_control() && !c.is_whitespace()))
        .then(|| text.to_owned())
}

fn kind_of(declared: &Declared) -> TextKind {
    match declared {
        Declared::Text => TextKind::Plain,
        Declared::Html | Declared::Xhtml => TextKind::Html,
        Declared::Other(ty) if ty.contains("html") => TextKind::Html,
        Declared::Other(_) => TextKind::Plain,
    }
}

/// Inline XHTML: the content of its wrapping `<div>` (RFC 4287 4.1.3), as HTML.
fn xhtml(element: &Element) -> String {
    let mut elements = element.elements();
    let only_div = match (elements.next(), elements.next()) {
        (Some(div), None) if div.name == "div" => {
            let text_outside = element
                .children
                .iter()
                .any(|n| matches!(n, super::xml::Node::Text(t) if !t.trim().is_empty()));
            (!text_outside).then_some(div)
        }
        _ => None,
    };
    only_div.unwrap_or(element).inner_html().trim().to_owned()
}
