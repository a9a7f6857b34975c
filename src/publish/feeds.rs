//! The published feeds: the merged one, and those of one tag or one source, each with its own
//! id, title and address so that a feed reader subscribed to several sees several feeds. All of
//! them are built from state alone; the archive files are never read back.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use tracing::warn;

use super::atom::{self, FeedItem, Head, SourceInfo};
use super::json_feed;
use crate::config::{FeedConfig, Settings, TagFeeds};
use crate::error::{Error, Result};
use crate::store::{FeedRow, Selection, Store};

/// One of the published feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed<'a> {
    Merged,
    Tag(&'a str),
    Source(&'a str),
}

impl<'a> Feed<'a> {
    pub fn selection(self) -> Selection<'a> {
        match self {
            Feed::Merged => Selection::All,
            Feed::Tag(tag) => Selection::Tag(tag),
            Feed::Source(id) => Selection::Source(id),
        }
    }

    /// Where the feed lives relative to the merged feed's folder, which is also its address
    /// relative to the server's root: `atom.xml`, `tags/world.xml`, `sources/ft.xml`. `None`
    /// for a name no file can have.
    pub fn relative_path(self, config: &FeedConfig) -> Option<String> {
        match self {
            Feed::Merged => Some(config.path.file_name().map_or_else(
                || "atom.xml".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            )),
            Feed::Tag(tag) => file_safe(tag).then(|| format!("tags/{tag}.xml")),
            Feed::Source(id) => file_safe(id).then(|| format!("sources/{id}.xml")),
        }
    }

    /// The feed's id, title and self link. `source_title` names a source's feed.
    pub fn head(self, config: &FeedConfig, source_title: Option<&str>) -> Head {
        let merged = Head::merged(config);
        let (kind, name) = match self {
            Feed::Merged => return merged,
            Feed::Tag(tag) => ("tag", tag),
            Feed::Source(id) => ("source", id),
        };
        let title = match self {
            Feed::Tag(tag) => format!("{} · #{tag}", config.title),
            _ => format!("{} · {}", config.title, source_title.unwrap_or(name)),
        };
        let folder = if kind == "tag" { "tags" } else { "sources" };
        Head {
            // A name-based UUID: stable across runs and machines, and distinct per feed.
            id: uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_URL,
                format!("{}\n{kind}\n{name}", config.id).as_bytes(),
            )
            .urn()
            .to_string(),
            title,
            self_url: sibling_url(
                &config.self_url,
                &format!("{folder}/{}.xml", url_segment(name)),
            ),
        }
    }
}

/// A tag or source id as a file name: no separators, nothing hidden, nothing a file system
/// refuses.
pub(crate) fn file_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}

pub(crate) fn url_segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `relative` next to the merged feed's address: `http://h/atom.xml` + `feed.json` is
/// `http://h/feed.json`.
pub fn sibling_url(self_url: &str, relative: &str) -> String {
    match self_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{relative}"),
        None => format!("/{relative}"),
    }
}

/// The JSON Feed's address.
pub fn json_url(config: &FeedConfig) -> String {
    sibling_url(&config.self_url, "feed.json")
}

/// The newest `feed.max_entries` articles of a feed, newest first.
pub async fn items(settings: &Settings, store: &Store, feed: Feed<'_>) -> Result<Vec<FeedItem>> {
    let rows = store
        .feed_rows(feed.selection(), settings.feed.max_entries)
        .await?;
    Ok(rows.into_iter().map(item).collect())
}

fn item(row: FeedRow) -> FeedItem {
    let FeedRow {
        record,
        source_feed_id,
        source_title,
        source_link,
    } = row;
    let source_id = record.source;
    FeedItem {
        atom_id: record.atom_id,
        doc: record.doc,
        updated: record.updated_at,
        path: record.path,
        source: SourceInfo {
            id: source_feed_id.unwrap_or_else(|| format!("urn:gazette:source:{source_id}")),
            title: source_title.unwrap_or_else(|| source_id.clone()),
            link: source_link,
            key: source_id,
        },
        bylines: record.bylines,
        enclosures: record.enclosures,
    }
}

/// A feed's Atom document: its items from state, under its own head.
pub async fn atom(
    settings: &Settings,
    store: &Store,
    feed: Feed<'_>,
) -> Result<(Vec<u8>, Vec<FeedItem>)> {
    let (head, items) = head_and_items(settings, store, feed).await?;
    Ok((atom::render(&settings.feed, &head, &items), items))
}

