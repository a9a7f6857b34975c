//! RSS in every version feed readers meet: 0.90 and 1.0 (RDF, items beside the channel), 0.91
//! to 0.94 and 2.0 (items inside the channel), with or without a namespace or version.

use super::Notes;
use super::model::{Entry, Feed, Format, Link, Text};
use super::people;
use super::xml::{Element, Ns};

/// The names RSS elements appear under: no namespace, or one of RSS's own.
const RSS: &[Ns] = &[Ns::None, Ns::Rss, Ns::Rss090];

/// Reads an `<rss>` root (0.91 to 2.0) or a bare `<channel>`.
pub(super) fn read_rss(root: &Element, notes: &mut Notes) -> Feed {
    let format = match root.attr("version").map(str::trim) {
        Some("0.91") => Format::Rss091,
        Some("0.92") => Format::Rss092,
        Some("0.93") => Format::Rss093,
        Some("0.94") => Format::Rss094,
        _ => Format::Rss20,
    };
    let channel = if root.is(RSS, "channel") {
        Some(root)
    } else {
        root.child(RSS, "channel")
    };
    let mut feed = Feed::new(format);
    if let Some(channel) = channel {
        read_channel(channel, &mut feed);
    }
    read_items(root, &mut feed, notes);
    feed
}

/// Reads an `<rdf:RDF>` root: RSS 1.0, or 0.90 by its namespace.
pub(super) fn read_rdf(root: &Element, notes: &mut Notes) -> Feed {
    let channel = root.child(RSS, "channel");
    let format = if channel.is_some_and(|c| c.ns == Ns::Rss090)
        || root.elements().any(|e| e.ns == Ns::Rss090)
    {
        Format::Rss090
    } else {
        Format::Rss10
    };
    let mut feed = Feed::new(format);
    if let Some(channel) = channel {
        read_channel(channel, &mut feed);
    }
    read_items(root, &mut feed, notes);
    feed
}

/// Items belong in the channel (RSS 0.91 to 2.0) or beside it (0.90, 1.0); feeds put them in
/// the other place, or inside an element left unclosed before them, so every item below the
/// root counts, in document order.
fn read_items(root: &Element, feed: &mut Feed, notes: &mut Notes) {
    fn collect<'a>(element: &'a Element, out: &mut Vec<&'a Element>) {
        for child in element.elements() {
            if child.is(RSS, "item") {
                out.push(child);
            } else if !child.is(RSS, "image") && !child.is(RSS, "textinput") {
                collect(child, out);
            }
        }
    }
    let mut items = Vec::new();
    collect(root, &mut items);
    for (index, item) in items.into_iter().enumerate() {
        let position = index + 1;
        if item.complete {
            feed.entries
                .push(read_item(item, position, feed.format, notes));
        } else {
            notes.entry(position, super::CUT_OFF.to_owned());
        }
    }
}

fn read_channel(channel: &Element, feed: &mut Feed) {
    for child in channel.elements() {
        match (child.ns, child.name.as_str()) {
            (Ns::None | Ns::Rss | Ns::Rss090, "title") => feed.title = plain(child),
            (Ns::None | Ns::Rss | Ns::Rss090, "link") => {
                if let Some(href) = child.text_trimmed() {
                    feed.links.push(Link::new(child.resolve(&href)));
                }
            }
            (Ns::Atom, "link") => {
                if let Some(link) = super::atom::read_link(child) {
                    feed.links.push(link);
                }
            }
            (Ns::History, _) => super::atom::read_history(child, feed),
            (Ns::None | Ns::Rss | Ns::Rss090, "language") | (Ns::Dc, "language") => {
                feed.language = feed.language.take().or_else(|| child.text_trimmed());
            }
            (Ns::None | Ns::Rss, "ttl") => {
                feed.ttl = child.text_trimmed().and_then(|t| t.parse().ok());
            }
            _ => {}
        }
    }
}

