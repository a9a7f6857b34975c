//! The archive as pages to read: the index and its older pages, a page per tag, per source and
//! per month, each article, search, and error pages; rendered from state by minijinja templates
//! (built in, each replaceable by a file of the same name in `[serve] templates`). The daemon
//! serves them; `gazette build --site DIR` writes them as files (see [`build`]).

pub mod build;
mod links;
mod snippet;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use minijinja::Environment;
use serde::Serialize;

use crate::config::{Settings, TagFeeds};
use crate::error::{Error, Result};
use crate::format::format_date;
use crate::model::Section;
use crate::publish::feeds::Feed;
use crate::store::{ArticleRecord, Counted, FeedRow, Selection, Store};
use crate::text::{escape_html, markdown_to_html};
pub use links::Links;

/// Articles on a page of a listing.
pub const PER_PAGE: usize = 20;

/// Results on a page of search.
const RESULTS_PER_PAGE: usize = 20;

/// The built-in templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../../templates/base.html")),
    ("list.html", include_str!("../../../templates/list.html")),
    ("item.html", include_str!("../../../templates/item.html")),
    (
        "directory.html",
        include_str!("../../../templates/directory.html"),
    ),
    (
        "article.html",
        include_str!("../../../templates/article.html"),
    ),
    (
        "search.html",
        include_str!("../../../templates/search.html"),
    ),
    ("error.html", include_str!("../../../templates/error.html")),
];

const STYLE: &str = include_str!("../../../templates/style.css");

/// One of the reader pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// The newest articles, page `n` (from 1).
    Index(usize),
    Tag(String, usize),
    Source(String, usize),
    /// A month (`year`, `month`), page `n`.
    Month(i32, u32, usize),
    Tags,
    Sources,
    Months,
    /// The article archived at this path (`.md`, relative to the archive).
    Article(String),
    /// A query and its page of results.
    Search(String, usize),
}

/// Templates and stylesheet, loaded once.
#[derive(Debug)]
pub struct Site {
    env: Environment<'static>,
    style: String,
}

