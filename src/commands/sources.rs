//! Commands that change the sources: `import`, `add`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use gazette::config::{Location, Source};
use gazette::fetch::Fetcher;
use gazette::pipeline::{parse_fetched, read_feed};

use super::load;

/// `gazette export`: the sources as OPML, named and linked as their feeds say (from state, when
/// there is one).
pub(crate) async fn export(settings: &gazette::config::Settings) -> Result<ExitCode> {
    let known = match settings.state_file.as_deref() {
        // A state file that does not exist yet knows nothing; opening it would create it.
        Some(file) if !file.exists() => Default::default(),
        _ => {
            let store = super::open_store(settings).await?;
            let known = store.source_meta().await?;
            store.close().await;
            known
                .into_iter()
                .map(|(id, (title, site))| (id, gazette::opml::Known { title, site }))
                .collect()
        }
    };
    print!(
        "{}",
        gazette::opml::export(&settings.feed.title, &settings.sources, &known)
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn import(config: &Path, file: &Path) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let feeds =
        gazette::opml::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let outcome = gazette::config::edit::add_sources(config, &feeds)?;
    println!(
        "{}: {} sources added ({}), {} already configured",
        config.display(),
        outcome.added.len(),
        outcome.added.join(", "),
        outcome.skipped.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn add(config: &Path, url: &str, tags: Vec<String>) -> Result<ExitCode> {
    let settings = load(config)?;
    let fetcher = Fetcher::new(&settings.fetch)?;
    let location = Location::parse(url, &std::env::current_dir()?).map_err(anyhow::Error::msg)?;
    let source = Source::adhoc("add", location);
    let (page, parsed) = read_feed(&fetcher, &source, &settings.fetch, None).await?;
    let (feed_url, feed) = match parsed {
        Ok(parsed) => (url.to_owned(), parsed.feed),
        Err(not_a_feed) => {
            let base = page
                .meta
                .url
                .clone()
                .ok_or_else(|| anyhow::anyhow!("{url}: no base URL"))?;
            let html =
                gazette::parse::encoding::html_to_utf8(&page.body, page.content_type.as_deref());
            let found = gazette::opml::discover(&html, &base);
            let Some(first) = found.first() else {
                anyhow::bail!(
                    "{url}: neither a feed nor a page that announces one (<link rel=\"alternate\">): {not_a_feed}"
                );
            };
            // The page chose this address, not the operator: it is fetched as content, through
            // the SSRF guard.
            let announced = url::Url::parse(&first.url)?;
            let fetched = fetcher.fetch_content("add", &announced).await?;
            let announced_source = Source::adhoc("add", Location::Http(announced));
            let feed = parse_fetched(&announced_source, &fetched, &settings.fetch)
                .await
                .map(|parsed| parsed.feed)
                .map_err(|e| {
                    anyhow::anyhow!("announced as a feed, but not readable as one: {e}")
                })?;
            (first.url.clone(), feed)
        }
    };
    let title = feed
        .title
        .as_ref()
        .map(|t| gazette::text::html_to_text(&t.value))
        .unwrap_or_default();
    println!("feed: {feed_url}");
    println!("title: {title}");
    println!("entries: {}", feed.entries.len());
    for entry in feed.entries.iter().take(3) {
        let entry_title = entry
            .title
            .as_ref()
            .map(|t| gazette::text::html_to_text(&t.value))
            .unwrap_or_default();
        println!("  - {entry_title}");
    }
    let found = gazette::opml::FoundFeed {
        title,
        url: feed_url,
        tags: gazette::normalize::normalize_tags(tags.iter().map(String::as_str)),
        id: None,
    };
    let outcome = gazette::config::edit::add_sources(config, &[found])?;
    match outcome.added.first() {
        Some(id) => println!("added source {id} to {}", config.display()),
        None => println!("already configured in {}", config.display()),
    }
    Ok(ExitCode::SUCCESS)
}
