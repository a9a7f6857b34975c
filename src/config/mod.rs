//! Configuration: the TOML file as written ([`ConfigFile`]) and the checked [`Settings`] the rest
//! of the program runs on.
//!
//! Relative paths in a config file resolve against the file's folder, not the working directory,
//! so that the same file works from cron, systemd or an interactive shell.

use locate::Step;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result};
use units::{byte_size, duration, optional_duration};

mod content;
pub mod edit;
mod enrich;
mod locate;
mod serve;
mod units;

pub use serve::ServeConfig;

use crate::format::{Labels, PathTemplate};
pub use content::{Extract, ExtractConfig, Filters, FiltersConfig, RewriteConfig, Rewrites};
pub use enrich::{EnrichConfig, EnrichMode, Provider};

/// The config file exactly as written; every field has a default and unknown keys are errors.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    pub archive: ArchiveConfig,
    pub feed: FeedConfig,
    pub state: StateConfig,
    pub fetch: FetchConfig,
    pub enrich: EnrichConfig,
    pub serve: ServeConfig,
    /// Filters for every source, before each source's own.
    pub filters: FiltersConfig,
    /// Link labels by language, on top of the built-in `zh` and `en` ones.
    pub labels: BTreeMap<String, String>,
    pub sources: Vec<SourceConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    pub dir: PathBuf,
    /// The same article from two sources (by canonical link) is archived once.
    pub dedupe: bool,
    /// Placeholders: `{source}`, `{yyyy}`, `{mm}`, `{dd}`, `{slug}`.
    pub path_template: String,
    /// Also write the entry's `guid` and `link` in the front matter (after `author`, as the
    /// format allows), so that `gazette rebuild` recovers every identity exactly.
    pub identity_keys: bool,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("archive"),
            dedupe: true,
            path_template: "{source}/{yyyy}/{mm}/{dd}/{slug}.md".to_owned(),
            identity_keys: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    pub path: PathBuf,
    pub title: String,
    pub id: String,
    pub self_url: String,
    pub max_entries: usize,
    /// The feed-level author; entries carry their source's author.
    pub author: String,
    /// WebSub hubs announced in the feed and pinged when it changes.
    pub hubs: Vec<String>,
    /// A command run after each change of the feed (for example a git commit and push of the
    /// archive); its failure is logged, never fatal.
    pub on_publish: Vec<String>,
    /// Also write the JSON Feed (`feed.json`) next to the merged feed.
    pub json: bool,
    /// Also write a feed per tag (`tags/TAG.xml` next to the merged feed): `true` for every
    /// tag, or a list of tags.
    pub tag_feeds: TagFeeds,
    /// Also write a feed per source (`sources/ID.xml` next to the merged feed).
    pub source_feeds: bool,
}

/// Which tags get a feed file of their own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TagFeeds {
    Every(bool),
    Only(Vec<String>),
}

impl Default for TagFeeds {
    fn default() -> Self {
        Self::Every(false)
    }
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("public/atom.xml"),
            title: "Gazette".to_owned(),
            id: "urn:uuid:3c5e3b8e-8f3a-4d7c-9a55-6a0f0c2b9d11".to_owned(),
            self_url: "http://localhost:8080/atom.xml".to_owned(),
            max_entries: 50,
            author: "Gazette".to_owned(),
            hubs: Vec::new(),
            on_publish: Vec::new(),
            json: false,
            tag_feeds: TagFeeds::default(),
            source_feeds: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    pub url: String,
    /// How long a writer waits for another one (the daemon, another `fetch`) to finish.
    #[serde(with = "duration")]
    pub lock_timeout: Duration,
    /// Fetched article pages older than this are dropped from state (`0s`: kept forever).
    #[serde(with = "duration")]
    pub keep_pages: Duration,
    /// Cached LLM answers older than this are dropped (`0s`: kept forever). Archived articles
    /// keep their sections in their records; the cache only saves a re-fetch from paying again.
    #[serde(with = "duration")]
    pub keep_answers: Duration,
    /// How long a worker's claim on a source or an enrichment lasts unless renewed: a worker
    /// that dies costs at most this long, and a standby publisher takes over within it.
    #[serde(with = "duration")]
    pub lease: Duration,
    /// How often an idle worker looks for due work, and a standby publisher for the lock.
    #[serde(with = "duration")]
    pub poll: Duration,
}