fn read_item(item: &Element, position: usize, format: Format, notes: &mut Notes) -> Entry {
    // RSS 0.91 to 2.0 define the description as HTML; RSS 1.0 and 0.90 as text (where escaped
    // markup is dealt with when it is normalized, as before).
    let description_is_html = !matches!(format, Format::Rss10 | Format::Rss090);
    let mut entry = Entry {
        position,
        base: item.base_url(),
        ..Entry::default()
    };
    let mut dates = super::Dates::default();
    let mut permalink_guid = None;
    let mut dc_description = None;
    let mut dc_title = None;
    // RSS's own `<link>` is the article's; Atom links stand in only without one, so the keys
    // of archived items (made from `<link>`) stay as they were.
    let mut atom_links = Vec::new();
    let mut xhtml_body = None;
    let mut media = Vec::new();
    let mut itunes_author = None;
    for child in item.elements() {
        match (child.ns, child.name.as_str()) {
            (Ns::None | Ns::Rss | Ns::Rss090, name) => match name {
                "title" => entry.title = plain(child),
                "link" => {
                    // Some feeds write `<link href="..."/>`, the Atom way.
                    if let Some(href) = child.text_trimmed().or_else(|| {
                        child
                            .attr("href")
                            .map(str::trim)
                            .filter(|h| !h.is_empty())
                            .map(str::to_owned)
                    }) {
                        entry.links.push(Link::new(child.resolve(&href)));
                    }
                }
                "description" if description_is_html => entry.summary = html(child),
                "description" => entry.summary = plain(child),
                "guid" => {
                    let guid = child.text_trimmed().unwrap_or_default();
                    // A guid is the item's permalink unless it says otherwise.
                    let is_permalink = child
                        .attr("isPermaLink")
                        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
                    // Only a guid that is a web address can be the page: podcast hosts mark
                    // UUIDs as permalinks, which would resolve to made-up addresses.
                    // A path (`/2024/post`) resolves like a relative link.
                    let is_web = url::Url::parse(&guid)
                        .is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                        || guid.starts_with('/');
                    if is_permalink && is_web {
                        permalink_guid = Some(child.resolve(&guid));
                    }
                    entry.id = guid;
                }
                "pubDate" | "pubdate" => dates.published(child, notes, position),
                "updated" | "lastBuildDate" => dates.updated(child, notes, position),
                "category" => push_category(&mut entry.categories, child),
                "author" => entry.authors.extend(people::from_rss_author(child)),
                "enclosure" => entry
                    .enclosures
                    .extend(super::attr_enclosure(child, "url", "length")),
                "language" => entry.language = child.text_trimmed(),
                // Early RSS drafts carried the whole article here.
                "fullitem" => entry.content = entry.content.take().or_else(|| html(child)),
                _ => {}
            },
            (Ns::Content, "encoded") => entry.content = html(child),
            (Ns::Xhtml, "body" | "div") => {
                xhtml_body = Some(child.inner_html()).filter(|b| !b.trim().is_empty());
            }
            (Ns::Dc, "date") => dates.updated(child, notes, position),
            (Ns::Dc, "creator" | "author") => entry.authors.extend(people::from_name(child)),
            (Ns::Dc, "subject") => push_category(&mut entry.categories, child),
            (Ns::Dc, "title") => dc_title = plain(child),
            (Ns::Dc, "description") => dc_description = html(child),
            (Ns::Dc, "language") => entry.language = child.text_trimmed(),
            (Ns::Dcterms, "issued") => dates.published(child, notes, position),
            (Ns::Dcterms, "modified" | "date") => dates.updated(child, notes, position),
            (Ns::Dcterms, "created") => dates.created(child, notes, position),
            (Ns::Atom, "published") => dates.published(child, notes, position),
            (Ns::Atom, "updated") => dates.updated(child, notes, position),
            (Ns::Atom, "link") => {
                if let Some(link) = super::atom::read_link(child) {
                    if link.rel.as_deref() == Some("enclosure") {
                        entry.enclosures.extend(super::atom::enclosure_of(&link));
                    } else {
                        atom_links.push(link);
                    }
                }
            }
            (Ns::Atom, "author") => entry.authors.extend(people::from_atom(child)),
            (Ns::Media, "content") => media.extend(super::attr_enclosure(child, "url", "fileSize")),
            (Ns::Media, "group") => {
                for content in child.elements().filter(|e| e.is(&[Ns::Media], "content")) {
                    media.extend(super::attr_enclosure(content, "url", "fileSize"));
                }
            }
            (Ns::Itunes, "author") => itunes_author = people::from_name(child),
            _ => {}
        }
    }
    dates.apply(&mut entry, notes);
    if entry.title.is_none() {
        entry.title = dc_title;
    }
    if entry.summary.is_none() {
        entry.summary = dc_description;
    }
    if entry.content.is_none() {
        entry.content = xhtml_body.map(Text::html);
    }
    if entry.authors.is_empty() {
        entry.authors.extend(itunes_author);
    }
    // Media RSS describes the same file an enclosure often does.
    for m in media {
        if !entry.enclosures.iter().any(|e| e.url == m.url) {
            entry.enclosures.push(m);
        }
    }
    if entry.links.is_empty() {
        entry.links = atom_links;
    }
    let has_link = entry
        .links
        .iter()
        .any(|l| matches!(l.rel.as_deref(), None | Some("alternate")));
    if !has_link && let Some(guid) = permalink_guid {
        entry.links.push(Link::new(guid));
    }
    entry
}

/// A field RSS defines as plain text (titles); entity-escaped markup in it is dealt with when
/// it is normalized.
fn plain(element: &Element) -> Option<Text> {
    if element.has_element_children() {
        // Unescaped markup in a title: its text is what a reader shows.
        return Some(Text::html(element.inner_html().trim()));
    }
    element.text_trimmed().map(Text::plain)
}

/// A field that holds HTML, escaped or (in careless feeds) written as markup.
fn html(element: &Element) -> Option<Text> {
    let value = if element.has_element_children() {
        element.inner_html().trim().to_owned()
    } else {
        element.text_trimmed()?
    };
    Some(Text {
        base: element.base_url(),
        ..Text::html(value)
    })
}

fn push_category(categories: &mut Vec<String>, element: &Element) {
    if let Some(term) = element.text_trimmed() {
        categories.push(term);
    }
}
