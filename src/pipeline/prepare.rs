//! The part of a refresh that needs no write lock: parse the body, find the entries whose hash is
//! new, and normalize and render those. It runs concurrently across sources.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, SubsecRound as _, Utc};
use tracing::{info, warn};

use super::{Counts, Pipeline};
use crate::config::{Settings, Source};
use crate::enrich::{self, Answer, Enricher, Outcome};
use crate::error::{Error, Result};
use crate::extract::{self, Extracted, canonical_link};
use crate::fetch::Fetched;
use crate::model::{Article, Section};
use crate::normalize::{self, EntryIdentity, FeedContext, FetchedEntryRef, Skip};
use crate::parse::{ParseLimits, parse_feed};
use crate::publish::archive;
use crate::schedule::FeedHints;
use crate::store::{ArticleRecord, CachedAnswer, Encoded, FeedMeta, Known, Store, StoredArticle};

/// A parsed feed, what its entries need from it, and each entry's identity (same order).
#[derive(Debug)]
pub struct Parsed {
    pub feed: crate::parse::Feed,
    pub ctx: FeedContext,
    pub meta: FeedMeta,
    pub hints: FeedHints,
    pub identities: Vec<std::result::Result<EntryIdentity, Skip>>,
}

/// A source's work, ready to be written.
#[derive(Debug)]
pub(super) struct Prepared {
    pub counts: Counts,
    pub articles: Vec<PreparedArticle>,
    pub meta: FeedMeta,
    pub hints: FeedHints,
    pub now: DateTime<Utc>,
    /// New articles were held back by `max_per_run`: the same body must be read again.
    pub held_back: bool,
    /// Where the document stands in the feed's history.
    pub paging: Paging,
}

/// What a document says of the feed's history (RFC 5005), for `backfill`.
#[derive(Debug, Default)]
pub(super) struct Paging {
    /// The document lists every entry of the feed (`fh:complete`).
    pub complete: bool,
    /// The older page it links to (`prev-archive`, else a paged feed's `next`), as written.
    pub older: Option<String>,
    /// How many entries it lists.
    pub entries: usize,
    /// The keys of the entries it lists.
    pub listed: Vec<String>,
}

#[derive(Debug)]
pub(super) struct PreparedArticle {
    pub article: Article,
    pub bytes: String,
    /// The search words of `article.doc` as state's index takes them, made by [`Prepared::ready`]
    /// off the one writer, of the document as it is written (empty for an adoption, which
    /// keeps the record's document and words).
    pub words: String,
    pub first_seen: DateTime<Utc>,
    /// Not archived before (its key is new to the source).
    pub is_new: bool,
    /// The link that identifies the article across sources.
    pub canonical: String,
    pub enrichment: EnrichmentStep,
    /// The entry's own section before LLM sections replace it; `None` when unknown.
    pub original: Option<Section>,
    /// The model and prompt version of the LLM sections, when they were added here.
    pub enriched_by: Option<String>,
    /// The dates the feed gave.
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    /// The entry as fetched, for rendering it again later.
    pub entry: Option<String>,
    /// The record's largest columns, made once the article is final (see
    /// [`Prepared::ready`], which moves `entry` here); `None`: made by the writer.
    pub encoded: Option<Encoded>,
    /// The file written to a temp file of the archive already, `bytes` then empty (see
    /// [`Prepared::ready`]).
    pub staged: Option<crate::files::Staged>,
    /// Where the path template puts a new article, before clashes are resolved, its folder
    /// made already (see [`Prepared::ready`]); `None`: the writer works it out.
    pub base: Option<std::path::PathBuf>,
    /// Nothing was at `base` in the archive when its folder was made: only the one writer
    /// puts files there, and whatever it put since is in state, which the turn asks.
    pub base_absent: bool,
    /// A record rebuilt from the archive that this entry is: it takes the entry's identity and
    /// keeps its file as it is (`bytes` is empty then).
    pub adopts: Option<ArticleRecord>,
}

