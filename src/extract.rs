//! Full text: the article's own page, fetched through the same client, limits and politeness,
//! with its text taken by the source's CSS selector, else by Mozilla's Readability (as
//! `dom_smoothie` ports it); and the canonical form of article links that de-duplication
//! compares.

use scraper::{ElementRef, Html, HtmlTreeSink, Selector};
use url::Url;

use crate::config::Extract;

pub use crate::model::Extracted;

/// Elements that are never the article, wherever they sit.
const CHROME: &str = "script, style, nav, header, footer, aside, form, iframe, \
                      .comments, #comments, .share, .social, .newsletter, .related, .ad, .advert";

/// Which rule found an article's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The source's `content` selector matched.
    Selector,
    /// No selector was configured: the [`FALLBACK`]'s pick.
    Fallback,
    /// The selector matched nothing (the site's layout changed?): the [`FALLBACK`]'s pick.
    SelectorMissed,
}

impl Rule {
    pub fn describe(self) -> &'static str {
        match self {
            Rule::Selector => "the content selector matched",
            Rule::Fallback => "no selector: Readability's pick of the page",
            Rule::SelectorMissed => {
                "the content selector matched nothing; Readability's pick of the page"
            }
        }
    }
}

/// The article text of `page`: the `content` selector's element without the `remove` parts;
/// else (no selector, or it matches nothing) the [`FALLBACK`]'s pick, without them too; `None`
/// when the page has no text worth taking.
pub fn extract(page: &str, url: &Url, rules: &Extract) -> Option<Extracted> {
    extract_with_rule(page, url, rules).map(|(extracted, _)| extracted)
}

/// [`extract`], and which rule found the text.
pub fn extract_with_rule(page: &str, url: &Url, rules: &Extract) -> Option<(Extracted, Rule)> {
    let document = parse_page(&crate::text::flatten_deep_nesting(page));
    let canonical = Selector::parse("link[rel=canonical][href]")
        .ok()
        .and_then(|s| document.select(&s).next())
        .and_then(|link| link.value().attr("href"))
        .and_then(|href| url.join(href.trim()).ok())
        .map(|u| u.to_string());
    let by_selector = rules
        .content
        .as_ref()
        .and_then(|selector| document.select(selector).next());
    let (html, rule) = match (by_selector, &rules.content) {
        (Some(element), _) => (without(element, &rules.remove), Rule::Selector),
        (None, selector) => {
            let found = fallback_html(page, url, FALLBACK)?;
            let part = parse_part(&found);
            let rule = match selector {
                Some(_) => Rule::SelectorMissed,
                None => Rule::Fallback,
            };
            (without(part.root_element(), &rules.remove), rule)
        }
    };
    // Ten words, or eighty characters for scripts written without spaces.
    let text = crate::text::html_to_text(&html);
    if text.split_whitespace().count() < 10 && text.chars().count() < 80 {
        return None;
    }
    Some((Extracted { html, canonical }, rule))
}

