//! JSON Feed 1.0 and 1.1, read field by field: a value of the wrong JSON type loses that value
//! (with a note), never the item or the feed.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::model::{Entry, Feed, Format, Link, Text};
use super::{NotAFeed, Notes};
use crate::model::{Byline, Enclosure};

pub(super) fn read_feed(doc: &[u8], notes: &mut Notes) -> Result<Feed, NotAFeed> {
    let Capped { root, skipped } =
        serde_json::from_slice(doc).map_err(|e| NotAFeed::BadJson(e.to_string()))?;
    if skipped > 0 {
        notes.feed(format!(
            "{skipped} items beyond the first {MAX_ITEMS} were not read"
        ));
    }
    let version = str_field(&root, "version", 0, notes).unwrap_or_default();
    let format = if version.contains("jsonfeed.org/version/1.1") {
        Format::JsonFeed11
    } else if version.contains("jsonfeed.org/version/1") {
        Format::JsonFeed10
    } else if root.get("items").is_some_and(Value::is_array) {
        // No (or an unknown) version, but the shape of a JSON Feed.
        Format::JsonFeed11
    } else {
        return Err(NotAFeed::NotJsonFeed);
    };
    let mut feed = Feed::new(format);
    feed.title = str_field(&root, "title", 0, notes).map(Text::plain);
    feed.id = str_field(&root, "feed_url", 0, notes).unwrap_or_default();
    if let Some(home) = str_field(&root, "home_page_url", 0, notes) {
        feed.links.push(Link {
            rel: Some("alternate".to_owned()),
            ..Link::new(home)
        });
    }
    // JSON Feed's paging: the next page holds older items, as a paged Atom feed's `next` does.
    if let Some(next) = str_field(&root, "next_url", 0, notes) {
        feed.links.push(Link {
            rel: Some("next".to_owned()),
            ..Link::new(next)
        });
    }
    feed.language = str_field(&root, "language", 0, notes);
    let mut feed_authors = authors(&root, 0, notes);
    // Copied into every item that names none: a handful is plenty.
    feed_authors.truncate(super::MAX_FEED_AUTHORS);
    let items = match root.get("items") {
        Some(Value::Array(items)) => items.as_slice(),
        Some(_) => {
            notes.feed("items is not an array; no entries read".to_owned());
            &[]
        }
        None => &[],
    };
    for (index, item) in items.iter().enumerate() {
        let position = index + 1;
        match item {
            Value::Object(item) => {
                let mut entry = read_item(item, position, notes);
                if entry.authors.is_empty() {
                    entry.authors = feed_authors.clone();
                }
                if entry.language.is_none() {
                    entry.language = feed.language.clone();
                }
                feed.entries.push(entry);
            }
            _ => notes.entry(position, "is not a JSON object; skipped".to_owned()),
        }
    }
    Ok(feed)
}

fn read_item(item: &Map<String, Value>, position: usize, notes: &mut Notes) -> Entry {
    let mut entry = Entry {
        position,
        ..Entry::default()
    };
    entry.id = match item.get("id") {
        Some(Value::String(s)) => s.trim().to_owned(),
        // JSON Feed says string; numbers are common and mean the same id.
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Null) | None => String::new(),
        Some(_) => {
            notes.entry(
                position,
                "id is neither a string nor a number; ignored".to_owned(),
            );
            String::new()
        }
    };
    entry.title = str_field(item, "title", position, notes).map(Text::plain);
    entry.summary = str_field(item, "summary", position, notes).map(Text::plain);
    entry.content = str_field(item, "content_html", position, notes)
        .map(Text::html)
        .or_else(|| str_field(item, "content_text", position, notes).map(Text::plain));
    for field in ["url", "external_url"] {
        if let Some(url) = str_field(item, field, position, notes) {
            entry.links.push(Link::new(url));
        }
    }
    let published = date_field(item, "date_published", position, notes);
    let updated = date_field(item, "date_modified", position, notes);
    super::set_dates(&mut entry, published, updated, notes);
    if let Some(tags) = item.get("tags") {
        match tags {
            Value::Array(tags) => entry.categories.extend(
                tags.iter()
                    .filter_map(Value::as_str)
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            ),
            Value::String(tag) => entry.categories.push(tag.trim().to_owned()),
            _ => notes.entry(position, "tags is not a list; ignored".to_owned()),
        }
    }
    entry.language = str_field(item, "language", position, notes);
    entry.authors = authors(item, position, notes);
    if let Some(attachments) = item.get("attachments") {
        match attachments {
            Value::Array(list) => {
                entry.enclosures = list.iter().filter_map(attachment).collect();
            }
            _ => notes.entry(position, "attachments is not a list; ignored".to_owned()),
        }
    }
    entry
}

