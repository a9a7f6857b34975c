//! The part of a refresh that needs no write lock: parse the body, find the entries whose hash is
//! new, and normalize and render those. It runs concurrently across sources.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{Counts, Pipeline};
use crate::config::Source;
use crate::enrich::{self, Answer, Enricher, Outcome, Request};
use crate::error::{Error, Result};
use crate::extract::{self, Extracted, canonical_link};
use crate::fetch::Fetched;
use crate::model::Article;
use crate::normalize::{self, EntryIdentity, FeedContext, Skip};
use crate::parse::{ParseLimits, parse_feed};
use crate::publish::archive;
use crate::schedule::FeedHints;
use crate::store::{CachedAnswer, FeedMeta, Known, Store, StoredArticle};

/// A parsed feed, what its entries need from it, and each entry's identity (same order).
#[derive(Debug)]
pub(super) struct Parsed {
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
}

#[derive(Debug)]
pub(super) struct PreparedArticle {
    pub article: Article,
    pub bytes: String,
    pub first_seen: DateTime<Utc>,
    /// Not archived before (its key is new to the source).
    pub is_new: bool,
    /// The link that identifies the article across sources.
    pub canonical: String,
    pub enrichment: EnrichmentStep,
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
            let stored = match Store::known(&mut conn, &source.id, &identity.key).await? {
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
            let date = parsed.feed.entries[index].date();
            if let (Some(max_age), Some(date)) = (source.filters.max_age, date)
                && (Utc::now() - date).to_std().is_ok_and(|age| age > max_age)
            {
                info!(key = %identity.key, "skipped: older than max_age");
                counts.skipped += 1;
                continue;
            }
            changed.push((index, identity.clone(), stored));
        }
        drop(conn);

        let full_texts = self.full_texts(source, &parsed, &changed).await?;
        let now = Utc::now();
        let labels = self.settings().labels.clone();
        let source_owned = source.clone();
        let parsed = Arc::new(parsed);
        let shared = Arc::clone(&parsed);
        let normalized = tokio::task::spawn_blocking(move || {
            changed
                .into_iter()
                .zip(full_texts)
                .map(|((index, identity, stored), full_text)| {
                    let first_seen = stored.as_ref().map_or(now, |s| s.first_seen);
                    let entry = &shared.feed.entries[index];
                    let html = full_text.as_ref().map(|e| e.html.as_str());
                    let mut article = normalize::normalize(
                        entry,
                        identity,
                        &source_owned,
                        &shared.ctx,
                        first_seen,
                        html,
                    );
                    // The date an article is filed under never changes, so its file never
                    // moves and its place in the feeds holds.
                    if let Some(stored) = &stored {
                        article.doc.date = stored.date;
                    }
                    let doc = &article.doc;
                    if let Some(reason) = source_owned.filters.rejects(
                        doc.title(),
                        &doc.description,
                        &doc.tags,
                        &doc.link,
                    ) {
                        info!(key = %article.key, "skipped: {reason}");
                        return None;
                    }
                    let canonical = canonical_link(
                        &full_text
                            .and_then(|e| e.canonical)
                            .unwrap_or_else(|| article.doc.link.clone()),
                    );
                    let bytes = archive::render(&article.doc, &labels);
                    Some(PreparedArticle {
                        article,
                        bytes,
                        first_seen,
                        is_new: stored.is_none(),
                        canonical,
                        enrichment: EnrichmentStep::Off,
                    })
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
        Ok(Prepared {
            counts,
            articles,
            meta: parsed.meta.clone(),
            hints: parsed.hints,
            now,
            held_back,
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
                let request =
                    Request::for_document(&article.source, &article.key, &article.doc, targets);
                let hold = enricher.config().hold;
                match tokio::time::timeout(hold, enricher.enrich(&request)).await {
                    Ok(Outcome {
                        result: Ok(answer),
                        usage,
                    }) => {
                        let cached = CachedAnswer {
                            answer: serde_json::to_string(&answer).unwrap_or_default(),
                            prompt_tokens: usage.prompt_tokens,
                            completion_tokens: usage.completion_tokens,
                        };
                        (Some(answer), Some((cache_key, cached)))
                    }
                    Ok(Outcome { result: Err(e), .. }) => {
                        warn!(source = %article.source, key = %article.key, error = %e, "enrichment failed; archived without it for now");
                        (None, None)
                    }
                    Err(_) => (None, None),
                }
            }
            None => (None, None),
        };
        match answer {
            Some(answer) => {
                prepared.article.doc = enrich::apply(&prepared.article.doc, &answer, targets);
                prepared.bytes = archive::render(&prepared.article.doc, &self.settings().labels);
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
        changed: &[(usize, EntryIdentity, Option<StoredArticle>)],
    ) -> Result<Vec<Option<Extracted>>> {
        let Some(rules) = &source.extract else {
            return Ok(vec![None; changed.len()]);
        };
        let mut texts = Vec::with_capacity(changed.len());
        for (index, _, _) in changed {
            let entry = &parsed.feed.entries[*index];
            let Some(link) = normalize::entry_link(entry, &parsed.ctx) else {
                texts.push(None);
                continue;
            };
            if let Some(cached) = self.store().cached_page(link.as_str()).await? {
                texts.push(cached);
                continue;
            }
            match self.fetcher().fetch_content(&source.id, &link).await {
                Ok(page) => {
                    let html = crate::parse::encoding::html_to_utf8(
                        &page.body,
                        page.content_type.as_deref(),
                    );
                    let base = page.meta.url.clone().unwrap_or_else(|| link.clone());
                    let extracted = extract::extract(&html, &base, rules);
                    if extracted.is_none() {
                        warn!(source = %source.id, page = %link, "the page has no article text; the feed's content is used");
                    }
                    self.store()
                        .cache_page(link.as_str(), extracted.as_ref(), &Utc::now())
                        .await?;
                    texts.push(extracted);
                }
                Err(e) => {
                    warn!(source = %source.id, page = %link, error = %e, "the article page could not be fetched; the feed's content is used");
                    texts.push(None);
                }
            }
        }
        Ok(texts)
    }
}

fn parse_error(source: &Source, reason: String) -> Error {
    Error::Parse {
        source_id: source.id.clone(),
        url: source.location.to_string(),
        reason,
    }
}

/// Parsing is CPU work; it runs on the blocking pool so fetches keep flowing.
async fn parse_off_thread(
    source: &Source,
    fetched: &Fetched,
    limits: ParseLimits,
) -> Result<Parsed> {
    let source_owned = source.clone();
    let fetched = fetched.clone();
    tokio::task::spawn_blocking(move || {
        let source = source_owned;
        let url = fetched.meta.url.as_ref();
        let parsed = parse_feed(&fetched.body, fetched.content_type.as_deref(), url, &limits)
            .map_err(|reason| parse_error(&source, reason))?;
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