/// Parse options of a browser without scripts, which is how the archive reads a page: a
/// `<noscript>`'s content is elements (lazy-loading pages keep their real pictures there), not
/// text that a round trip through the serializer would escape twice.
fn without_scripts() -> scraper_html5ever::ParseOpts {
    scraper_html5ever::ParseOpts {
        tree_builder: scraper_html5ever::tree_builder::TreeBuilderOpts {
            scripting_enabled: false,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn parse_page(html: &str) -> Html {
    use scraper_html5ever::tendril::TendrilSink as _;
    scraper_html5ever::parse_document(HtmlTreeSink::new(Html::new_document()), without_scripts())
        .one(html)
}

/// `html` as the content of a `<body>`.
fn parse_part(html: &str) -> Html {
    use scraper_html5ever::tendril::TendrilSink as _;
    use scraper_html5ever::{QualName, local_name, ns};
    let context = QualName::new(None, ns!(html), local_name!("body"));
    scraper_html5ever::parse_fragment(
        HtmlTreeSink::new(Html::new_fragment()),
        without_scripts(),
        context,
        Vec::new(),
        false,
    )
    .one(html)
}

/// The ways to find a page's article text when no selector finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Mozilla's Readability, as `dom_smoothie` ports it.
    Readability,
    /// The block whose direct paragraphs hold the most text, links aside.
    Density,
}

/// The fallback `extract` uses: the better of the two on the project's golden pages (see the
/// comparison in `tests/extraction.rs`).
pub const FALLBACK: Fallback = Fallback::Readability;

/// The article HTML `fallback` finds in `page` (fetched from `url`), before cleaning; `None`
/// when it finds none.
pub fn fallback_html(page: &str, url: &Url, fallback: Fallback) -> Option<String> {
    match fallback {
        Fallback::Readability => {
            let config = dom_smoothie::Config {
                // Pages of tens of thousands of elements are refused, not parsed for seconds.
                max_elements_to_parse: 50_000,
                ..Default::default()
            };
            let mut readability =
                dom_smoothie::Readability::new(page, Some(url.as_str()), Some(config)).ok()?;
            let article = readability.parse().ok()?;
            Some(article.content.to_string())
        }
        Fallback::Density => {
            let document = parse_page(&crate::text::flatten_deep_nesting(page));
            densest_block(&document).map(|block| without(block, &[]))
        }
    }
}

/// The element's inner HTML minus the elements matching `remove` (and page chrome).
fn without(element: ElementRef<'_>, remove: &[Selector]) -> String {
    let fragment = parse_part(&element.inner_html());
    let chrome = Selector::parse(CHROME).ok();
    let mut drop: Vec<ego_tree::NodeId> = Vec::new();
    for selector in remove.iter().chain(chrome.iter()) {
        drop.extend(fragment.select(selector).map(|e| e.id()));
    }
    let mut fragment = fragment;
    for id in drop {
        if let Some(mut node) = fragment.tree.get_mut(id) {
            node.detach();
        }
    }
    fragment.root_element().inner_html()
}

/// The block whose direct paragraphs hold the most text: readability's core idea, enough for
/// pages whose selector is unknown or stale.
fn densest_block(document: &Html) -> Option<ElementRef<'_>> {
    let blocks = Selector::parse("article, main, section, div, td").ok()?;
    let paragraphs = Selector::parse(":scope > p, :scope > h2, :scope > h3, :scope > blockquote, :scope > ul, :scope > ol, :scope > figure, :scope > table").ok()?;
    let chrome = Selector::parse(CHROME).ok()?;
    let anchors = Selector::parse("a").ok()?;
    let inside_chrome = |element: &ElementRef<'_>| {
        element
            .ancestors()
            .filter_map(ElementRef::wrap)
            .chain(std::iter::once(*element))
            .any(|e| chrome.matches(&e))
    };
    document
        .select(&blocks)
        .filter(|block| !inside_chrome(block))
        .map(|block| {
            let text: usize = block
                .select(&paragraphs)
                .map(|p| p.text().map(str::len).sum::<usize>())
                .sum();
            let links: usize = block
                .select(&anchors)
                .map(|a| a.text().map(str::len).sum::<usize>())
                .sum();
            (text.saturating_sub(links), block)
        })
        .filter(|(score, _)| *score > 0)
        .max_by_key(|(score, _)| *score)
        .map(|(_, block)| block)
}

pub use crate::text::links::canonical_link;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExtractConfig;

    fn rules(content: Option<&str>, remove: &[&str]) -> Extract {
        Extract::new(&ExtractConfig {
            content: content.map(str::to_owned),
            remove: remove.iter().map(|s| (*s).to_owned()).collect(),
        })
        .expect("rules")
    }

    const PAGE: &str = r#"<html><head><link rel="canonical" href="/story"></head><body>
        <nav><p>Home News Sport Weather and many other menu words here</p></nav>
        <div class="story"><p>First paragraph of the real story with enough words in it.</p>
        <div class="ad"><p>Buy things now, limited offer, many words of advertising.</p></div>
        <p>Second paragraph of the real story, also long enough to count.</p></div>
        <section class="comments"><p>great</p><p>first!</p></section></body></html>"#;

    #[test]
    fn selector_and_removals() {
        let url = Url::parse("https://news.example.org/a/b?x=1").expect("url");
        let out = extract(PAGE, &url, &rules(Some(".story"), &[])).expect("text");
        assert!(
            out.html.contains("First paragraph") && !out.html.contains("Buy things"),
            "{}",
            out.html
        );
        assert_eq!(
            out.canonical.as_deref(),
            Some("https://news.example.org/story")
        );
    }

    #[test]
    fn a_selector_that_matches_nothing_falls_back_to_the_densest_block() {
        let url = Url::parse("https://news.example.org/a").expect("url");
        let out = extract(PAGE, &url, &rules(Some(".article-body"), &[])).expect("text");
        assert!(
            out.html.contains("Second paragraph") && !out.html.contains("first!"),
            "{}",
            out.html
        );
        assert!(!out.html.contains("Home News Sport"), "{}", out.html);
    }

    #[test]
    fn canonical_links_drop_tracking_and_fragments() {
        assert_eq!(
            canonical_link("HTTPS://News.Example.ORG:443/a?utm_source=x&id=7&fbclid=abc#top"),
            "https://news.example.org/a?id=7"
        );
        assert_eq!(
            canonical_link("https://example.org/a?gclid=1"),
            "https://example.org/a"
        );
        assert_eq!(canonical_link("not a url"), "not a url");
    }
}
