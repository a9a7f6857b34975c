//! `gazette build --site DIR`: the reader pages as plain files, linked relatively, for any
//! static host or none (opened from disk); with the stylesheet and the feeds they announce.
//! A file whose bytes would not change is not written again.

use std::path::{Path, PathBuf};

use super::links::article_file;
use super::{Links, PER_PAGE, Page, Site};
use crate::config::{Settings, TagFeeds};
use crate::error::{Error, Result};
use crate::files;
use crate::publish::feeds::{self, Feed, file_safe};
use crate::store::{Selection, Store};

/// Files written per trip to the blocking pool.
const BATCH: usize = 200;

/// What a build did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    /// Files the site holds.
    pub files: usize,
    /// Of those, the ones written (new or changed).
    pub written: usize,
    /// Pages of an earlier build that this one no longer makes, deleted.
    pub removed: usize,
}

/// The folders of the site that are Gazette's: a page in them that a build no longer writes
/// (an article removed, a tag gone, fewer pages) is deleted.
const OWNED: &[&str] = &["articles", "tags", "sources", "archive", "page"];

/// Files on their way to the disk, written a batch at a time off the async threads.
struct Writer {
    dir: PathBuf,
    pending: Vec<(PathBuf, Vec<u8>)>,
    built: Built,
    /// Every file this build wrote or found current.
    made: std::collections::HashSet<PathBuf>,
}

impl Writer {
    async fn add(&mut self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.dir.join(relative);
        self.made.insert(path.clone());
        self.pending.push((path, bytes));
        self.built.files += 1;
        if self.pending.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.pending);
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || {
            let mut written = 0;
            for (path, bytes) in batch {
                if files::write_atomic_deferred(&dir, &path, &bytes)? {
                    written += 1;
                }
            }
            Ok::<usize, Error>(written)
        })
        .await
        .map_err(|e| Error::io(&self.dir, std::io::Error::other(e)))??;
        self.built.written += written;
        Ok(())
    }
}

/// A listing's folder, what it selects, and its page `n`.
type Listing<'a> = (String, Selection<'a>, Box<dyn Fn(usize) -> Page>);