impl Default for StateConfig {
    fn default() -> Self {
        const DAY: u64 = 24 * 60 * 60;
        Self {
            url: "sqlite://state/gazette.db".to_owned(),
            lock_timeout: Duration::from_secs(60),
            keep_pages: Duration::from_secs(90 * DAY),
            keep_answers: Duration::from_secs(365 * DAY),
            lease: Duration::from_secs(120),
            poll: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Requests in flight at once, over all hosts.
    pub concurrency: usize,
    /// Requests in flight at once to one host.
    pub per_host: usize,
    /// The whole request, body included: a server that trickles bytes cannot hold a fetch open.
    #[serde(with = "duration")]
    pub timeout: Duration,
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Longest silence while reading a response.
    #[serde(with = "duration")]
    pub read_timeout: Duration,
    /// A `fetch` run stops waiting for sources after this long; unfinished ones count as failed.
    #[serde(with = "duration")]
    pub run_deadline: Duration,
    /// Largest response body, counted after decompression.
    #[serde(with = "byte_size")]
    pub max_body: u64,
    /// Entries kept from one fetch (the newest).
    pub max_entries: usize,
    /// Longest text field (title, summary, content) kept from an entry.
    #[serde(with = "byte_size")]
    pub max_field: u64,
    /// Deepest XML element nesting accepted.
    pub max_depth: usize,
    pub max_redirects: usize,
    /// Default time between fetches of a source.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Upper bound for failure back-off and for the delay a feed may ask for.
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    /// A source failing for longer than this is reported by every `fetch` (and makes it exit
    /// 3), even when it is backing off and was not fetched.
    #[serde(with = "duration")]
    pub alert_after: Duration,
    /// Which of the feed's own requests about polling frequency are honoured.
    pub honor_ttl: bool,
    pub honor_sy_update: bool,
    pub honor_cache_control: bool,
    pub honor_expires: bool,
    /// Overrides the default `Gazette/<version>` User-Agent.
    pub user_agent: Option<String>,
    /// Address ranges (CIDR) that content-driven fetches may reach although private or loopback.
    #[serde(deserialize_with = "address_ranges")]
    pub allow_private: Vec<IpNet>,
}

/// `fetch.allow_private`: CIDR ranges (`10.0.0.0/8`, `::1/128`) or single addresses.
fn address_ranges<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| parse_address_range(text))
        .collect::<std::result::Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

/// A CIDR range, or a bare address as the range of that one address (`/32`, `/128`).
fn parse_address_range(text: &str) -> std::result::Result<IpNet, String> {
    let trimmed = text.trim();
    trimmed
        .parse::<IpNet>()
        .or_else(|e| trimmed.parse::<IpAddr>().map(IpNet::from).map_err(|_| e))
        .map_err(|e| {
            format!(
                "fetch.allow_private: {text:?} is not an IP address or CIDR range such as \
                 10.0.0.0/8 or ::1/128 ({e})"
            )
        })
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            per_host: 2,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(15),
            run_deadline: Duration::from_secs(15 * 60),
            max_body: 16 * 1024 * 1024,
            max_entries: 1000,
            max_field: 1024 * 1024,
            max_depth: 256,
            max_redirects: 5,
            interval: Duration::from_secs(30 * 60),
            max_backoff: Duration::from_secs(24 * 60 * 60),
            alert_after: Duration::from_secs(24 * 60 * 60),
            honor_ttl: true,
            honor_sy_update: true,
            honor_cache_control: true,
            honor_expires: true,
            user_agent: None,
            allow_private: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub id: String,
    pub url: String,
    pub author: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub language: Option<String>,
    /// Whether the entries' own categories become tags (after the configured ones).
    pub category_tags: Option<bool>,
    /// Time between fetches of this source; default `fetch.interval`.
    #[serde(default, with = "optional_duration")]
    pub interval: Option<Duration>,
    /// For sites that only answer some clients.
    pub user_agent: Option<String>,
    /// Extra request headers (cookies, authorization).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `false` keeps this source's articles out of enrichment.
    pub enrich: Option<bool>,
    /// What identifies an entry of this source across fetches.
    #[serde(default)]
    pub identity: Identity,
    /// Fetch each article's page and take its text from there.
    pub extract: Option<ExtractConfig>,
    #[serde(default)]
    pub filters: FiltersConfig,
    #[serde(default)]
    pub rewrite: RewriteConfig,
}

/// What identifies an entry of a source across fetches, so that one story is archived once
/// however its feed presents it again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// The guid (or Atom id), else the link, else a hash of the title and date.
    #[default]
    Auto,
    /// The guid; an entry without one is known by a hash of its title and date, never by a
    /// link (for feeds whose links change and guids do not).
    Guid,
    /// The link, normalised (scheme and host case, default port, tracking parameters such as
    /// `utm_*`, a trailing slash, the fragment); without one, as `auto` (for feeds that change
    /// guids, or add tracking parameters).
    Link,
    /// The title and text, whatever the guid and link (for feeds that change both).
    Content,
}