impl Site {
    /// The built-in templates, with those of `settings.serve.templates` in their place where it
    /// has a file of the same name.
    pub fn load(settings: &Settings) -> Result<Self> {
        let mut env = Environment::new();
        // HTML escaping of the five characters that need it; minijinja's own also writes `/`
        // as `&#x2f;`, which every address would carry.
        env.set_formatter(|out, state, value| {
            if *state.auto_escape() == minijinja::AutoEscape::Html
                && !value.is_safe()
                && !value.is_none()
                && !value.is_undefined()
            {
                let text = value.to_string();
                return out
                    .write_str(&escape_html(&text))
                    .map_err(minijinja::Error::from);
            }
            minijinja::escape_formatter(out, state, value)
        });
        let mut style = STYLE.to_owned();
        let own = settings.serve.templates.as_deref();
        let read = |name: &str| -> Result<Option<String>> {
            let Some(dir) = own else { return Ok(None) };
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(&path, e)),
            }
        };
        for (name, builtin) in TEMPLATES {
            let source = read(name)?.unwrap_or_else(|| (*builtin).to_owned());
            env.add_template_owned(*name, source)
                .map_err(|e| template_error(name, &e))?;
        }
        if let Some(own_style) = read("style.css")? {
            style = own_style;
        }
        Ok(Self { env, style })
    }

    pub fn style(&self) -> &str {
        &self.style
    }

    /// The HTML of `page`, linked by `links`; `None` when there is no such page (an unknown
    /// article or tag, a page number past the end).
    pub async fn render(
        &self,
        settings: &Settings,
        store: &Store,
        page: &Page,
        links: &Links,
    ) -> Result<Option<String>> {
        let titles = source_titles(settings, store).await?;
        let common = Common::new(settings, links);
        match page {
            Page::Index(n) => {
                let heading = settings.feed.title.clone();
                let list = List {
                    heading,
                    description: None,
                    selection: Selection::All,
                    base: String::new(),
                    feed: None,
                    title: None,
                };
                self.list(store, &titles, &common, list, *n).await
            }
            Page::Tag(tag, n) => {
                let list = List {
                    heading: format!("#{tag}"),
                    description: Some(format!("Articles tagged {tag}.")),
                    selection: Selection::Tag(tag),
                    base: format!("tags/{}/", crate::publish::feeds::url_segment(tag)),
                    feed: tag_feed(settings, tag)
                        .then(|| FeedLink::atom(settings, links, Feed::Tag(tag)))
                        .flatten(),
                    title: Some(format!("#{tag}")),
                };
                self.list(store, &titles, &common, list, *n).await
            }
            Page::Source(id, n) => {
                let Some(configured) = settings.sources.iter().find(|s| s.id == *id) else {
                    return Ok(None);
                };
                let title = titles.get(id).cloned().unwrap_or_else(|| id.clone());
                let list = List {
                    description: Some(format!("From {}", configured.location)),
                    heading: title.clone(),
                    selection: Selection::Source(id),
                    base: format!("sources/{}/", crate::publish::feeds::url_segment(id)),
                    feed: settings
                        .feed
                        .source_feeds
                        .then(|| FeedLink::atom(settings, links, Feed::Source(id)))
                        .flatten(),
                    title: Some(title),
                };
                self.list(store, &titles, &common, list, *n).await
            }
            Page::Month(year, month, n) => {
                let Some((from, until)) = month_span(*year, *month) else {
                    return Ok(None);
                };
                let name = from.format("%B %Y").to_string();
                let list = List {
                    heading: name.clone(),
                    description: None,
                    selection: Selection::Dated {
                        from: crate::store::to_millis(&from),
                        until: crate::store::to_millis(&until),
                    },
                    base: format!("archive/{year:04}/{month:02}/"),
                    feed: None,
                    title: Some(name),
                };
                self.list(store, &titles, &common, list, *n).await
            }
            Page::Tags => {
                let entries = store
                    .tag_counts()
                    .await?
                    .into_iter()
                    .map(|Counted { name, count }| Entry {
                        href: links.tag(&name),
                        name: format!("#{name}"),
                        count,
                        note: None,
                    })
                    .collect();
                self.directory(&common, "Tags", entries).map(Some)
            }
            Page::Sources => {
                let counts: HashMap<String, u64> = store
                    .source_counts()
                    .await?
                    .into_iter()
                    .map(|c| (c.name, c.count))
                    .collect();
                let entries = settings
                    .sources
                    .iter()
                    .map(|s| Entry {
                        href: links.source(&s.id),
                        name: titles.get(&s.id).cloned().unwrap_or_else(|| s.id.clone()),
                        count: counts.get(&s.id).copied().unwrap_or(0),
                        note: Some(s.location.to_string()),
                    })
                    .collect();
                self.directory(&common, "Sources", entries).map(Some)
            }
            Page::Months => {
                let entries = store
                    .month_counts()
                    .await?
                    .into_iter()
                    .filter_map(|Counted { name, count }| {
                        let (year, month) = name.split_once('-')?;
                        let (year, month) = (year.parse().ok()?, month.parse().ok()?);
                        let (from, _) = month_span(year, month)?;
                        Some(Entry {
                            href: links.month(year, month),
                            name: from.format("%B %Y").to_string(),
                            count,
                            note: None,
                        })
                    })
                    .collect();
                self.directory(&common, "Archive", entries).map(Some)
            }
            Page::Article(path) => self.article(settings, store, &titles, &common, path).await,
            Page::Search(query, n) => self
                .search(store, &titles, &common, query, *n)
                .await
                .map(Some),
        }
    }

    /// The page shown for an HTTP error: a heading, what happened, and a way back.
    pub fn error(&self, settings: &Settings, links: &Links, status: u16) -> Result<String> {
        let (heading, message) = match status {
            404 => (
                "Not found",
                "There is no page at this address: the article may have been removed, or the link is mistyped.",
            ),
            _ => (
                "Something went wrong",
                "The page could not be made just now. Try again in a moment.",
            ),
        };
        let common = Common::new(settings, links);
        self.html(
            "error.html",
            &Context {
                common: &common,
                title: Some(heading.to_owned()),
                lang: "en".to_owned(),
                body: serde_json::json!({"heading": heading, "message": message}),
            },
        )
    }

    fn html<T: Serialize>(&self, name: &str, context: &Context<'_, T>) -> Result<String> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| template_error(name, &e))?;
        template
            .render(minijinja::Value::from(minijinja::value::Serde(context)))
            .map_err(|e| template_error(name, &e))
    }

    async fn list(
        &self,
        store: &Store,
        titles: &HashMap<String, String>,
        common: &Common,
        list: List<'_>,
        number: usize,
    ) -> Result<Option<String>> {
        let total = store.count(list.selection).await?;
        // A tag no article carries, a month without articles: no such page.
        if total == 0 && matches!(list.selection, Selection::Tag(_) | Selection::Dated { .. }) {
            return Ok(None);
        }
        let count = usize::try_from(total)
            .unwrap_or(usize::MAX)
            .div_ceil(PER_PAGE)
            .max(1);
        if number == 0 || number > count {
            return Ok(None);
        }
        let rows = store
            .page_rows(list.selection, PER_PAGE, (number - 1) * PER_PAGE)
            .await?;
        let items: Vec<Item> = rows
            .iter()
            .map(|row| Item::of_row(row, titles, &common.links))
            .collect();
        let pages = Pages {
            number,
            count,
            newer: (number > 1).then(|| common.links.list_page(&list.base, number - 1)),
            older: (number < count).then(|| common.links.list_page(&list.base, number + 1)),
        };
        let mut feeds = common.feeds.clone();
        feeds.extend(list.feed.clone());
        let common = Common {
            feeds,
            ..common.clone()
        };
        let title = match (list.title, number) {
            (title, 1) => title,
            (Some(title), n) => Some(format!("{title}, page {n}")),
            (None, n) => Some(format!("Page {n}")),
        };
        self.html(
            "list.html",
            &Context {
                common: &common,
                title,
                lang: "en".to_owned(),
                body: serde_json::json!({"heading": list.heading, "description": list.description, "feed": list.feed, "items": items, "pages": pages}),
            },
        )
        .map(Some)
    }

    fn directory(&self, common: &Common, heading: &str, entries: Vec<Entry>) -> Result<String> {
        self.html(
            "directory.html",
            &Context {
                common,
                title: Some(heading.to_owned()),
                lang: "en".to_owned(),
                body: serde_json::json!({"heading": heading, "entries": entries}),
            },
        )
    }

    async fn article(
        &self,
        settings: &Settings,
        store: &Store,
        titles: &HashMap<String, String>,
        common: &Common,
        path: &str,
    ) -> Result<Option<String>> {
        let Some(record) = store.record_by_path(path).await? else {
            return Ok(None);
        };
        let links = &common.links;
        let doc = &record.doc;
        let sections: Vec<SectionView> = doc.sections().map(SectionView::of).collect();
        let (older, newer) = store
            .neighbours(&record.source, &doc.date, &record.path)
            .await?;
        let neighbour = |n: Option<crate::store::Neighbour>| {
            n.map(|n| Named {
                href: links.article(&n.path),
                name: n.title,
            })
        };
        let mut feeds = common.feeds.clone();
        if settings.feed.source_feeds {
            feeds.extend(FeedLink::atom(
                settings,
                links,
                Feed::Source(&record.source),
            ));
        }
        let common = Common {
            feeds,
            ..common.clone()
        };
        let enclosures: Vec<_> = record
            .enclosures
            .iter()
            .map(|e| {
                let name = e
                    .url
                    .rsplit('/')
                    .next()
                    .filter(|file| !file.is_empty())
                    .unwrap_or(&e.url)
                    .to_owned();
                serde_json::json!({"href": e.url, "name": name, "type": e.media_type})
            })
            .collect();
        let lang = doc.original.language.clone();
        self.html(
            "article.html",
            &Context {
                common: &common,
                title: Some(doc.title().to_owned()),
                lang: if lang.is_empty() { "en".to_owned() } else { lang },
                body: serde_json::json!({"source": SourceView {
                        href: links.source(&record.source),
                        title: source_title(titles, &record.source),
                    }, "datetime": format_date(&doc.date), "date": readable_date(&doc.date), "byline": byline_html(&record), "tags": tag_links(&doc.tags, links), "sections": sections, "enclosures": enclosures, "link": doc.link, "markdown": links.markdown(&record.path), "older": neighbour(older), "newer": neighbour(newer)}),
            },
        )
        .map(Some)
    }

    async fn search(
        &self,
        store: &Store,
        titles: &HashMap<String, String>,
        common: &Common,
        query: &str,
        number: usize,
    ) -> Result<String> {
        let number = number.max(1);
        let query = query.trim();
        // One more than a page: whether there is a next one.
        let mut found = store
            .search(query, RESULTS_PER_PAGE + 1, (number - 1) * RESULTS_PER_PAGE)
            .await?;
        let more = found.len() > RESULTS_PER_PAGE;
        found.truncate(RESULTS_PER_PAGE);
        let items: Vec<Item> = found
            .iter()
            .map(|record| {
                let mut item = Item::of_record(record, None, titles, &common.links);
                item.snippet = Some(snippet::of(record, query));
                item
            })
            .collect();
        let page = |n: usize| common.links.search(query, n);
        let pages = Pages {
            number,
            count: if more { number + 1 } else { number },
            newer: (number > 1).then(|| page(number - 1)),
            older: more.then(|| page(number + 1)),
        };
        let common = Common {
            query: query.to_owned(),
            ..common.clone()
        };
        self.html(
            "search.html",
            &Context {
                common: &common,
                title: Some(if query.is_empty() {
                    "Search".to_owned()
                } else {
                    format!("Search: {query}")
                }),
                lang: "en".to_owned(),
                body: serde_json::json!({"items": items, "pages": pages}),
            },
        )
    }
}