/// What a feed's Atom document is made of: its head and its items from state.
async fn head_and_items(
    settings: &Settings,
    store: &Store,
    feed: Feed<'_>,
) -> Result<(Head, Vec<FeedItem>)> {
    let items = items(settings, store, feed).await?;
    // A source's feed is named after the source feed's own title, whatever its entries are.
    let source_title = match feed {
        Feed::Source(id) => store.feed_title(id).await?,
        _ => None,
    };
    Ok((feed.head(&settings.feed, source_title.as_deref()), items))
}

/// The merged feed's entries as a JSON Feed.
pub fn render_json(config: &FeedConfig, items: &[FeedItem]) -> Vec<u8> {
    json_feed::render(config, &config.title, &json_url(config), items)
}

/// The feed files a run writes: the merged feed, and what `[feed]` asks for besides.
#[derive(Debug, Default)]
pub struct Written {
    /// Files whose bytes changed.
    pub changed: Vec<PathBuf>,
}

/// Writes every configured feed file from state. Refuses, writing nothing, to replace the
/// merged feed by a much shorter one while the archive holds articles state does not know:
/// that is a lost or damaged state database, which `gazette rebuild` recovers.
///
/// A feed whose inputs (its settings, head and entries, and this build of Gazette) have the
/// same digest as when its file was last written, and whose file is still there, is not
/// rendered again: rendering is most of what a run that found nothing new costs.
pub async fn write_all(settings: &Settings, store: &Store) -> Result<Written> {
    let config = &settings.feed;
    let folder = settings
        .feed_path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let tags = match &config.tag_feeds {
        TagFeeds::Every(false) => Vec::new(),
        TagFeeds::Every(true) => store.tags().await?,
        // Tags are stored as normalized: trimmed and lowercased.
        TagFeeds::Only(tags) => tags.iter().map(|t| t.trim().to_lowercase()).collect(),
    };
    let sources: Vec<String> = if config.source_feeds {
        settings.sources.iter().map(|s| s.id.clone()).collect()
    } else {
        Vec::new()
    };
    let mut others = Vec::new();
    for feed in tags
        .iter()
        .map(|t| Feed::Tag(t))
        .chain(sources.iter().map(|s| Feed::Source(s)))
    {
        match feed.relative_path(config) {
            Some(relative) => others.push((feed, folder.join(relative))),
            None => warn!(
                ?feed,
                "no feed file for this name: it cannot be a file name"
            ),
        }
    }
    let json_path = config.json.then(|| folder.join("feed.json"));
    let mut paths: Vec<PathBuf> = vec![settings.feed_path.clone()];
    paths.extend(json_path.clone());
    paths.extend(others.iter().map(|(_, path)| path.clone()));
    let mut plan = Plan::new(store, config, paths).await?;

    let (head, merged) = head_and_items(settings, store, Feed::Merged).await?;
    let atom_digest = plan.digest("atom", &head, &merged);
    if plan.stale(&settings.feed_path, &atom_digest) {
        guard_against_shrinking(settings, store, merged.len()).await?;
        plan.render(&settings.feed_path, atom_digest, || {
            atom::render(config, &head, &merged)
        });
    }
    if let Some(path) = json_path {
        let digest = plan.digest("json", &head, &merged);
        if plan.stale(&path, &digest) {
            plan.render(&path, digest, || render_json(config, &merged));
        }
    }
    drop(merged);
    for (feed, path) in others {
        let (head, items) = head_and_items(settings, store, feed).await?;
        let digest = plan.digest("atom", &head, &items);
        if plan.stale(&path, &digest) {
            plan.render(&path, digest, || atom::render(config, &head, &items));
        }
    }
    let Plan {
        stored,
        current,
        files,
        digests,
        ..
    } = plan;
    let current_keys: HashSet<String> = current.iter().map(|path| key(path)).collect();
    let gone: Vec<String> = stored
        .into_keys()
        .filter(|stored| !current_keys.contains(stored))
        .collect();
    let written = tokio::task::spawn_blocking(move || write_files(&folder, &current, files))
        .await
        .map_err(|e| Error::io(&settings.feed_path, std::io::Error::other(e)))??;
    store.set_feed_digests(&digests, &gone).await?;
    Ok(written)
}

/// Which feed files a run renders, and what it renders them from.
struct Plan {
    /// Digests as state holds them, by path.
    stored: HashMap<String, String>,
    /// Every feed file the settings ask for, rendered now or not.
    current: HashSet<PathBuf>,
    /// Those of `current` that are on disk.
    present: HashSet<PathBuf>,
    /// Identifies the build and the feed settings, part of every digest.
    inputs: String,
    files: Vec<(PathBuf, Vec<u8>)>,
    digests: Vec<(String, String)>,
}