impl Identity {
    pub fn as_str(self) -> &'static str {
        match self {
            Identity::Auto => "auto",
            Identity::Guid => "guid",
            Identity::Link => "link",
            Identity::Content => "content",
        }
    }
}

/// Where a source's feed comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Http(Url),
    File(PathBuf),
}

impl Location {
    /// `http(s)://` and `file://` URLs as they are; anything else is a path, relative to `base`.
    pub fn parse(raw: &str, base: &Path) -> std::result::Result<Self, String> {
        if let Some((scheme, _)) = raw.split_once("://") {
            let url = Url::parse(raw).map_err(|e| format!("invalid URL {raw:?}: {e}"))?;
            return match scheme.to_ascii_lowercase().as_str() {
                "http" | "https" => Ok(Location::Http(url)),
                "file" => url
                    .to_file_path()
                    .map(Location::File)
                    .map_err(|()| format!("invalid file URL {raw:?}")),
                other => Err(format!(
                    "unsupported URL scheme {other:?} in {raw:?}; use http, https, file or a path"
                )),
            };
        }
        if raw.trim().is_empty() {
            return Err("url is empty".to_owned());
        }
        Ok(Location::File(base.join(raw)))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Http(url) => write!(f, "{url}"),
            Location::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A source, checked and with its defaults applied.
#[derive(Debug, Clone)]
pub struct Source {
    pub id: String,
    pub location: Location,
    pub author: String,
    pub tags: Vec<String>,
    /// `None` means: the feed's own language, else `en`.
    pub language: Option<String>,
    pub category_tags: bool,
    pub interval: Duration,
    pub user_agent: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Whether this source's articles are enriched (when enrichment is configured).
    pub enrich: bool,
    pub identity: Identity,
    pub extract: Option<Extract>,
    pub filters: Filters,
    pub rewrites: Rewrites,
}

impl Source {
    /// A source outside any config file, with every default (for `preview`).
    pub fn adhoc(id: &str, location: Location) -> Self {
        Self {
            id: id.to_owned(),
            location,
            author: id.to_owned(),
            tags: Vec::new(),
            language: None,
            category_tags: true,
            interval: FetchConfig::default().interval,
            user_agent: None,
            headers: Vec::new(),
            enrich: true,
            identity: Identity::Auto,
            extract: None,
            filters: Filters::default(),
            rewrites: Rewrites::default(),
        }
    }
}

/// Everything the program needs, checked and resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    pub archive_dir: PathBuf,
    pub path_template: PathTemplate,
    pub dedupe: bool,
    /// Front matter also names the entry's guid and link.
    pub identity_keys: bool,
    pub feed: FeedConfig,
    pub feed_path: PathBuf,
    pub state_url: String,
    pub fetch: FetchConfig,
    pub enrich: EnrichConfig,
    pub serve: ServeConfig,
    /// The SQLite file `state_url` names, beside which the one writer's lock lives; `None`
    /// for PostgreSQL, where the lock is the database's own.
    pub state_file: Option<PathBuf>,
    pub lock_timeout: Duration,
    /// How long fetched pages and cached answers are kept (zero: forever).
    pub keep_pages: Duration,
    pub keep_answers: Duration,
    /// See [`StateConfig::lease`] and [`StateConfig::poll`].
    pub lease: Duration,
    pub poll: Duration,
    pub labels: Labels,
    pub sources: Vec<Source>,
    /// Each source's `[[sources]]` table as written (TOML text), by id, in config order: what
    /// the publisher syncs into a shared state for workers, which read it with this same code.
    pub source_tables: Vec<(String, String)>,
    /// The config text without its sources: what a worker reads the sources it claims with.
    pub base_table: toml::Table,
}

impl Settings {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, path)
    }

    /// Checks config text as if it had been read from `path`.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let err = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        let file: ConfigFile =
            toml::from_str(text).map_err(|e| err(describe_toml_error(text, &e)))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = std::path::absolute(base).map_err(|e| Error::io(base, e))?;
        let mut settings = Self::from_file(file, &base, path).map_err(|invalid| {
            if invalid.steps.is_empty() {
                return err(invalid.message);
            }
            let key = locate::key(&invalid.steps);
            err(match locate::line_of(text, &invalid.steps) {
                Some(line) => format!("line {line}: {key}: {}", invalid.message),
                None => format!("{key}: {}", invalid.message),
            })
        })?;
        settings.source_tables = source_tables(text);
        if let Ok(mut table) = text.parse::<toml::Table>() {
            table.remove("sources");
            settings.base_table = table;
        }
        Ok(settings)
    }

    /// What a worker works with: the publisher's shared settings (`shared`, as synced into
    /// state: archive, feed, labels, content), this config's own sections for what is the
    /// worker's to choose ([`LOCAL_SECTIONS`]: its state URL, fetch limits, LLM, server), and
    /// the sources it claimed (`claimed`: id and table). A source this worker cannot read
    /// (a key this version does not know, say) is left out and comes back with why.
    pub fn for_worker(
        &self,
        shared: Option<&str>,
        claimed: &[(String, String)],
    ) -> Result<(Settings, Vec<(String, Error)>)> {
        let err = |message: String| Error::Config {
            path: self.config_path.clone(),
            message: format!("the settings synced into state: {message}"),
        };
        let mut base: toml::Table = match shared {
            Some(text) => text.parse().map_err(|e| err(format!("{e}")))?,
            None => toml::Table::new(),
        };
        for section in LOCAL_SECTIONS {
            match self.base_table.get(*section) {
                Some(value) => base.insert((*section).to_owned(), value.clone()),
                None => base.remove(*section),
            };
        }
        let with_sources = |tables: &[&toml::Table]| -> Result<Settings> {
            let mut whole = base.clone();
            whole.insert(
                "sources".to_owned(),
                toml::Value::Array(
                    tables
                        .iter()
                        .map(|t| toml::Value::Table((*t).clone()))
                        .collect(),
                ),
            );
            let text = toml::to_string(&whole).map_err(|e| err(e.to_string()))?;
            Self::from_toml(&text, &self.config_path)
        };
        let mut readable = Vec::with_capacity(claimed.len());
        let mut unreadable = Vec::new();
        for (id, table) in claimed {
            let parsed = table
                .parse::<toml::Table>()
                .map_err(|e| err(format!("source {id}: {e}")))
                .and_then(|table| with_sources(&[&table]).map(|_| table));
            match parsed {
                Ok(table) => readable.push(table),
                Err(e) => unreadable.push((id.clone(), e)),
            }
        }
        let tables: Vec<&toml::Table> = readable.iter().collect();
        Ok((with_sources(&tables)?, unreadable))
    }

    /// The settings a publisher shares with the workers through state (see
    /// [`Settings::for_worker`]): every section but the sources and [`LOCAL_SECTIONS`].
    pub fn shared_with_workers(&self) -> String {
        let mut shared = self.base_table.clone();
        for section in LOCAL_SECTIONS {
            shared.remove(*section);
        }
        toml::to_string(&shared).unwrap_or_default()
    }

    fn from_file(
        mut file: ConfigFile,
        base: &Path,
        path: &Path,
    ) -> std::result::Result<Self, Invalid> {
        file.enrich.check(base)?;
        let path_template = PathTemplate::parse(&file.archive.path_template)
            .map_err(|e| invalid(&["archive", "path_template"], e))?;
        if file.feed.title.trim().is_empty() {
            return Err(invalid(&["feed", "title"], "must not be empty"));
        }
        if file.feed.author.trim().is_empty() {
            return Err(invalid(&["feed", "author"], "must not be empty"));
        }
        if file.feed.max_entries == 0 {
            return Err(invalid(&["feed", "max_entries"], "must be at least 1"));
        }
        if file.fetch.concurrency == 0 {
            return Err(invalid(&["fetch", "concurrency"], "must be at least 1"));
        }
        if file.fetch.per_host == 0 {
            return Err(invalid(&["fetch", "per_host"], "must be at least 1"));
        }
        for (name, value) in [
            ("timeout", file.fetch.timeout),
            ("connect_timeout", file.fetch.connect_timeout),
            ("read_timeout", file.fetch.read_timeout),
            ("run_deadline", file.fetch.run_deadline),
            ("interval", file.fetch.interval),
            ("max_backoff", file.fetch.max_backoff),
            ("alert_after", file.fetch.alert_after),
        ] {
            check_duration(value).map_err(|e| invalid(&["fetch", name], e))?;
        }
        check_listen(&file.serve.listen).map_err(|e| invalid(&["serve", "listen"], e))?;
        for (name, value) in [("lease", file.state.lease), ("poll", file.state.poll)] {
            check_duration(value).map_err(|e| invalid(&["state", name], e))?;
        }
        for (name, value) in [
            ("header_timeout", file.serve.header_timeout),
            ("idle_timeout", file.serve.idle_timeout),
            ("shutdown_grace", file.serve.shutdown_grace),
            ("tick", file.serve.tick),
        ] {
            check_duration(value).map_err(|e| invalid(&["serve", name], e))?;
        }
        if file.serve.max_connections == 0 {
            return Err(invalid(&["serve", "max_connections"], "must be at least 1"));
        }
        if !(1024..=1024 * 1024).contains(&file.serve.max_header_bytes) {
            return Err(invalid(
                &["serve", "max_header_bytes"],
                "must be between 1KiB and 1MiB",
            ));
        }
        Url::parse(&file.feed.id).map_err(|e| {
            invalid(
                &["feed", "id"],
                format!("must be an absolute IRI such as urn:uuid:...: {e}"),
            )
        })?;
        Url::parse(&file.feed.self_url).map_err(|e| {
            invalid(
                &["feed", "self_url"],
                format!("must be an absolute URL: {e}"),
            )
        })?;
        for hub in &file.feed.hubs {
            Url::parse(hub)
                .map_err(|e| invalid(&["feed", "hubs"], format!("{hub:?} is not a URL: {e}")))?;
        }

        let mut seen = HashSet::new();
        let mut sources = Vec::with_capacity(file.sources.len());
        for (i, raw) in file.sources.into_iter().enumerate() {
            let id = raw.id.clone();
            let bad = |key: &str, message: String| Invalid {
                steps: vec![
                    Step::Key("sources".to_owned()),
                    Step::Index(i),
                    Step::Key(key.to_owned()),
                ],
                message: format!("(source {id:?}) {message}"),
            };
            if !is_valid_source_id(&raw.id) {
                return Err(bad("id", "must match [a-z0-9_-]+".to_owned()));
            }
            if !seen.insert(raw.id.clone()) {
                return Err(bad("id", "is used by another source".to_owned()));
            }
            let location = Location::parse(&raw.url, base).map_err(|e| bad("url", e))?;
            if raw.author.as_deref().is_some_and(|a| a.trim().is_empty()) {
                return Err(bad("author", "must not be empty".to_owned()));
            }
            if let Some(interval) = raw.interval {
                check_duration(interval).map_err(|e| bad("interval", e))?;
            }
            sources.push(Source {
                author: raw.author.unwrap_or_else(|| raw.id.clone()),
                id: raw.id,
                location,
                tags: raw.tags,
                language: raw.language.map(|l| l.trim().to_lowercase()),
                category_tags: raw.category_tags.unwrap_or(true),
                interval: raw.interval.unwrap_or(file.fetch.interval),
                user_agent: raw.user_agent,
                enrich: raw.enrich.unwrap_or(true),
                identity: raw.identity,
                extract: raw
                    .extract
                    .as_ref()
                    .map(Extract::new)
                    .transpose()
                    .map_err(|e| bad("extract", e.to_string()))?,
                filters: Filters::new(&file.filters, &raw.filters)
                    .map_err(|e| bad("filters", e.to_string()))?,
                rewrites: Rewrites::new(&raw.rewrite).map_err(|e| bad("rewrite", e.to_string()))?,
                headers: check_headers(&raw.headers).map_err(|e| bad("headers", e))?,
            });
        }

        let (state_url, state_file) =
            resolve_state_url(&file.state.url, base).map_err(|e| invalid(&["state", "url"], e))?;
        Ok(Settings {
            config_path: path.to_path_buf(),
            archive_dir: base.join(&file.archive.dir),
            dedupe: file.archive.dedupe,
            identity_keys: file.archive.identity_keys,
            path_template,
            feed_path: base.join(&file.feed.path),
            feed: file.feed,
            state_url,
            fetch: file.fetch,
            enrich: file.enrich,
            serve: ServeConfig {
                templates: file.serve.templates.as_ref().map(|dir| base.join(dir)),
                ..file.serve
            },
            state_file,
            lock_timeout: file.state.lock_timeout,
            keep_pages: file.state.keep_pages,
            keep_answers: file.state.keep_answers,
            lease: file.state.lease,
            poll: file.state.poll,
            labels: Labels::new(file.labels),
            sources,
            source_tables: Vec::new(),
            base_table: toml::Table::new(),
        })
    }

    /// The sources named in `ids`, or all of them when `ids` is empty.
    pub fn select_sources(&self, ids: &[String]) -> std::result::Result<Vec<Source>, String> {
        if ids.is_empty() {
            return Ok(self.sources.clone());
        }
        let mut seen = HashSet::new();
        ids.iter()
            .filter(|id| seen.insert(id.as_str()))
            .map(|id| {
                self.sources
                    .iter()
                    .find(|s| &s.id == id)
                    .cloned()
                    .ok_or_else(|| {
                        format!("no source with id {id:?} in {}", self.config_path.display())
                    })
            })
            .collect()
    }
}