fn template_error(name: &str, error: &minijinja::Error) -> Error {
    Error::Config {
        path: std::path::PathBuf::from(name),
        message: format!("template {name}: {error:#}"),
    }
}

/// What a listing shows.
struct List<'a> {
    heading: String,
    description: Option<String>,
    selection: Selection<'a>,
    /// Its address below the root (`tags/world/`), empty for the index.
    base: String,
    feed: Option<FeedLink>,
    /// The page's `<title>`; the site's name alone when `None`.
    title: Option<String>,
}

/// What every page shares.
#[derive(Debug, Clone, Serialize)]
struct Common {
    #[serde(skip)]
    links: Links,
    root: String,
    index: &'static str,
    site: SiteView,
    /// The feeds announced in the head: the merged ones, and the page's own.
    feeds: Vec<FeedLink>,
    query: String,
}

#[derive(Debug, Clone, Serialize)]
struct SiteView {
    title: String,
    search: bool,
    /// The merged feeds, for the footer.
    feeds: Vec<FeedLink>,
}

impl Common {
    fn new(settings: &Settings, links: &Links) -> Self {
        let mut merged: Vec<FeedLink> = FeedLink::atom(settings, links, Feed::Merged)
            .into_iter()
            .collect();
        // The daemon always serves the JSON Feed; a static site has it when `[feed] json`
        // writes it.
        if settings.feed.json || links.is_server() {
            merged.push(FeedLink {
                kind: "application/feed+json",
                title: format!("{} (JSON Feed)", settings.feed.title),
                label: "JSON Feed".to_owned(),
                href: links.feed("feed.json"),
            });
        }
        Self {
            links: links.clone(),
            root: links.root().to_owned(),
            index: links.index(),
            site: SiteView {
                title: settings.feed.title.clone(),
                search: links.has_search(),
                feeds: merged.clone(),
            },
            feeds: merged,
            query: String::new(),
        }
    }
}