impl Prepared {
    /// Readies the articles for the write turn, which every source waits for, on the blocking
    /// pool: each new or changed article's largest columns and search words as `store` takes
    /// them, and each new article's place by the path template. When this process writes
    /// files (`root`, the archive), also each new article's file, in a temp file of the
    /// archive (its `bytes` then empty), the folder it goes in, and whether anything is at its
    /// place already, so the turn is left to rename it into place (one whose path turns out
    /// taken is written from the temp file). The articles must not change after.
    pub async fn ready(
        &mut self,
        store: &Store,
        settings: &Arc<Settings>,
        root: Option<&std::path::Path>,
    ) -> Result<()> {
        let mut articles = std::mem::take(&mut self.articles);
        let store = store.clone();
        let settings = Arc::clone(settings);
        let at = root.map(std::path::Path::to_owned);
        let named = root.unwrap_or(std::path::Path::new("."));
        self.articles = super::off_thread(named, move || {
            // A feed's articles share a few days' folders: each is made once. Whether it was
            // made here: no file in a folder made here needs looking for.
            let mut made = HashMap::new();
            for prepared in articles.iter_mut().filter(|p| p.adopts.is_none()) {
                prepared.words = store.document_words(&prepared.article.doc);
                let entry = prepared.entry.take();
                prepared.encoded = Some(store.encode(&prepared.article.doc, entry));
                if !prepared.is_new {
                    continue;
                }
                // An article whose path fails is left to the turn, which says why.
                prepared.base = base_path(&settings, &prepared.article).ok();
                if let Some(root) = &at
                    && !prepared.bytes.is_empty()
                {
                    let mut staged = crate::files::stage(root, prepared.bytes.as_bytes())?;
                    // The temp file holds them now: waiting for the turn takes no copy.
                    prepared.bytes = String::new();
                    if let Some(base) = &prepared.base
                        && let Some(folder) = base.parent()
                    {
                        let folder = root.join(folder);
                        let made_here = match made.get(&folder) {
                            Some(made_here) => *made_here,
                            None => {
                                let made_here = crate::files::make_folder(&folder)?;
                                made.insert(folder.clone(), made_here);
                                made_here
                            }
                        };
                        prepared.base_absent =
                            made_here || crate::files::nothing_at(&root.join(base));
                        staged.made_for(root, &folder);
                    }
                    prepared.staged = Some(staged);
                }
            }
            Ok(articles)
        })
        .await?;
        Ok(())
    }
}

/// Where the path template puts an article, before clashes are resolved.
pub(super) fn base_path(settings: &Settings, article: &Article) -> Result<std::path::PathBuf> {
    let slug = crate::text::slug(&article.doc.original.title);
    settings
        .path_template
        .render(&article.source, &article.doc.date, &slug)
        .ok_or_else(|| Error::Archive {
            path: settings.archive_dir.clone(),
            reason: format!("the path template leaves the archive folder for slug {slug:?}"),
        })
}

/// An entry that needs work: new, changed, or the entry of a rebuilt record.
#[derive(Debug)]
struct Change {
    index: usize,
    identity: EntryIdentity,
    stored: Option<StoredArticle>,
    adopts: Option<ArticleRecord>,
}

/// Where a new or changed article stands with enrichment once it is written.
#[derive(Debug)]
pub(super) enum EnrichmentStep {
    /// Enrichment is off for this source.
    Off,
    /// Written without its sections; they are asked for later.
    Pending,
    /// Written with its sections; `paid` is a new answer to cache, with its cost.
    Done {
        paid: Option<(String, CachedAnswer)>,
    },
}