/// A config error found after reading: what is wrong, and at which key when one is to blame.
#[derive(Debug)]
struct Invalid {
    steps: Vec<Step>,
    message: String,
}

impl From<String> for Invalid {
    fn from(message: String) -> Self {
        Self {
            steps: Vec::new(),
            message,
        }
    }
}

fn invalid(key: &[&str], message: impl std::fmt::Display) -> Invalid {
    Invalid {
        steps: key.iter().map(|k| Step::Key((*k).to_owned())).collect(),
        message: message.to_string(),
    }
}

/// The longest any configured wait may be: longer is a typo, not a schedule.
const LONGEST: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// A duration must be more than nothing and less than a year.
fn check_duration(value: Duration) -> std::result::Result<(), String> {
    if value.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    if value > LONGEST {
        return Err(format!(
            "{} is longer than a year",
            humantime::format_duration(value)
        ));
    }
    Ok(())
}

/// `serve.listen`: an address and port (`127.0.0.1:8080`, `[::1]:8080`), or a host name and
/// port (`localhost:8080`).
fn check_listen(listen: &str) -> std::result::Result<(), String> {
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    match listen.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && port.parse::<u16>().is_ok()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{listen:?} is not an address and port such as 127.0.0.1:8080"
        )),
    }
}

/// Header names and values must be valid HTTP, or every request of the source would fail later.
fn check_headers(
    headers: &BTreeMap<String, String>,
) -> std::result::Result<Vec<(String, String)>, String> {
    headers
        .iter()
        .map(|(name, value)| {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid header name"))?;
            reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("the value of {name} is not a valid header value"))?;
            Ok((name.clone(), value.clone()))
        })
        .collect()
}