/// The template context: what every page shares, the page's own title and language, and its
/// body's values.
#[derive(Serialize)]
struct Context<'a, T: Serialize> {
    #[serde(flatten)]
    common: &'a Common,
    title: Option<String>,
    lang: String,
    #[serde(flatten)]
    body: T,
}

/// A feed announced with `<link rel="alternate">` and linked from the page.
#[derive(Debug, Clone, Serialize)]
struct FeedLink {
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
    label: String,
    href: String,
}

impl FeedLink {
    fn atom(settings: &Settings, links: &Links, feed: Feed<'_>) -> Option<Self> {
        let relative = feed.relative_path(&settings.feed)?;
        let title = match feed {
            Feed::Merged => format!("{} (Atom)", settings.feed.title),
            Feed::Tag(tag) => format!("{} · #{tag} (Atom)", settings.feed.title),
            Feed::Source(id) => format!("{} · {id} (Atom)", settings.feed.title),
        };
        Some(Self {
            kind: "application/atom+xml",
            title,
            label: "Atom".to_owned(),
            href: links.feed(&relative),
        })
    }
}

/// Whether a tag has a feed of its own.
fn tag_feed(settings: &Settings, tag: &str) -> bool {
    match &settings.feed.tag_feeds {
        TagFeeds::Every(every) => *every,
        TagFeeds::Only(tags) => tags.iter().any(|t| t.trim().eq_ignore_ascii_case(tag)),
    }
}

#[derive(Debug, Clone, Serialize)]
struct Named {
    href: String,
    name: String,
}

#[derive(Debug, Serialize)]
struct Entry {
    href: String,
    name: String,
    count: u64,
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct Pages {
    number: usize,
    count: usize,
    newer: Option<String>,
    older: Option<String>,
}

/// An article in a listing.
#[derive(Debug, Serialize)]
struct Item {
    href: String,
    title: String,
    source: SourceView,
    datetime: String,
    date: String,
    tags: Vec<Named>,
    description: String,
    snippet: Option<String>,
}

#[derive(Debug, Serialize)]
struct SourceView {
    href: String,
    title: String,
}

impl Item {
    fn of_row(row: &FeedRow, titles: &HashMap<String, String>, links: &Links) -> Self {
        Self::of_record(&row.record, row.source_title.as_deref(), titles, links)
    }