/// Writes the whole site into `dir`.
pub async fn write_site(settings: &Settings, store: &Store, dir: &Path) -> Result<Built> {
    let site = Site::load(settings)?;
    let mut out = Writer {
        dir: dir.to_path_buf(),
        pending: Vec::new(),
        built: Built::default(),
        made: std::collections::HashSet::new(),
    };
    out.add("style.css", site.style().as_bytes().to_vec())
        .await?;
    let not_found = site.error(settings, &Links::file("404.html"), 404)?;
    out.add("404.html", not_found.into_bytes()).await?;

    // Listings, each page of each.
    let mut listings: Vec<Listing<'_>> =
        vec![(String::new(), Selection::All, Box::new(Page::Index))];
    let tags: Vec<String> = store
        .tag_counts()
        .await?
        .into_iter()
        .map(|c| c.name)
        .filter(|tag| file_safe(tag))
        .collect();
    for tag in &tags {
        let owned = tag.clone();
        listings.push((
            format!("tags/{tag}/"),
            Selection::Tag(tag),
            Box::new(move |n| Page::Tag(owned.clone(), n)),
        ));
    }
    for source in &settings.sources {
        let id = source.id.clone();
        listings.push((
            format!("sources/{}/", source.id),
            Selection::Source(&source.id),
            Box::new(move |n| Page::Source(id.clone(), n)),
        ));
    }
    let months = store.month_counts().await?;
    let mut spans = Vec::new();
    for month in &months {
        let Some((year, number)) = month
            .name
            .split_once('-')
            .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)))
        else {
            continue;
        };
        spans.push((year, number, month.count));
    }
    for (base, selection, page) in &listings {
        let count = store.count(*selection).await?;
        let pages = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .div_ceil(PER_PAGE)
            .max(1);
        for n in 1..=pages {
            write_listing_page(&site, settings, store, &mut out, base, page(n), n).await?;
        }
    }
    for (year, month, count) in spans {
        let pages = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .div_ceil(PER_PAGE)
            .max(1);
        let base = format!("archive/{year:04}/{month:02}/");
        for n in 1..=pages {
            let page = Page::Month(year, month, n);
            write_listing_page(&site, settings, store, &mut out, &base, page, n).await?;
        }
    }
    for (page, file) in [
        (Page::Tags, "tags/index.html"),
        (Page::Sources, "sources/index.html"),
        (Page::Months, "archive/index.html"),
    ] {
        if let Some(html) = site
            .render(settings, store, &page, &Links::file(file))
            .await?
        {
            out.add(file, html.into_bytes()).await?;
        }
    }

    // Every article.
    let mut after = String::new();
    loop {
        let records = store.records_after(&after, BATCH, None, false).await?;
        let Some(last) = records.last() else { break };
        after = last.path.clone();
        for record in &records {
            let file = decoded(&article_file(&record.path));
            let page = Page::Article(record.path.clone());
            if let Some(html) = site
                .render(settings, store, &page, &Links::file(&file))
                .await?
            {
                out.add(&file, html.into_bytes()).await?;
            }
        }
    }

    // The feeds the pages announce and link to.
    let config = &settings.feed;
    let (merged, items) = feeds::atom(settings, store, Feed::Merged).await?;
    if let Some(relative) = Feed::Merged.relative_path(config) {
        out.add(&relative, merged).await?;
    }
    if config.json {
        out.add("feed.json", feeds::render_json(config, &items))
            .await?;
    }
    let tag_feeds: Vec<&String> = match &config.tag_feeds {
        TagFeeds::Every(true) => tags.iter().collect(),
        TagFeeds::Every(false) => Vec::new(),
        TagFeeds::Only(only) => tags
            .iter()
            .filter(|t| only.iter().any(|o| o.trim().eq_ignore_ascii_case(t)))
            .collect(),
    };
    let source_feeds: Vec<&str> = if config.source_feeds {
        settings.sources.iter().map(|s| s.id.as_str()).collect()
    } else {
        Vec::new()
    };
    let others = tag_feeds
        .into_iter()
        .map(|t| Feed::Tag(t))
        .chain(source_feeds.into_iter().map(Feed::Source));
    for feed in others {
        if let Some(relative) = feed.relative_path(config) {
            let (bytes, _) = feeds::atom(settings, store, feed).await?;
            out.add(&relative, bytes).await?;
        }
    }
    out.flush().await?;
    let made = std::mem::take(&mut out.made);
    let root = dir.to_path_buf();
    out.built.removed = tokio::task::spawn_blocking(move || remove_stale(&root, &made))
        .await
        .map_err(|e| Error::io(dir, std::io::Error::other(e)))??;
    if out.built.written > 0 || out.built.removed > 0 {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || files::sync_filesystem(&dir))
            .await
            .map_err(|e| Error::io(&out.dir, std::io::Error::other(e)))??;
    }
    Ok(out.built)
}

async fn write_listing_page(
    site: &Site,
    settings: &Settings,
    store: &Store,
    out: &mut Writer,
    base: &str,
    page: Page,
    n: usize,
) -> Result<()> {
    let file = if n <= 1 {
        format!("{base}index.html")
    } else {
        format!("{base}page/{n}/index.html")
    };
    if let Some(html) = site
        .render(settings, store, &page, &Links::file(&file))
        .await?
    {
        out.add(&file, html.into_bytes()).await?;
    }
    Ok(())
}

/// A page's address as the file it is: percent-encoding undone.
fn decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Deletes the pages (`.html`) and feeds (`.xml`) in the site's own folders that this build did
/// not make, and the folders they leave empty; returns how many files.
fn remove_stale(root: &Path, made: &std::collections::HashSet<PathBuf>) -> Result<usize> {
    fn walk(dir: &Path, made: &std::collections::HashSet<PathBuf>, gone: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, made, gone);
            } else if path.extension().is_some_and(|e| e == "html" || e == "xml")
                && !made.contains(&path)
            {
                gone.push(path);
            }
        }
    }
    let mut gone = Vec::new();
    for folder in OWNED {
        walk(&root.join(folder), made, &mut gone);
    }
    let relative: Vec<String> = gone
        .iter()
        .filter_map(|p| p.strip_prefix(root).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files::remove_all(root, &relative)
}