fn is_valid_source_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// toml's message carries the line and column; add the dotted key when it can be found.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let snippet = text
                .get(span.clone())
                .map(|s| s.lines().next().unwrap_or(s).trim())
                .unwrap_or_default();
            // The key whose value is wrong, unless toml's message already names it.
            let key = locate::key_at(text, &span)
                .filter(|key| !message.contains(key.rsplit('.').next().unwrap_or(key)))
                .map(|key| format!("{key}: "))
                .unwrap_or_default();
            format!("line {line}: {key}{message} (at `{snippet}`)")
        }
        None => message.to_owned(),
    }
}

impl Settings {
    /// Each configured source as a shared state keeps it for workers: id, location, and its
    /// table as written.
    pub fn sources_to_sync(&self) -> Vec<(String, String, String)> {
        let tables: std::collections::HashMap<&str, &str> = self
            .source_tables
            .iter()
            .map(|(id, table)| (id.as_str(), table.as_str()))
            .collect();
        self.sources
            .iter()
            .map(|source| {
                let table = tables.get(source.id.as_str()).copied().unwrap_or_default();
                (
                    source.id.clone(),
                    source.location.to_string(),
                    table.to_owned(),
                )
            })
            .collect()
    }
}

/// The sections of a worker's config that are its own to choose; the rest it takes from the
/// publisher, so that every worker shapes articles as the publisher's config says.
pub const LOCAL_SECTIONS: &[&str] = &["state", "fetch", "enrich", "serve"];