    fn of_record(
        record: &ArticleRecord,
        feed_title: Option<&str>,
        titles: &HashMap<String, String>,
        links: &Links,
    ) -> Self {
        let doc = &record.doc;
        Self {
            href: links.article(&record.path),
            title: doc.title().to_owned(),
            source: SourceView {
                href: links.source(&record.source),
                title: feed_title
                    .filter(|t| !t.trim().is_empty())
                    .map_or_else(|| source_title(titles, &record.source), str::to_owned),
            },
            datetime: format_date(&doc.date),
            date: readable_date(&doc.date),
            tags: tag_links(&doc.tags, links),
            description: doc.description.clone(),
            snippet: None,
        }
    }
}

/// A section as the article page shows it: its language, the language's own name, its title
/// and its HTML.
#[derive(Debug, Serialize)]
struct SectionView {
    lang: String,
    label: String,
    title: String,
    html: String,
}

impl SectionView {
    fn of(section: &Section) -> Self {
        let lang = if section.language.is_empty() {
            "und".to_owned()
        } else {
            section.language.clone()
        };
        Self {
            label: language_name(&lang),
            lang,
            title: section.title.clone(),
            html: markdown_to_html(&section.body),
        }
    }
}

/// A language's name in that language, for the label above its section.
fn language_name(code: &str) -> String {
    let primary = code
        .split(['-', '_'])
        .next()
        .unwrap_or(code)
        .to_ascii_lowercase();
    let name = match primary.as_str() {
        "zh" => match code.to_ascii_lowercase().as_str() {
            "zh-tw" | "zh-hk" | "zh-hant" => "繁體中文",
            _ => "中文",
        },
        "en" => "English",
        "ja" => "日本語",
        "ko" => "한국어",
        "fr" => "Français",
        "de" => "Deutsch",
        "es" => "Español",
        "it" => "Italiano",
        "pt" => "Português",
        "ru" => "Русский",
        "ar" => "العربية",
        "nl" => "Nederlands",
        "sv" => "Svenska",
        "pl" => "Polski",
        "tr" => "Türkçe",
        "uk" => "Українська",
        "vi" => "Tiếng Việt",
        _ => return code.to_owned(),
    };
    name.to_owned()
}

fn tag_links(tags: &[String], links: &Links) -> Vec<Named> {
    tags.iter()
        .map(|tag| Named {
            href: links.tag(tag),
            name: tag.clone(),
        })
        .collect()
}

fn source_title(titles: &HashMap<String, String>, id: &str) -> String {
    titles.get(id).cloned().unwrap_or_else(|| id.to_owned())
}

/// The byline as HTML: the entry's authors (linked when they have an address), else the
/// source's author key.
fn byline_html(record: &ArticleRecord) -> String {
    let escape = escape_html;
    if record.bylines.is_empty() {
        return escape(&record.doc.author);
    }
    record
        .bylines
        .iter()
        .map(|b| match &b.uri {
            Some(uri) if uri.starts_with("http://") || uri.starts_with("https://") => format!(
                "<a rel=\"author\" href=\"{}\">{}</a>",
                escape(uri),
                escape(&b.name)
            ),
            _ => escape(&b.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `13 May 2024, 09:00 UTC`.
fn readable_date(date: &DateTime<Utc>) -> String {
    date.format("%-d %B %Y, %H:%M UTC").to_string()
}

/// The first instant of a month and of the next one.
fn month_span(year: i32, month: u32) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let at = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    Some((at(first)?, at(next)?))
}

/// Each configured source's title: its feed's own, as state has it, else its id.
async fn source_titles(settings: &Settings, store: &Store) -> Result<HashMap<String, String>> {
    let known: HashMap<String, String> = store
        .source_meta()
        .await?
        .into_iter()
        .filter_map(|(id, (title, _))| Some((id, title?)))
        .collect();
    Ok(settings
        .sources
        .iter()
        .map(|s| {
            let title = known
                .get(&s.id)
                .filter(|t| !t.trim().is_empty())
                .cloned()
                .unwrap_or_else(|| s.id.clone());
            (s.id.clone(), title)
        })
        .collect())
}

/// The passage around the first hit of `query` in `record`, as plain text.
pub fn plain_snippet(record: &ArticleRecord, query: &str) -> String {
    crate::text::html_to_text(&snippet::of(record, query))
}
