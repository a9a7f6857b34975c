//! A feed read the way a run reads it, without state: fetched unconditionally, parsed off the
//! async threads with the configured limits, each entry identified and normalized. `preview`
//! prints it; `add` looks at it before it adds a source.

use chrono::{DateTime, Utc};
use url::Url;

pub use super::prepare::Parsed;
use super::prepare::parse_off_thread;
use crate::config::{FetchConfig, Source};
use crate::error::{Error, FetchFailure, Result};
use crate::fetch::{FetchOutcome, Fetched, Fetcher, Validators};
use crate::model::Article;
use crate::normalize::{self, Skip};
use crate::parse::{Entry, ParseLimits};

/// Fetches `source` without validators and parses what came as a run would. The outer error
/// is the fetch's; the inner one says why the body is not a feed (a page that announces one,
/// say), with the body kept for a caller that looks further. `base` stands in for the URL the
/// body came from, for a file saved from the web.
pub async fn read_feed(
    fetcher: &Fetcher,
    source: &Source,
    config: &FetchConfig,
    base: Option<&Url>,
) -> Result<(Fetched, Result<Parsed>)> {
    let mut fetched = match fetcher
        .fetch_source(source, &source.location, &Validators::default())
        .await?
    {
        FetchOutcome::Body(fetched) => fetched,
        FetchOutcome::NotModified(_) => {
            return Err(Error::Fetch {
                source_id: source.id.clone(),
                url: source.location.to_string(),
                kind: FetchFailure::Protocol,
                reason: "answered 304 Not Modified to an unconditional request".to_owned(),
            });
        }
    };
    if let Some(base) = base {
        fetched.meta.url = Some(base.clone());
    }
    let parsed = parse_fetched(source, &fetched, config).await;
    Ok((fetched, parsed))
}

/// Parses a body fetched for `source` as a run would, with the limits of `config`.
pub async fn parse_fetched(
    source: &Source,
    fetched: &Fetched,
    config: &FetchConfig,
) -> Result<Parsed> {
    parse_off_thread(source, fetched, ParseLimits::from_config(config)).await
}

impl Parsed {
    /// Each entry as it would be archived first (before full text and enrichment), or why it
    /// is left out, in feed order. `now` stands for when the entries are first seen.
    pub fn articles<'a>(
        &'a self,
        source: &'a Source,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = (&'a Entry, std::result::Result<Article, Skip>)> + 'a {
        self.feed
            .entries
            .iter()
            .zip(&self.identities)
            .map(move |(entry, identity)| {
                let article = identity.clone().map(|identity| {
                    normalize::normalize(entry, identity, source, &self.ctx, now, None)
                });
                (entry, article)
            })
    }
}