/// A string field; another type is noted and left out. Empty strings count as absent.
fn str_field(
    object: &Map<String, Value>,
    field: &str,
    position: usize,
    notes: &mut Notes,
) -> Option<String> {
    match object.get(field)? {
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        Value::Number(n) if field == "title" => Some(n.to_string()),
        Value::Null => None,
        other => {
            let what = format!("{field} is a {}, not a string; ignored", kind(other));
            if position == 0 {
                notes.feed(what);
            } else {
                notes.entry(position, what);
            }
            None
        }
    }
}

/// A date: an RFC 3339 string by the spec; a number is read as Unix time (seconds, or
/// milliseconds when it is too large to be seconds), as JavaScript-made feeds write it.
fn date_field(
    object: &Map<String, Value>,
    field: &str,
    position: usize,
    notes: &mut Notes,
) -> Option<DateTime<Utc>> {
    match object.get(field)? {
        Value::String(s) => notes.date(position, field, s),
        Value::Number(n) => {
            let at = n.as_f64().and_then(|secs| {
                let secs = if secs.abs() >= 1e11 {
                    secs / 1000.0
                } else {
                    secs
                };
                // Whole seconds: feeds give no finer dates that matter.
                #[allow(clippy::cast_possible_truncation)]
                DateTime::from_timestamp(secs.trunc() as i64, 0)
            });
            match at {
                Some(at) => Some(at),
                None => {
                    notes.entry(position, format!("{field} {n} is not a time; ignored"));
                    None
                }
            }
        }
        Value::Null => None,
        other => {
            notes.entry(
                position,
                format!("{field} is a {}, not a date; ignored", kind(other)),
            );
            None
        }
    }
}

/// JSON Feed 1.1 `authors`, or 1.0's single `author`.
fn authors(object: &Map<String, Value>, position: usize, notes: &mut Notes) -> Vec<Byline> {
    let one = |value: &Value| -> Option<Byline> {
        match value {
            Value::Object(author) => {
                let get = |k: &str| {
                    author
                        .get(k)
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                };
                // A byline needs a name; a bare URL or avatar names no one (as in Atom).
                let name = get("name")?;
                let uri = get("url");
                Some(Byline {
                    name,
                    email: None,
                    uri,
                })
            }
            Value::String(name) => super::people::parse_contact(name),
            _ => None,
        }
    };
    match object.get("authors") {
        Some(Value::Array(list)) => return list.iter().filter_map(one).collect(),
        Some(Value::Null) | None => {}
        Some(_) => notes.entry(position, "authors is not a list; ignored".to_owned()),
    }
    object.get("author").and_then(one).into_iter().collect()
}

fn attachment(value: &Value) -> Option<Enclosure> {
    let object = value.as_object()?;
    let url = object.get("url")?.as_str()?.trim();
    if url.is_empty() {
        return None;
    }
    Some(Enclosure {
        url: url.to_owned(),
        media_type: object
            .get("mime_type")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        length: object
            .get("size_in_bytes")
            .and_then(|s| s.as_u64().or_else(|| s.as_str()?.trim().parse().ok()))
            .filter(|l| *l > 0),
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Items read: far more than any feed carries (the parse caps keep the newest thousand), few
/// enough that a document of millions of tiny items stays small in memory.
const MAX_ITEMS: usize = 20_000;

/// The top-level object, with at most [`MAX_ITEMS`] of its `items` read; the rest are skipped
/// without being built.
struct Capped {
    root: Map<String, Value>,
    skipped: usize,
}

impl<'de> serde::Deserialize<'de> for Capped {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RootVisitor)
    }
}

struct RootVisitor;

impl<'de> Visitor<'de> for RootVisitor {
    type Value = Capped;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Capped, A::Error> {
        let mut root = Map::new();
        let mut skipped = 0;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                let (items, more) = map.next_value_seed(ItemsSeed)?;
                skipped += more;
                root.insert(key, items);
            } else {
                root.insert(key, map.next_value()?);
            }
        }
        Ok(Capped { root, skipped })
    }
}

/// `items`: the first [`MAX_ITEMS`] as values and a count of the rest; any other JSON type is
/// kept as it is, for the reader to note.
struct ItemsSeed;

impl<'de> DeserializeSeed<'de> for ItemsSeed {
    type Value = (Value, usize);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(ItemsVisitor)
    }
}

struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = (Value, usize);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while items.len() < MAX_ITEMS {
            match seq.next_element::<Value>()? {
                Some(item) => items.push(item),
                None => return Ok((Value::Array(items), 0)),
            }
        }
        let mut skipped = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            skipped += 1;
        }
        Ok((Value::Array(items), skipped))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok((Value::Object(Map::new()), 0))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok((Value::Bool(v), 0))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok((Value::from(v), 0))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok((Value::from(v), 0))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok((Value::from(v), 0))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok((Value::from(v), 0))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok((Value::Null, 0))
    }
}
