//! Adding sources to a config file without disturbing it: comments, order and formatting of
//! what is there stay as the user wrote them.

use std::collections::HashSet;
use std::path::Path;

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use super::Settings;
use crate::error::{Error, Result};

/// A feed to add as a source: named by an OPML outline, found on a page, or given to `add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFeed {
    pub title: String,
    pub url: String,
    /// Folders the outline sits in, and its `category` attribute.
    pub tags: Vec<String>,
    /// The source id a Gazette export gave it (`gazetteId`), kept when imported again.
    pub id: Option<String>,
}

/// What adding feeds did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Added {
    /// Ids of the new sources.
    pub added: Vec<String>,
    /// URLs already configured, left alone.
    pub skipped: Vec<String>,
}

/// Appends `feeds` as `[[sources]]` to the config file at `path`, skipping URLs it already has,
/// and writes it back only if the result is a valid config.
pub fn add_sources(path: &Path, feeds: &[FoundFeed]) -> Result<Added> {
    let config_error = |message: String| Error::Config {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let current = Settings::from_toml(&text, path)?;
    let mut doc: DocumentMut = text.parse().map_err(|e| config_error(format!("{e}")))?;
    let mut ids: HashSet<String> = current.sources.iter().map(|s| s.id.clone()).collect();
    let mut urls: HashSet<String> = current
        .sources
        .iter()
        .map(|s| s.location.to_string())
        .collect();

    if !doc.contains_key("sources") {
        doc.insert("sources", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    let Some(sources) = doc
        .get_mut("sources")
        .and_then(Item::as_array_of_tables_mut)
    else {
        return Err(config_error(
            "`sources` must be an array of tables ([[sources]])".to_owned(),
        ));
    };
    let mut outcome = Added::default();
    for feed in feeds {
        let normalized = url::Url::parse(&feed.url)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| feed.url.clone());
        if !urls.insert(normalized) {
            outcome.skipped.push(feed.url.clone());
            continue;
        }
        let base = suggest_id(feed);
        let id = (1..)
            .map(|n| {
                if n == 1 {
                    base.clone()
                } else {
                    format!("{base}-{n}")
                }
            })
            .find(|candidate| !ids.contains(candidate))
            .unwrap_or(base);
        ids.insert(id.clone());
        let mut table = Table::new();
        table.insert("id", value(id.as_str()));
        table.insert("url", value(feed.url.as_str()));
        if !feed.tags.is_empty() {
            let tags: Array = feed.tags.iter().map(String::as_str).collect();
            table.insert("tags", value(tags));
        }
        sources.push(table);
        outcome.added.push(id);
    }
    let new_text = doc.to_string();
    Settings::from_toml(&new_text, path)?;
    if !outcome.added.is_empty() {
        crate::files::write_atomic_beside(path, new_text.as_bytes())?;
    }
    Ok(outcome)
}

/// Takes the source `id` out of the config file at `path`; the rest of the file (comments
/// included) stays as written. Returns whether the file had it.
pub fn remove_source(path: &Path, id: &str) -> Result<bool> {
    let config_error = |message: String| Error::Config {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut doc: DocumentMut = text.parse().map_err(|e| config_error(format!("{e}")))?;
    let Some(sources) = doc
        .get_mut("sources")
        .and_then(Item::as_array_of_tables_mut)
    else {
        return Ok(false);
    };
    let Some(index) = sources
        .iter()
        .position(|t| t.get("id").and_then(Item::as_str) == Some(id))
    else {
        return Ok(false);
    };
    sources.remove(index);
    let new_text = doc.to_string();
    Settings::from_toml(&new_text, path)?;
    crate::files::write_atomic_beside(path, new_text.as_bytes())?;
    Ok(true)
}

/// A source id for a feed: from its title, else its URL; `[a-z0-9_-]+`, at most 40 characters.
pub fn suggest_id(feed: &FoundFeed) -> String {
    if let Some(id) = feed
        .id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
    {
        return id.to_owned();
    }
    let from_title = crate::text::slug(&feed.title);
    let base = if feed.title.trim().is_empty() || from_title.len() == 12 && !feed.title.is_ascii() {
        let url = url::Url::parse(&feed.url).ok();
        let host = url.as_ref().and_then(|u| {
            u.host_str()
                .map(|h| h.trim_start_matches("www.").to_owned())
        });
        let last = url
            .as_ref()
            .and_then(|u| {
                u.path_segments()?
                    .rev()
                    .find(|s| !s.is_empty())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let stem = last
            .rsplit_once('.')
            .map_or(last.as_str(), |(stem, _)| stem);
        crate::text::slug(&format!("{} {stem}", host.unwrap_or_default()))
    } else {
        from_title
    };
    let mut id: String = base.chars().take(40).collect();
    id = id.trim_matches('-').to_owned();
    if id.is_empty() { "feed".to_owned() } else { id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_titles_or_urls() {
        let feed = |title: &str, url: &str| FoundFeed {
            title: title.to_owned(),
            url: url.to_owned(),
            tags: vec![],
            id: None,
        };
        assert_eq!(
            suggest_id(&feed("Tech Ledger", "https://x.org/a")),
            "tech-ledger"
        );
        assert_eq!(
            suggest_id(&feed("", "https://www.example.org/news/feed.xml")),
            "example-org-feed"
        );
    }

    #[test]
    fn comments_survive_and_known_urls_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gazette.toml");
        let original = "# my feeds, hand-kept\n[feed]\ntitle = \"Mine\" # the title\n\n[[sources]]\nid = \"a\"\nurl = \"https://example.org/a.xml\"\n";
        std::fs::write(&path, original).expect("write");
        let feeds = [
            FoundFeed {
                title: "A again".to_owned(),
                url: "https://example.org/a.xml".to_owned(),
                tags: vec![],
                id: None,
            },
            FoundFeed {
                title: "A".to_owned(),
                url: "https://example.org/other.xml".to_owned(),
                tags: vec!["x".to_owned()],
                id: None,
            },
        ];
        let added = add_sources(&path, &feeds).expect("add");
        assert_eq!(added.added, vec!["a-2"]);
        assert_eq!(added.skipped, vec!["https://example.org/a.xml"]);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with(original), "{text}");
        let settings = Settings::load(&path).expect("valid");
        assert_eq!(settings.sources[1].tags, vec!["x"]);

        assert!(remove_source(&path, "a").expect("remove"));
        assert!(!remove_source(&path, "a").expect("gone already"));
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.starts_with("# my feeds, hand-kept\n[feed]\ntitle = \"Mine\" # the title\n"),
            "{text}"
        );
        let settings = Settings::load(&path).expect("valid");
        let ids: Vec<&str> = settings.sources.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a-2"]);
    }
}