impl Pipeline {
    /// `may_hold`: new articles may wait up to `enrich.hold` for their sections.
    pub(super) async fn prepare(
        &self,
        source: &Source,
        fetched: &Fetched,
        may_hold: bool,
    ) -> Result<Prepared> {
        let parsed = parse_off_thread(
            source,
            fetched,
            ParseLimits::from_config(&self.settings().fetch),
        )
        .await?;
        let mut counts = Counts::default();
        let mut changed = Vec::new();
        let mut seen_keys = HashSet::new();
        let mut conn = self.store().pool().acquire().await?;
        let has_rebuilt = Store::has_rebuilt(&mut conn, &source.id).await?;
        let keys: Vec<&str> = parsed
            .identities
            .iter()
            .filter_map(|identity| identity.as_ref().ok().map(|i| i.key.as_str()))
            .collect();
        let paging = Paging {
            complete: parsed.feed.history.complete,
            older: ["prev-archive", "next"]
                .into_iter()
                .find_map(|rel| parsed.feed.link(rel))
                .map(str::to_owned),
            entries: parsed.feed.entries.len(),
            listed: keys.iter().map(|k| (*k).to_owned()).collect(),
        };
        let mut known_keys = Store::known_many(&mut conn, &source.id, &keys).await?;
        let mut adopted = HashSet::new();
        for (index, identity) in parsed.identities.iter().enumerate() {
            let identity = match identity {
                Ok(identity) => identity,
                Err(skip) => {
                    warn!(source = %source.id, "skipped: {skip}");
                    counts.skipped += 1;
                    continue;
                }
            };
            if !seen_keys.insert(identity.key.as_str()) {
                warn!(source = %source.id, key = %identity.key, "skipped: the feed repeats this entry");
                counts.skipped += 1;
                continue;
            }
            let entry = &parsed.feed.entries[index];
            let known = known_keys
                .remove(identity.key.as_str())
                .unwrap_or(Known::New);
            let rebuilt = if has_rebuilt {
                let key = identity.key.as_str();
                rebuilt_record(&mut conn, source, &parsed.ctx, entry, key, &known, &adopted).await?
            } else {
                None
            };
            if let Some(record) = rebuilt {
                adopted.insert(record.key.clone());
                changed.push(Change {
                    index,
                    identity: identity.clone(),
                    stored: None,
                    adopts: Some(record),
                });
                continue;
            }
            let stored = match known {
                Known::Archived(stored) if stored.content_hash == identity.content_hash => {
                    counts.unchanged += 1;
                    continue;
                }
                // Another source's article, already merged into its file.
                Known::Alias { content_hash } if content_hash == identity.content_hash => {
                    counts.unchanged += 1;
                    continue;
                }
                Known::Archived(stored) => Some(stored),
                Known::Alias { .. } | Known::New => None,
            };
            let date = entry.date();
            if let (Some(max_age), Some(date)) = (source.filters.max_age, date)
                && (self.clock().now() - date)
                    .to_std()
                    .is_ok_and(|age| age > max_age)
            {
                info!(key = %identity.key, "skipped: older than max_age");
                counts.skipped += 1;
                continue;
            }
            changed.push(Change {
                index,
                identity: identity.clone(),
                stored,
                adopts: None,
            });
        }
        drop(conn);

        let full_texts = self.full_texts(source, &parsed, &changed).await?;
        let now = self.clock().now();
        let settings = Arc::clone(&self.settings);
        let source_owned = source.clone();
        let parsed = Arc::new(parsed);
        let shared = Arc::clone(&parsed);
        // A worker writes no file: the publisher renders the record.
        let render = self.writes_files();
        let normalized = super::cpu::run(move || {
            changed
                .into_iter()
                .zip(full_texts)
                .map(|(change, full_text)| {
                    let args = (&*shared, &source_owned, &*settings);
                    normalize_change(args, change, full_text, now, render)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| parse_error(source, format!("normalizing stopped: {e}")))?;
        let mut articles = Vec::with_capacity(normalized.len());
        for prepared in normalized {
            match prepared {
                Some(prepared) => articles.push(prepared),
                None => counts.skipped += 1,
            }
        }
        let (adoptions, mut articles): (Vec<_>, Vec<_>) =
            articles.into_iter().partition(|p| p.adopts.is_some());
        let mut held_back = false;
        if let Some(cap) = source.filters.max_per_run {
            // Newest first, so the cap keeps the newest new articles; updates always pass.
            articles.sort_by_key(|p| std::cmp::Reverse(p.article.doc.date));
            let mut new_seen = 0;
            articles.retain(|p| {
                if !p.is_new {
                    return true;
                }
                new_seen += 1;
                new_seen <= cap
            });
            let held = new_seen.saturating_sub(cap);
            counts.skipped += held;
            held_back = held > 0;
        }
        if let Some(enricher) = self.enricher().filter(|_| source.enrich) {
            for prepared in &mut articles {
                self.enrich_new(enricher, prepared, may_hold).await?;
            }
        }
        articles.extend(adoptions);
        Ok(Prepared {
            counts,
            articles,
            meta: parsed.meta.clone(),
            hints: parsed.hints,
            now,
            held_back,
            paging,
        })
    }
}

impl Pipeline {
    /// Gives a new or changed article its sections when an answer for its content is cached, or
    /// (with `enrich.hold`) when the provider answers in time; otherwise it is marked pending.
    async fn enrich_new(
        &self,
        enricher: &Enricher,
        prepared: &mut PreparedArticle,
        may_hold: bool,
    ) -> Result<()> {
        let article = &prepared.article;
        let cache_key = enricher.cache_key(&article.content_hash);
        let targets = enricher.targets();
        let (answer, paid) = match self.store().cached_answer(&cache_key).await? {
            Some(cached) => (serde_json::from_str::<Answer>(&cached.answer).ok(), None),
            None if may_hold && !enricher.config().hold.is_zero() => {
                let request = enricher.request(&article.source, &article.key, &article.doc);
                let hold = enricher.config().hold;
                match tokio::time::timeout(hold, self.ask_within_budget(enricher, &request, None))
                    .await
                {
                    Ok(Ok(Some(Outcome {
                        result: Ok(answer),
                        usage,
                    }))) => {
                        let cached = CachedAnswer {
                            answer: serde_json::to_string(&answer).unwrap_or_default(),
                            prompt_tokens: usage.prompt_tokens,
                            completion_tokens: usage.completion_tokens,
                        };
                        (Some(answer), Some((cache_key, cached)))
                    }
                    Ok(Ok(Some(Outcome { result: Err(e), .. }))) => {
                        warn!(source = %article.source, key = %article.key, error = %e, "enrichment failed; archived without it for now");
                        (None, None)
                    }
                    Ok(Err(e)) => return Err(e),
                    // Over budget, or not answered within `hold`: pending, for a later pass.
                    Ok(Ok(None)) | Err(_) => (None, None),
                }
            }
            None => (None, None),
        };
        match answer {
            Some(answer) => {
                prepared.article.doc = enrich::apply(
                    &prepared.article.doc,
                    &answer,
                    targets,
                    enricher.titles_only(),
                );
                if self.writes_files() {
                    prepared.bytes = archive::render_article(
                        self.settings(),
                        prepared.article.guid.as_deref(),
                        &prepared.article.doc,
                    );
                }
                prepared.enriched_by = Some(enricher.label());
                prepared.enrichment = EnrichmentStep::Done { paid };
            }
            None => prepared.enrichment = EnrichmentStep::Pending,
        }
        Ok(())
    }
}

impl Pipeline {
    /// The article pages' text for the changed entries of a source that extracts it, in the
    /// order of `changed`; `None` where there is none (the feed's content is used then).
    async fn full_texts(
        &self,
        source: &Source,
        parsed: &Parsed,
        changed: &[Change],
    ) -> Result<Vec<Option<Extracted>>> {
        let Some(rules) = &source.extract else {
            return Ok(vec![None; changed.len()]);
        };
        let mut texts = Vec::with_capacity(changed.len());
        for change in changed {
            if change.adopts.is_some() {
                // Its file stays as it is; nothing is extracted for it.
                texts.push(None);
                continue;
            }
            let entry = &parsed.feed.entries[change.index];
            let Some(link) = normalize::entry_link(entry, &parsed.ctx) else {
                texts.push(None);
                continue;
            };
            texts.push(self.full_text(source, rules, &link).await?);
        }
        Ok(texts)
    }
}

impl Pipeline {
    /// The article page's text under the source's extraction rules: cached when these rules
    /// extracted it before, else fetched (once) and cached. `None` when the page has none or
    /// cannot be fetched; the feed's content is used then.
    pub(super) async fn full_text(
        &self,
        source: &Source,
        rules: &crate::config::Extract,
        link: &url::Url,
    ) -> Result<Option<Extracted>> {
        if let Some(cached) = self
            .store()
            .cached_page(link.as_str(), &rules.written)
            .await?
        {
            return Ok(cached);
        }
        match self.fetcher().fetch_content(&source.id, link).await {
            Ok(page) => {
                let html =
                    crate::parse::encoding::html_to_utf8(&page.body, page.content_type.as_deref());
                let base = page.meta.url.clone().unwrap_or_else(|| link.clone());
                let extracted = extract::extract_with_rule(&html, &base, rules);
                let matched = match &extracted {
                    Some((_, extract::Rule::Selector)) => Some(true),
                    Some((_, extract::Rule::SelectorMissed)) => Some(false),
                    // A page with no text at all says nothing of the selector.
                    Some((_, extract::Rule::Fallback)) | None => None,
                };
                if let Some(matched) = matched {
                    if !matched {
                        warn!(source = %source.id, page = %link, "the content selector matched nothing on this page; has the site's layout changed?");
                    }
                    // Only for `status`: a failure to note it costs nothing else.
                    if let Err(e) = self
                        .store()
                        .note_selector(&source.id, matched, &self.clock().now())
                        .await
                    {
                        warn!(source = %source.id, error = %e, "whether the selector matched could not be recorded");
                    }
                }
                let extracted = extracted.map(|(extracted, _)| extracted);
                if extracted.is_none() {
                    warn!(source = %source.id, page = %link, "the page has no article text; the feed's content is used");
                }
                self.store()
                    .cache_page(
                        link.as_str(),
                        &rules.written,
                        extracted.as_ref(),
                        &self.clock().now(),
                    )
                    .await?;
                Ok(extracted)
            }
            Err(e) => {
                warn!(source = %source.id, page = %link, error = %e, "the article page could not be fetched; the feed's content is used");
                Ok(None)
            }
        }
    }
}

fn parse_error(source: &Source, reason: String) -> Error {
    Error::Parse {
        source_id: source.id.clone(),
        url: source.location.to_string(),
        reason,
    }
}

/// Parsing is CPU work; it runs on the pipeline's CPU threads, so fetches keep flowing and
/// the write turn goes first.
pub(super) async fn parse_off_thread(
    source: &Source,
    fetched: &Fetched,
    limits: ParseLimits,
) -> Result<Parsed> {
    let source_owned = source.clone();
    let fetched = fetched.clone();
    super::cpu::run(move || {
        let source = source_owned;
        let url = fetched.meta.url.as_ref();
        let parsed = parse_feed(&fetched.body, fetched.content_type.as_deref(), url, &limits)
            .map_err(|reason| match crate::fetch::walls::in_page(&fetched.body) {
                // A challenge page instead of the feed: say so, not "not a feed".
                Some(wall) => Error::BotWall {
                    source_id: source.id.clone(),
                    url: source.location.to_string(),
                    wall: wall.to_string(),
                    status: None,
                    hint: crate::fetch::walls::HINT,
                    retry_after: None,
                },
                None => parse_error(&source, reason.to_string()),
            })?;
        for warning in &parsed.warnings {
            warn!(source = %source.id, "{warning}");
        }
        let feed = parsed.feed;
        let ctx = FeedContext::new(&feed, url);
        let meta = normalize::feed_meta(&feed, &source, &ctx);
        let hints = FeedHints::read(feed.ttl, &fetched.body);
        let identities = feed
            .entries
            .iter()
            .map(|entry| normalize::identify(entry, &source, &ctx))
            .collect();
        Ok(Parsed {
            feed,
            ctx,
            meta,
            hints,
            identities,
        })
    })
    .await
    .map_err(|e| parse_error(source, format!("the parser stopped: {e}")))?
}

/// The record rebuilt from the archive that this entry is, if any: the one with its key, else
/// one with its link (or, without a link, its title), the one with its date first, since
/// several files may share a link. `adopted` holds the keys already taken in this run.
async fn rebuilt_record(
    conn: &mut crate::store::Conn,
    source: &Source,
    ctx: &FeedContext,
    entry: &crate::parse::Entry,
    key: &str,
    known: &Known,
    adopted: &HashSet<String>,
) -> Result<Option<ArticleRecord>> {
    let candidates = match known {
        Known::Archived(stored) if stored.rebuilt => {
            return Store::record(conn, &source.id, key).await;
        }
        Known::New => {
            let link = normalize::archived_link(entry, source, ctx);
            if !link.is_empty() {
                Store::rebuilt_by_link(conn, &source.id, &link).await?
            } else if let Some(title) = normalize::archived_title(entry, source, ctx) {
                Store::rebuilt_by_title(conn, &source.id, &title).await?
            } else {
                Vec::new()
            }
        }
        _ => return Ok(None),
    };
    let date = entry.date().map(|d| d.trunc_subsecs(3));
    let untaken = |r: &&ArticleRecord| !adopted.contains(&r.key);
    Ok(candidates
        .iter()
        .filter(untaken)
        .find(|r| Some(r.doc.date) == date)
        .or_else(|| candidates.iter().find(untaken))
        .cloned())
}

/// Normalizes and renders one changed entry (renders it only when `render`: `bytes` stays
/// empty for a worker); `None` when the source's filters reject it. The entry of a rebuilt
/// record keeps the record's file and takes only the entry's identity and fields.
fn normalize_change(
    (parsed, source, settings): (&Parsed, &Source, &crate::config::Settings),
    change: Change,
    full_text: Option<Extracted>,
    now: DateTime<Utc>,
    render: bool,
) -> Option<PreparedArticle> {
    let Change {
        index,
        identity,
        stored,
        adopts,
    } = change;
    let entry = &parsed.feed.entries[index];
    let first_seen = adopts
        .as_ref()
        .map(|r| r.first_seen)
        .or(stored.as_ref().map(|s| s.first_seen))
        .unwrap_or(now);
    let html = full_text.as_ref().map(|e| e.html.as_str());
    let mut article = normalize::normalize(entry, identity, source, &parsed.ctx, first_seen, html);
    let fetched = FetchedEntryRef {
        entry,
        ctx: &parsed.ctx,
    }
    .to_json();
    let (published, updated) = (entry.published, entry.updated);
    if let Some(record) = adopts {
        // The feed's text stands for the original unless the source extracts its pages,
        // which were not fetched for an article that is already archived.
        let original = source
            .extract
            .is_none()
            .then(|| article.doc.original.clone());
        article.doc = record.doc.clone();
        return Some(PreparedArticle {
            article,
            bytes: String::new(),
            words: String::new(),
            first_seen,
            is_new: false,
            canonical: record.canonical.clone(),
            enrichment: EnrichmentStep::Off,
            original,
            enriched_by: None,
            published,
            updated,
            entry: fetched,
            encoded: None,
            staged: None,
            base: None,
            base_absent: false,
            adopts: Some(record),
        });
    }
    // The date an article is filed under never changes, so its file never moves and its
    // place in the feeds holds.
    if let Some(stored) = &stored {
        article.doc.date = stored.date;
    }
    let doc = &article.doc;
    if let Some(reason) =
        source
            .filters
            .rejects(doc.title(), &doc.description, &doc.tags, &doc.link)
    {
        info!(key = %article.key, "skipped: {reason}");
        return None;
    }
    let canonical = canonical_link(
        &full_text
            .and_then(|e| e.canonical)
            .unwrap_or_else(|| article.doc.link.clone()),
    );
    let bytes = if render {
        archive::render_article(settings, article.guid.as_deref(), &article.doc)
    } else {
        String::new()
    };
    let original = Some(article.doc.original.clone());
    Some(PreparedArticle {
        article,
        bytes,
        words: String::new(),
        first_seen,
        is_new: stored.is_none(),
        canonical,
        enrichment: EnrichmentStep::Off,
        original,
        enriched_by: None,
        published,
        updated,
        entry: fetched,
        encoded: None,
        staged: None,
        base: None,
        base_absent: false,
        adopts: None,
    })
}
