//! Golden tests: article pages shaped like real news sites, served on 127.0.0.1 and fetched
//! through the pipeline, must give the expected Markdown files. `GAZETTE_BLESS=1` rewrites the
//! expected files from the current output (review the diff before committing it).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{FeedServer, assert_valid_atom, gazette, source, stderr, stdout, write_config};

/// The pages, with the title and date their feed entry gives them.
const PAGES: &[(&str, &str, &str)] = &[
    (
        "paywall-teaser",
        "Harbour towns face a summer without ferries",
        "Mon, 13 May 2024 08:00:00 GMT",
    ),
    (
        "figures",
        "On the night train north",
        "Tue, 14 May 2024 08:00:00 GMT",
    ),
    (
        "live-blog",
        "Storm Halvard makes landfall: live updates",
        "Tue, 19 Nov 2024 14:10:00 GMT",
    ),
    (
        "chinese",
        "地铁三号线开通运营",
        "Wed, 15 May 2024 08:00:00 GMT",
    ),
    (
        "no-selector-match",
        "The last lighthouse keeper",
        "Thu, 16 May 2024 08:00:00 GMT",
    ),
    (
        "scripts-and-trackers",
        "Router firmware fixes a long-standing flaw",
        "Fri, 17 May 2024 08:00:00 GMT",
    ),
    (
        "relative-links",
        "Parliament votes on the coastal bill",
        "Wed, 22 May 2024 08:00:00 GMT",
    ),
    (
        "tables",
        "Quarterly results at a glance",
        "Thu, 23 May 2024 08:00:00 GMT",
    ),
];

const PLACEHOLDER: &str = "http://pages.test";

fn fixtures() -> PathBuf {
    common::repo().join("tests/fixtures/pages")
}