impl Plan {
    async fn new(store: &Store, config: &FeedConfig, paths: Vec<PathBuf>) -> Result<Self> {
        let stored = store.feed_digests().await?;
        let (present, build) = tokio::task::spawn_blocking(move || {
            let present: HashSet<PathBuf> = paths.into_iter().filter(|p| p.is_file()).collect();
            (present, build_identity())
        })
        .await
        .map_err(|e| Error::io(&config.path, std::io::Error::other(e)))?;
        Ok(Self {
            stored,
            current: HashSet::new(),
            present,
            inputs: format!("{build}\n{config:?}"),
            files: Vec::new(),
            digests: Vec::new(),
        })
    }

    /// What a feed file is rendered from. `DefaultHasher::new()` hashes the same inputs the
    /// same way in every run of one build; another build renders everything once anyway.
    fn digest(&self, kind: &str, head: &Head, items: &[FeedItem]) -> String {
        let mut hasher = std::hash::DefaultHasher::new();
        self.inputs.hash(&mut hasher);
        kind.hash(&mut hasher);
        head.hash(&mut hasher);
        items.hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    /// Whether `path` must be rendered: it is missing, or was written from other inputs.
    fn stale(&mut self, path: &Path, digest: &str) -> bool {
        self.current.insert(path.to_path_buf());
        !self.present.contains(path)
            || self.stored.get(&key(path)).map(String::as_str) != Some(digest)
    }

    fn render(&mut self, path: &Path, digest: String, bytes: impl FnOnce() -> Vec<u8>) {
        self.files.push((path.to_path_buf(), bytes()));
        self.digests.push((key(path), digest));
    }
}

/// How state names a feed file.
fn key(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// This build of Gazette: its version and its executable's size and time, so that a new
/// build, which may render differently, renders every feed again.
fn build_identity() -> String {
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| format!("{} {:?}", m.len(), m.modified().ok()))
        .unwrap_or_default();
    format!("{} {exe}", env!("CARGO_PKG_VERSION"))
}

/// Writes the feed files, then deletes the tag and source feeds that are no longer written (a
/// removed source, a tag no live article carries, an option turned off), so no file goes on
/// showing what left the feeds. `tags/` and `sources/` beside the merged feed are Gazette's.
fn write_files(
    folder: &Path,
    current: &HashSet<PathBuf>,
    files: Vec<(PathBuf, Vec<u8>)>,
) -> Result<Written> {
    let mut written = Written::default();
    for (path, bytes) in files {
        if crate::files::write_atomic(folder, &path, &bytes)? {
            written.changed.push(path);
        }
    }
    for sub in ["tags", "sources"] {
        let Ok(entries) = std::fs::read_dir(folder.join(sub)) else {
            continue;
        };
        let stale = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "xml") && !current.contains(p));
        for path in stale {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            written.changed.push(path);
        }
    }
    Ok(written)
}

/// Entries in a published Atom feed (0 when there is none).
fn published_entries(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |bytes| {
        bytes.windows(7).filter(|w| w == b"<entry>").count()
    })
}

async fn guard_against_shrinking(settings: &Settings, store: &Store, new: usize) -> Result<()> {
    let path = settings.feed_path.clone();
    let old = tokio::task::spawn_blocking(move || published_entries(&path))
        .await
        .unwrap_or(0);
    // Fewer entries than half of what is published: a source removed or articles pruned can
    // do that; a state database that lost its articles does it while their files remain.
    if old == 0 || new * 2 >= old {
        return Ok(());
    }
    let unknown = unknown_files(settings, store).await?;
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{}: not replaced: it would go from {old} entries to {new} while the archive {} holds {} \
         articles that the state database does not know (for example {}); the state was lost or \
         replaced: run `gazette rebuild` to recover it from the archive",
        settings.feed_path.display(),
        settings.archive_dir.display(),
        unknown.len(),
        unknown[0],
    )))
}

/// Archive files that state knows nothing of (removed sources' files are known).
pub async fn unknown_files(settings: &Settings, store: &Store) -> Result<Vec<String>> {
    let known = store.all_paths().await?;
    let dir = settings.archive_dir.clone();
    let files = tokio::task::spawn_blocking(move || crate::format::list_files(&dir))
        .await
        .map_err(|e| Error::io(&settings.archive_dir, std::io::Error::other(e)))??;
    Ok(files.into_iter().filter(|f| !known.contains(f)).collect())
}