/// The `[[sources]]` tables of a config text that [`Settings::from_toml`] accepted, as TOML.
fn source_tables(text: &str) -> Vec<(String, String)> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(toml::Value::Array(sources)) = table.get("sources") else {
        return Vec::new();
    };
    sources
        .iter()
        .filter_map(|source| {
            let table = source.as_table()?;
            let id = table.get("id")?.as_str()?.to_owned();
            Some((id, toml::to_string(table).ok()?))
        })
        .collect()
}

/// `sqlite://relative/path.db` resolves against the config folder (and names the file);
/// `postgres://` and `postgresql://` URLs pass unchanged.
fn resolve_state_url(
    url: &str,
    base: &Path,
) -> std::result::Result<(String, Option<PathBuf>), String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let parsed = url::Url::parse(url).map_err(|e| format!("state.url: {e}"))?;
        if parsed.host_str().is_none_or(str::is_empty) && !url.contains("host=") {
            return Err("state.url must name the PostgreSQL server's host".to_owned());
        }
        return Ok((url.to_owned(), None));
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(format!(
            "state.url {url:?}: not a sqlite:// or postgres:// URL"
        ));
    };
    let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
    if file.is_empty() || file == ":memory:" {
        return Err("state.url must name a database file".to_owned());
    }
    let path = base.join(file);
    let mut out = format!("sqlite://{}", path.display());
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    Ok((out, Some(path)))
}