fn feed(server: &FeedServer) -> String {
    let items: String = PAGES
        .iter()
        .map(|(name, title, date)| {
            format!(
                "<item><title>{title}</title><link>{}</link><guid>{name}</guid><pubDate>{date}</pubDate>\
                 <description>Teaser for {name}.</description></item>",
                server.url(&format!("/feeds/{name}.html"))
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Pages</title><link>https://news.example.org/</link>{items}</channel></rss>"
    )
}

async fn run_pages(tmp: &Path) -> FeedServer {
    let served = tmp.join("served");
    std::fs::create_dir_all(&served).expect("dir");
    for (name, _, _) in PAGES {
        std::fs::copy(
            fixtures().join(format!("{name}.html")),
            served.join(format!("{name}.html")),
        )
        .expect("page");
    }
    let server = FeedServer::start(&served).await;
    std::fs::write(served.join("pages.xml"), feed(&server)).expect("feed");
    let config = format!(
        "[fetch]\nallow_private = [\"127.0.0.1/32\"]\n{}",
        source(
            "pages",
            &server.url("/feeds/pages.xml"),
            "extract = { content = \"article .article-body\", remove = [\".paywall\", \".editor\"] }",
        )
    );
    write_config(tmp, &config);
    let run = gazette(tmp, &["fetch"]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert!(stdout(&run).contains("pages: 8 new"), "{}", stdout(&run));
    server
}

fn archived(tmp: &Path) -> Vec<(PathBuf, String)> {
    common::files_with_mtimes(&tmp.join("archive"))
        .into_iter()
        .map(|(path, _)| {
            let text = std::fs::read_to_string(&path).expect("archive file");
            (path, text)
        })
        .collect()
}

#[tokio::test]
async fn article_pages_give_the_expected_markdown() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = run_pages(tmp.path()).await;
    let base = server.url("");
    let files = archived(tmp.path());
    assert_eq!(files.len(), PAGES.len());
    let bless = std::env::var_os("GAZETTE_BLESS").is_some();
    for (name, title, _) in PAGES {
        let (_, text) = files
            .iter()
            .find(|(_, text)| text.contains(&format!("/feeds/{name}.html)")))
            .unwrap_or_else(|| panic!("no archive file for {name} ({title})"));
        let text = text.replace(&base, PLACEHOLDER);
        let expected_path = fixtures().join("expected").join(format!("{name}.md"));
        if bless {
            std::fs::create_dir_all(expected_path.parent().expect("dir")).expect("dir");
            std::fs::write(&expected_path, &text).expect("bless");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        assert_eq!(
            text,
            expected,
            "{name} differs from {}",
            expected_path.display()
        );
    }
    assert_valid_atom(&tmp.path().join("public/atom.xml"));
}

#[tokio::test]
async fn hostile_markup_never_reaches_the_archive_or_the_feed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    run_pages(tmp.path()).await;
    let feed = std::fs::read_to_string(tmp.path().join("public/atom.xml")).expect("feed");
    let mut everything = feed.clone();
    for (_, text) in archived(tmp.path()) {
        everything.push_str(&text);
    }
    for bad in [
        "javascript:",
        "data:text",
        "alert(",
        "onerror",
        "onclick",
        "<script",
        "<iframe",
        "<svg",
        "steal()",
        "track.example.com",
        "display:none",
    ] {
        assert!(
            !everything.to_lowercase().contains(&bad.to_lowercase()),
            "{bad} survived"
        );
    }
}

#[tokio::test]
async fn extracted_pages_are_cached_by_url() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = run_pages(tmp.path()).await;
    let settings =
        gazette::config::Settings::load(&tmp.path().join("config/gazette.toml")).expect("config");
    let store = gazette::store::Store::open(&settings.state_url)
        .await
        .expect("state");
    let rules = settings.sources[0]
        .extract
        .as_ref()
        .map(|e| e.written.clone())
        .expect("the source extracts");
    for (name, _, _) in PAGES {
        let cached = store
            .cached_page(&server.url(&format!("/feeds/{name}.html")), &rules)
            .await
            .expect("query");
        assert!(
            cached.is_some_and(|page| page.is_some()),
            "{name} was not cached"
        );
    }
}

/// `preview URL --extract` prints the Markdown an article page would be archived as, and which
/// rule found it: the first `--selector` that matches, else Readability's pick.
#[tokio::test]
async fn preview_extract_shows_the_text_and_the_rule() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).expect("dir");
    std::fs::write(
        served.join("page.html"),
        "<html><head><link rel=\"canonical\" href=\"/story\"></head><body>\
         <nav><p>Home News Sport Weather and many other menu words here</p></nav>\
         <div class=\"story\"><p>First paragraph of the real story with enough words in it.</p>\
         <div class=\"ad\"><p>Buy things now, limited offer, many words of advertising.</p></div>\
         <p>Second paragraph of the real story, also <b>long</b> enough to count.</p>\
         <img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\" data-src=\"/img/lazy.jpg\" alt=\"Lazy\">\
         <img src=\"\" srcset=\"/img/small.jpg 480w, /img/large.jpg 1200w\" alt=\"Sized\">\
         <img class=\"lazyload\" src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\" alt=\"\">\
         <noscript><img src=\"/img/fallback.jpg\" alt=\"Fallback\"></noscript></div>\
         </body></html>",
    )
    .expect("page");
    let server = common::FeedServer::start(&served).await;
    let url = server.url("/feeds/page.html");

    let out = common::gazette(
        tmp.path(),
        &[
            "preview",
            &url,
            "--extract",
            "--selector",
            ".gone",
            "--selector",
            ".story",
            "--remove",
            ".ad",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    assert!(
        text.starts_with("rule: selector `.story` matched\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("canonical: {}", server.url("/story"))),
        "{text}"
    );
    assert!(text.contains("First paragraph of the real story"), "{text}");
    assert!(text.contains("also **long** enough"), "Markdown: {text}");
    assert!(!text.contains("Buy things now"), "removed: {text}");
    assert!(!text.contains("menu words"), "{text}");
    // Lazy-loaded pictures keep their real address: data-src, the largest srcset candidate,
    // and a noscript fallback in place of its placeholder.
    for (alt, path) in [
        ("Lazy", "/img/lazy.jpg"),
        ("Sized", "/img/large.jpg"),
        ("Fallback", "/img/fallback.jpg"),
    ] {
        let picture = format!("![{alt}]({})", server.url(path));
        assert!(text.contains(&picture), "{picture} in {text}");
    }
    assert!(!text.contains("data:"), "{text}");
    assert_eq!(text.matches("![").count(), 3, "{text}");

    let out = common::gazette(
        tmp.path(),
        &["preview", &url, "--extract", "--selector", ".gone"],
    )
    .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    assert!(
        text.starts_with("rule: no selector matched: Readability's pick of the page"),
        "{text}"
    );
    assert!(
        text.contains("Second paragraph of the real story"),
        "{text}"
    );
}

/// A source whose content selector stops matching (the site changed its layout) says so in
/// `status`, instead of silently archiving whatever the density rule finds.
#[tokio::test]
async fn a_selector_that_stops_matching_shows_in_status() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).expect("dir");
    let page = |class: &str, n: u32| {
        format!(
            "<html><body><div class=\"{class}\"><p>Paragraph one of story {n}, with enough words \
             to be an article.</p><p>Paragraph two of story {n}, also long enough to count \
             here.</p></div></body></html>"
        )
    };
    std::fs::write(served.join("one.html"), page("story", 1)).expect("page");
    std::fs::write(served.join("two.html"), page("post-body", 2)).expect("page");
    let server = FeedServer::start(&served).await;
    let item = |n: u32, name: &str| {
        format!(
            "<item><title>Story {n}</title><link>{}</link><guid>s{n}</guid>\
             <pubDate>Mon, 13 May 2024 0{n}:00:00 +0000</pubDate></item>",
            server.url(&format!("/feeds/{name}.html"))
        )
    };
    let write_feed = |items: &str| {
        std::fs::write(
            served.join("feed.xml"),
            format!("<rss version=\"2.0\"><channel><title>T</title>{items}</channel></rss>"),
        )
        .expect("feed")
    };
    write_feed(&item(1, "one"));
    write_config(
        tmp.path(),
        &format!(
            "[fetch]\nallow_private = [\"127.0.0.1/32\"]\n{}",
            source(
                "site",
                &server.url("/feeds/feed.xml"),
                "extract = { content = \".story\" }"
            )
        ),
    );
    let stopped = |tmp: std::path::PathBuf| async move {
        let status = gazette(&tmp, &["status", "--json"]).await;
        let value: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
        value["sources"][0]["selector_stopped_matching"].clone()
    };
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(stopped(tmp.path().to_path_buf()).await, false);

    // The site's new layout: the next article's page has no `.story`.
    write_feed(&format!("{}{}", item(2, "two"), item(1, "one")));
    let run = gazette(tmp.path(), &["fetch", "--force"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(stopped(tmp.path().to_path_buf()).await, true);
    let text = gazette(tmp.path(), &["status"]).await;
    assert!(
        stdout(&text).contains("extract selector no longer matches"),
        "{}",
        stdout(&text)
    );
}

/// The words (CJK characters one by one) of a text, lowercased, for comparing extractions.
fn words(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let mut word = String::new();
    let flush = |word: &mut String, counts: &mut HashMap<String, usize>| {
        if !word.is_empty() {
            *counts.entry(std::mem::take(word)).or_insert(0) += 1;
        }
    };
    for c in text.chars() {
        let cjk = matches!(c, '\u{3040}'..='\u{30ff}' | '\u{3400}'..='\u{9fff}' | '\u{ac00}'..='\u{d7af}');
        if cjk {
            flush(&mut word, &mut counts);
            *counts.entry(c.to_string()).or_insert(0) += 1;
        } else if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else {
            flush(&mut word, &mut counts);
        }
    }
    flush(&mut word, &mut counts);
    counts
}

/// Precision, recall and F1 of `found` against `expected`, by words.
fn overlap(found: &HashMap<String, usize>, expected: &HashMap<String, usize>) -> (f64, f64, f64) {
    let total = |m: &HashMap<String, usize>| m.values().sum::<usize>() as f64;
    let shared: usize = found
        .iter()
        .map(|(w, n)| (*n).min(expected.get(w).copied().unwrap_or(0)))
        .sum();
    let (p, r) = (
        shared as f64 / total(found).max(1.0),
        shared as f64 / total(expected).max(1.0),
    );
    let f1 = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    (p, r, f1)
}

/// Which fallback finds the article text of a page no selector matches: Mozilla's Readability
/// (`dom_smoothie`) or the paragraph-density rule, scored by word overlap with the golden
/// pages' expected text. The one `extract` uses must score at least as well as the other.
#[test]
fn the_fallback_in_use_is_the_better_one_on_the_golden_pages() {
    use gazette::extract::{Fallback, fallback_html};
    let mut sums = [0.0_f64; 2];
    let methods = [Fallback::Readability, Fallback::Density];
    eprintln!("page                   readability P/R/F1       density P/R/F1");
    for (name, _, _) in PAGES {
        let page = std::fs::read_to_string(fixtures().join(format!("{name}.html"))).expect("page");
        let expected_file =
            std::fs::read_to_string(fixtures().join("expected").join(format!("{name}.md")))
                .expect("expected");
        // The article's text: after its heading, without the source link.
        let body: String = expected_file
            .lines()
            .skip_while(|l| !l.starts_with("# "))
            .skip(1)
            .filter(|l| !l.starts_with("[Source Link]"))
            .collect::<Vec<_>>()
            .join("\n");
        let expected = words(&body);
        let url = url::Url::parse(&format!("http://pages.test/feeds/{name}.html")).expect("url");
        let mut line = format!("{name:<22}");
        for (i, method) in methods.iter().enumerate() {
            let html = fallback_html(&page, &url, *method).unwrap_or_default();
            let text = gazette::text::html_to_markdown(&html, Some(&url));
            let (p, r, f1) = overlap(&words(&text), &expected);
            sums[i] += f1;
            line.push_str(&format!("  {p:.2}/{r:.2}/{f1:.2}           "));
        }
        eprintln!("{line}");
    }
    let pages = PAGES.len() as f64;
    let (readability, density) = (sums[0] / pages, sums[1] / pages);
    eprintln!("mean F1: readability {readability:.3}, density {density:.3}");
    let in_use = gazette::extract::FALLBACK;
    let (ours, other) = match in_use {
        Fallback::Readability => (readability, density),
        Fallback::Density => (density, readability),
    };
    assert!(
        ours >= other,
        "{in_use:?} scores {ours:.3}, the other {other:.3}: switch extract::FALLBACK"
    );
}
