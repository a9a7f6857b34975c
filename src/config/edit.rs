//! Adding sources to a config file without disturbing it: comments, order and formatting of
//! what is there stay as the user wrote them.

use std::collections::HashSet;
use std::path::Path;

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use super::Settings;
use crate::error::{Error, Result};
use crate::opml::{FoundFeed, suggest_id};

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
        crate::publish::write_atomic(path, new_text.as_bytes())?;
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
    crate::publish::write_atomic(path, new_text.as_bytes())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            },
            FoundFeed {
                title: "A".to_owned(),
                url: "https://example.org/other.xml".to_owned(),
                tags: vec!["x".to_owned()],
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