/// The User-Agent every request sends unless the config names another: a default is config's
/// to own, whichever stage sends it.
pub fn default_user_agent() -> String {
    format!("Gazette/{} (feed aggregator)", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Settings> {
        Settings::from_toml(text, Path::new("/etc/gazette/gazette.toml"))
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let s = load(
            "[[sources]]\nid = \"a\"\nurl = \"feeds/a.xml\"\n[state]\nurl = \"sqlite://state/g.db\"\n",
        )
        .expect("valid config");
        assert_eq!(s.archive_dir, Path::new("/etc/gazette/archive"));
        assert_eq!(s.feed_path, Path::new("/etc/gazette/public/atom.xml"));
        assert_eq!(s.state_url, "sqlite:///etc/gazette/state/g.db");
        assert_eq!(
            s.sources[0].location,
            Location::File(PathBuf::from("/etc/gazette/feeds/a.xml"))
        );
        assert_eq!(s.sources[0].author, "a");
    }

    #[test]
    fn a_postgresql_state_has_no_file_and_must_name_its_server() {
        let s = load("[state]\nurl = \"postgres://gazette@127.0.0.1:5432/archive\"\n")
            .expect("valid config");
        assert_eq!(s.state_url, "postgres://gazette@127.0.0.1:5432/archive");
        assert_eq!(s.state_file, None);
        let err = load("[state]\nurl = \"postgres:///archive\"\n")
            .expect_err("no host")
            .to_string();
        assert!(err.contains("host"), "{err}");
        let err = load("[state]\nurl = \"mysql://127.0.0.1/archive\"\n")
            .expect_err("another database")
            .to_string();
        assert!(err.contains("not a sqlite:// or postgres:// URL"), "{err}");
    }

    /// A worker reads its claimed sources with the publisher's shared settings and its own
    /// limits; a source it cannot read is named, and the others go on.
    #[test]
    fn a_worker_takes_the_publishers_settings_and_keeps_its_own_limits() {
        let publisher = load(
            "[archive]\npath_template = \"{source}/{slug}.md\"\n[labels]\nfr = \"Lien\"\n\
             [fetch]\nconcurrency = 3\n\
             [[sources]]\nid = \"a\"\nurl = \"http://127.0.0.1:9/a.xml\"\ntags = [\"x\"]\n",
        )
        .expect("publisher config");
        let shared = publisher.shared_with_workers();
        assert!(!shared.contains("concurrency"), "{shared}");
        let worker =
            load("[state]\nurl = \"postgres://w@127.0.0.1/g\"\n[fetch]\nconcurrency = 40\n")
                .expect("worker config");
        let synced = publisher.sources_to_sync();
        let claimed = vec![
            (synced[0].0.clone(), synced[0].2.clone()),
            (
                "b".to_owned(),
                "id = \"b\"\nurl = \"http://127.0.0.1:9/b.xml\"\nnot_a_key = 1\n".to_owned(),
            ),
        ];
        let (settings, unreadable) = worker
            .for_worker(Some(&shared), &claimed)
            .expect("worker settings");
        assert_eq!(settings.fetch.concurrency, 40);
        assert_eq!(settings.state_url, "postgres://w@127.0.0.1/g");
        assert_eq!(
            settings.path_template.render("a", &chrono::Utc::now(), "s"),
            Some(PathBuf::from("a/s.md"))
        );
        assert_eq!(
            format!("{:?}", settings.labels),
            format!("{:?}", publisher.labels)
        );
        assert_eq!(settings.sources.len(), 1);
        assert_eq!(settings.sources[0].tags, vec!["x".to_owned()]);
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].0, "b");
        assert!(
            unreadable[0].1.to_string().contains("not_a_key"),
            "{}",
            unreadable[0].1
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = load("[feed]\ntitle = \"x\"\ncolour = \"red\"\n")
            .expect_err("unknown key")
            .to_string();
        assert!(
            err.starts_with("/etc/gazette/gazette.toml: line 3"),
            "{err}"
        );
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_source_ids_and_duplicates_are_rejected() {
        let bad = load("[[sources]]\nid = \"Bad Id\"\nurl = \"a.xml\"\n").expect_err("bad id");
        assert!(bad.to_string().contains("[a-z0-9_-]+"), "{bad}");
        let dup = load(
            "[[sources]]\nid = \"a\"\nurl = \"a.xml\"\n[[sources]]\nid = \"a\"\nurl = \"b.xml\"\n",
        )
        .expect_err("duplicate");
        assert!(dup.to_string().contains("used by another source"), "{dup}");
    }

    #[test]
    fn sizes_take_units() {
        let s = load("[fetch]\nmax_body = \"2MiB\"\nmax_field = 4096\n").expect("valid");
        assert_eq!(s.fetch.max_body, 2 * 1024 * 1024);
        assert_eq!(s.fetch.max_field, 4096);
        let err = load("[fetch]\nmax_body = \"lots\"\n").expect_err("bad size");
        assert!(err.to_string().contains("invalid size"), "{err}");
    }

    #[test]
    fn source_overrides() {
        let s = load(
            "[fetch]\ninterval = \"1h\"\n[[sources]]\nid = \"a\"\nurl = \"a.xml\"\n\
             [[sources]]\nid = \"b\"\nurl = \"b.xml\"\ninterval = \"5m\"\nheaders = { Cookie = \"x=1\" }\n",
        )
        .expect("valid");
        assert_eq!(s.sources[0].interval, Duration::from_secs(3600));
        assert_eq!(s.sources[1].interval, Duration::from_secs(300));
        assert_eq!(
            s.sources[1].headers,
            vec![("Cookie".to_owned(), "x=1".to_owned())]
        );
        let err =
            load("[[sources]]\nid = \"a\"\nurl = \"a.xml\"\nheaders = { \"Bad Name\" = \"x\" }\n")
                .expect_err("bad header");
        assert!(err.to_string().contains("not a valid header name"), "{err}");
    }

    #[test]
    fn durations_are_human() {
        let s = load("[fetch]\ntimeout = \"1m 30s\"\n").expect("valid");
        assert_eq!(s.fetch.timeout, Duration::from_secs(90));
        let err = load("[fetch]\ntimeout = \"soon\"\n").expect_err("bad duration");
        assert!(err.to_string().contains("invalid duration"), "{err}");
    }

    #[test]
    fn private_ranges_are_cidr_or_single_addresses() {
        let s = load(
            "[fetch]\nallow_private = [\"10.0.0.0/8\", \"fd00::/8\", \"127.0.0.1\", \"::1\"]\n",
        )
        .expect("valid");
        let ranges: Vec<String> = s
            .fetch
            .allow_private
            .iter()
            .map(|r| r.to_string())
            .collect();
        // A bare address, as before, is the range of that one address.
        assert_eq!(
            ranges,
            ["10.0.0.0/8", "fd00::/8", "127.0.0.1/32", "::1/128"].map(str::to_owned)
        );
        for bad in ["127.0.0.1/33", "::1/129", "nonsense", "10.0.0.0/", ""] {
            let err = load(&format!("[fetch]\nallow_private = [\"{bad}\"]\n"))
                .expect_err("bad range")
                .to_string();
            assert!(
                err.starts_with("/etc/gazette/gazette.toml: line 2: fetch.allow_private: "),
                "{err}"
            );
            assert!(
                err.contains(&format!("{bad:?} is not an IP address or CIDR range")),
                "{err}"
            );
        }
    }
}
