//! What is built from the state database: the daemon's pages and feeds (which must never need
//! the archive files), the filtered feeds as feeds of their own, files rendered again when a
//! rewrite rule or a label changes, `remove [--purge]`, and `enrich --all` over what is
//! already archived. Everything runs the real binary against servers on 127.0.0.1.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::daemon::{Daemon, client};
use common::{
    FeedServer, assert_valid_atom, gazette, gazette_with_env, source, stderr, stdout, write_config,
};
use serde_json::{Value, json};

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

/// One RSS item.
struct Item<'a> {
    guid: &'a str,
    title: &'a str,
    /// Minutes past 09:00 on 13 May 2024: distinct dates keep the feed order stable.
    minute: u32,
    categories: &'a [&'a str],
}

/// An RSS 2.0 feed whose item links point at `base` (the feed server, never fetched): the
/// tests name no address but 127.0.0.1.
fn rss(title: &str, base: &str, items: &[Item<'_>]) -> String {
    let items: String = items
        .iter()
        .map(|i| {
            let categories: String = i
                .categories
                .iter()
                .map(|c| format!("<category>{c}</category>"))
                .collect();
            format!(
                "<item><guid>{guid}</guid><title>{title}</title><link>{base}/pages/{guid}</link>\
                 <pubDate>Mon, 13 May 2024 09:{minute:02}:00 GMT</pubDate>{categories}\
                 <description>The story filed as {guid}.</description></item>",
                guid = i.guid,
                title = i.title,
                minute = i.minute,
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{title}</title>\
         <link>{base}/</link><description>{title}</description>{items}</channel></rss>"
    )
}

/// Every file below `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    common::files_with_mtimes(dir)
        .into_iter()
        .map(|(path, mtime)| {
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            (path, (bytes, mtime))
        })
        .collect()
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The archive file whose front matter has this title.
fn file_titled(archive: &Path, title: &str) -> PathBuf {
    let needle = format!("title: {title}\n");
    common::files_with_mtimes(archive)
        .into_iter()
        .map(|(path, _)| path)
        .find(|path| read_text(path).contains(&needle))
        .unwrap_or_else(|| panic!("no archive file is titled {title:?}"))
}

fn config_path(dir: &Path) -> PathBuf {
    dir.join("config/gazette.toml")
}

/// Inserts `lines` at the top of the `[feed]` table that `write_config` writes.
fn add_to_feed_table(dir: &Path, lines: &str) {
    let path = config_path(dir);
    let text = read_text(&path);
    std::fs::write(
        &path,
        text.replacen("[feed]\n", &format!("[feed]\n{lines}"), 1),
    )
    .expect("rewrite the config");
}

// ---------------------------------------------------------------------------------------------
// Two tagged sources, fetched before the daemon starts.

const ALPHA_TITLES: [&str; 3] = [
    "Harbour deal agreed after long talks",
    "Ferry timetable changes in June",
    "Bridge repairs finish early",
];
const BETA_TITLES: [&str; 3] = [
    "Compiler release brings faster builds",
    "Database engine adds column storage",
    "Terminal emulator gains ligatures",
];

/// Serves `alpha` (tag `world`) and `beta` (tag `tech`); one entry of each also carries the
/// category `Analysis`, so the `analysis` tag spans both sources and not every entry.
async fn two_sources(tmp: &Path) -> FeedServer {
    let served = tmp.join("served");
    std::fs::create_dir_all(&served).expect("served dir");
    let server = FeedServer::start(&served).await;
    let base = server.url("");
    let alpha = rss(
        "Alpha Herald",
        &format!("{base}/alpha"),
        &[
            Item {
                guid: "a1",
                title: ALPHA_TITLES[0],
                minute: 1,
                categories: &["Analysis"],
            },
            Item {
                guid: "a2",
                title: ALPHA_TITLES[1],
                minute: 3,
                categories: &[],
            },
            Item {
                guid: "a3",
                title: ALPHA_TITLES[2],
                minute: 5,
                categories: &[],
            },
        ],
    );
    let beta = rss(
        "Beta Ledger",
        &format!("{base}/beta"),
        &[
            Item {
                guid: "b1",
                title: BETA_TITLES[0],
                minute: 2,
                categories: &[],
            },
            Item {
                guid: "b2",
                title: BETA_TITLES[1],
                minute: 4,
                categories: &["Analysis"],
            },
            Item {
                guid: "b3",
                title: BETA_TITLES[2],
                minute: 6,
                categories: &[],
            },
        ],
    );
    std::fs::write(served.join("alpha.xml"), alpha).expect("alpha feed");
    std::fs::write(served.join("beta.xml"), beta).expect("beta feed");
    // A long interval: the daemon started after the fetch finds nothing due, so whatever it
    // serves comes from what the fetch stored.
    let sources = [
        source(
            "alpha",
            &server.url("/feeds/alpha.xml"),
            "tags = [\"world\"]\nlanguage = \"en\"\ninterval = \"1h\"",
        ),
        source(
            "beta",
            &server.url("/feeds/beta.xml"),
            "tags = [\"tech\"]\nlanguage = \"en\"\ninterval = \"1h\"",
        ),
    ]
    .concat();
    write_config(tmp, &format!("[fetch]\nhonor_ttl = false\n{sources}"));
    let fetch = gazette(tmp, &["fetch"]).await;
    assert!(
        fetch.status.success(),
        "{}{}",
        stdout(&fetch),
        stderr(&fetch)
    );
    assert_eq!(
        common::files_with_mtimes(&tmp.join("archive")).len(),
        6,
        "{}",
        stdout(&fetch)
    );
    server
}

/// A GET that must answer `expected`; returns the response's headers and body.
async fn get_expecting(
    http: &reqwest::Client,
    url: &str,
    expected: u16,
) -> (HeaderMap, axum::body::Bytes) {
    let response = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(
        status,
        expected,
        "GET {url}: {}",
        String::from_utf8_lossy(&body)
    );
    (headers, body)
}

fn utf8(body: &[u8]) -> String {
    String::from_utf8(body.to_vec()).expect("a UTF-8 body")
}

#[tokio::test]
async fn serving_reads_no_archive_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let _feeds = two_sources(tmp.path()).await;
    let archive = tmp.path().join("archive");
    let article = file_titled(&archive, ALPHA_TITLES[0]);
    let article_bytes = std::fs::read(&article).expect("the article's file");
    let relative = article
        .strip_prefix(&archive)
        .expect("below the archive")
        .to_str()
        .expect("a UTF-8 path")
        .to_owned();
    let stem = relative.strip_suffix(".md").expect("a Markdown file");

    let daemon = Daemon::start(tmp.path()).await;
    // Renamed, not made unreadable: the tests run as root, who reads anything. Nothing has
    // been requested yet, so no response can come from a cache filled while the files were
    // there.
    let moved = tmp.path().join("archive-moved");
    std::fs::rename(&archive, &moved).expect("rename the archive");
    let http = client();

    let (_, index) = get_expecting(&http, &daemon.url("/"), 200).await;
    let index = utf8(&index);
    for title in ALPHA_TITLES.iter().chain(&BETA_TITLES) {
        assert!(
            index.contains(title),
            "{title} not on the front page:\n{index}"
        );
    }
    assert!(
        index.contains(&format!("href=\"/articles/{stem}.html\"")),
        "no link to the article's page:\n{index}"
    );

    let (atom_headers, atom) = get_expecting(&http, &daemon.url("/atom.xml"), 200).await;
    let merged = parse_atom(&utf8(&atom));
    assert_eq!(merged.entries.len(), 6, "{merged:?}");

    let (_, json) = get_expecting(&http, &daemon.url("/feed.json"), 200).await;
    let json: Value = serde_json::from_slice(&json).expect("a JSON Feed");
    let json_titles: BTreeSet<&str> = json["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["title"].as_str())
        .collect();
    let all_titles: BTreeSet<&str> = ALPHA_TITLES.iter().chain(&BETA_TITLES).copied().collect();
    assert_eq!(json_titles, all_titles);

    let (_, tag) = get_expecting(&http, &daemon.url("/tags/analysis.xml"), 200).await;
    let tag = parse_atom(&utf8(&tag));
    let tag_titles: BTreeSet<&str> = tag.entries.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(
        tag_titles,
        BTreeSet::from([ALPHA_TITLES[0], BETA_TITLES[1]]),
        "{tag:?}"
    );

    let (_, beta) = get_expecting(&http, &daemon.url("/sources/beta.xml"), 200).await;
    let beta = parse_atom(&utf8(&beta));
    let beta_titles: BTreeSet<&str> = beta.entries.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(
        beta_titles,
        BETA_TITLES.iter().copied().collect::<BTreeSet<_>>()
    );

    let (_, page) = get_expecting(&http, &daemon.url(&format!("/articles/{stem}.html")), 200).await;
    let page = utf8(&page);
    assert!(
        page.contains(&format!("<h1>{}</h1>", ALPHA_TITLES[0])),
        "{page}"
    );
    let (md_headers, markdown) =
        get_expecting(&http, &daemon.url(&format!("/articles/{relative}")), 200).await;
    assert_eq!(
        utf8(&markdown),
        utf8(&article_bytes),
        "the served Markdown is not the archived file"
    );
    assert_eq!(
        md_headers[header::CONTENT_TYPE],
        "text/markdown; charset=utf-8"
    );

    // Revalidation with the ETags just served costs a 304, for a feed and for a file.
    for (path, headers) in [
        ("/atom.xml".to_owned(), &atom_headers),
        (format!("/articles/{relative}"), &md_headers),
    ] {
        let etag = headers[header::ETAG].to_str().expect("an ETag").to_owned();
        let again = http
            .get(daemon.url(&path))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .expect("revalidate");
        assert_eq!(again.status(), 304, "{path} with If-None-Match {etag}");
    }
    // Nothing put the archive back behind the test's back.
    assert!(!archive.exists(), "the archive folder was recreated");
}

/// What the tests look at in an Atom document.
#[derive(Debug)]
struct AtomDoc {
    id: String,
    self_href: String,
    entries: Vec<AtomEntry>,
}

#[derive(Debug)]
struct AtomEntry {
    title: String,
    link: String,
    categories: Vec<String>,
    source_title: String,
}

fn atom_child<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
    node.children()
        .find(|c| c.is_element() && c.has_tag_name((ATOM_NS, name)))
}

fn atom_text(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    atom_child(node, name)
        .and_then(|c| c.text())
        .unwrap_or_default()
        .to_owned()
}

fn parse_atom(text: &str) -> AtomDoc {
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let feed = doc.root_element();
    assert!(
        feed.has_tag_name((ATOM_NS, "feed")),
        "not an Atom feed:\n{text}"
    );
    let self_href = feed
        .children()
        .filter(|c| c.has_tag_name((ATOM_NS, "link")))
        .find(|l| l.attribute("rel") == Some("self"))
        .and_then(|l| l.attribute("href"))
        .unwrap_or_else(|| panic!("no self link:\n{text}"))
        .to_owned();
    let entries = feed
        .children()
        .filter(|c| c.has_tag_name((ATOM_NS, "entry")))
        .map(|entry| AtomEntry {
            title: atom_text(entry, "title"),
            link: entry
                .children()
                .filter(|c| c.has_tag_name((ATOM_NS, "link")))
                .find(|l| l.attribute("rel").unwrap_or("alternate") == "alternate")
                .and_then(|l| l.attribute("href"))
                .unwrap_or_default()
                .to_owned(),
            categories: entry
                .children()
                .filter(|c| c.has_tag_name((ATOM_NS, "category")))
                .filter_map(|c| c.attribute("term"))
                .map(str::to_owned)
                .collect(),
            source_title: atom_child(entry, "source")
                .map(|s| atom_text(s, "title"))
                .unwrap_or_default(),
        })
        .collect();
    AtomDoc {
        id: atom_text(feed, "id"),
        self_href,
        entries,
    }
}

#[tokio::test]
async fn filtered_feeds_are_distinct_feeds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let feeds = two_sources(tmp.path()).await;
    let daemon = Daemon::start(tmp.path()).await;
    let http = client();
    let mut docs = Vec::new();
    for (n, path) in ["/atom.xml", "/tags/analysis.xml", "/sources/alpha.xml"]
        .into_iter()
        .enumerate()
    {
        let (_, body) = get_expecting(&http, &daemon.url(path), 200).await;
        // jing reads files: each body is saved as served and validated against RFC 4287.
        let file = tmp.path().join(format!("served-feed-{n}.xml"));
        std::fs::write(&file, &body).expect("save the feed");
        assert_valid_atom(&file);
        docs.push(parse_atom(&utf8(&body)));
    }
    let [merged, tag, alpha] = <[AtomDoc; 3]>::try_from(docs).expect("three feeds");
    // Unknown names are not feeds: a tag no article carries, like a source not configured.
    get_expecting(&http, &daemon.url("/tags/no-such-tag.xml"), 404).await;
    get_expecting(&http, &daemon.url("/sources/no-such-source.xml"), 404).await;

    let ids: BTreeSet<&str> = [&merged, &tag, &alpha]
        .iter()
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(ids.len(), 3, "feed ids are not distinct: {ids:?}");
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
    let selves: BTreeSet<&str> = [&merged, &tag, &alpha]
        .iter()
        .map(|d| d.self_href.as_str())
        .collect();
    assert_eq!(selves.len(), 3, "self links are not distinct: {selves:?}");
    // Each self link is the feed's own address next to the merged one's (`feed.self_url`).
    assert_eq!(merged.self_href, "http://127.0.0.1/atom.xml");
    assert_eq!(tag.self_href, "http://127.0.0.1/tags/analysis.xml");
    assert_eq!(alpha.self_href, "http://127.0.0.1/sources/alpha.xml");

    assert_eq!(merged.entries.len(), 6, "{merged:?}");
    // The tag feed: only entries with the tag, from both sources.
    assert_eq!(tag.entries.len(), 2, "{tag:?}");
    for entry in &tag.entries {
        assert!(
            entry.categories.iter().any(|c| c == "analysis"),
            "an entry without the tag in the tag feed: {entry:?}"
        );
    }
    let tag_sources: BTreeSet<&str> = tag
        .entries
        .iter()
        .map(|e| e.source_title.as_str())
        .collect();
    assert_eq!(tag_sources, BTreeSet::from(["Alpha Herald", "Beta Ledger"]));
    // The source feed: every alpha entry, nothing else.
    let alpha_prefix = feeds.url("/alpha/pages/a");
    assert_eq!(alpha.entries.len(), 3, "{alpha:?}");
    for entry in &alpha.entries {
        assert!(
            entry.link.starts_with(&alpha_prefix) && entry.source_title == "Alpha Herald",
            "an entry of another source in alpha's feed: {entry:?}"
        );
    }
}

/// Appends a comment to each of `files` (under `public/`): a feed file that is rendered again
/// loses it.
fn mark(public: &Path, files: &[&str]) {
    for file in files {
        let path = public.join(file);
        let mut text = read_text(&path);
        text.push_str("<!-- left as it was -->");
        std::fs::write(&path, text).expect("mark a feed file");
    }
}

/// The files of `files` (under `public/`) that still carry the mark.
fn marked(public: &Path, files: &[&str]) -> BTreeSet<String> {
    files
        .iter()
        .filter(|file| read_text(&public.join(file)).ends_with("<!-- left as it was -->"))
        .map(|file| (*file).to_owned())
        .collect()
}

async fn run_ok(dir: &Path, args: &[&str]) {
    let run = gazette(dir, args).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
}

#[tokio::test]
async fn a_run_renders_only_the_feeds_whose_inputs_changed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let feeds = two_sources(tmp.path()).await;
    add_to_feed_table(
        tmp.path(),
        "json = true\ntag_feeds = true\nsource_feeds = true\n",
    );
    let public = tmp.path().join("public");
    let all = [
        "atom.xml",
        "feed.json",
        "tags/world.xml",
        "tags/tech.xml",
        "tags/analysis.xml",
        "sources/alpha.xml",
        "sources/beta.xml",
    ];
    run_ok(tmp.path(), &["fetch"]).await;
    for file in all {
        assert!(public.join(file).is_file(), "{file} was not written");
    }

    // Nothing new, nothing due: no feed is rendered, so none loses its mark.
    mark(&public, &all);
    run_ok(tmp.path(), &["fetch"]).await;
    assert_eq!(marked(&public, &all).len(), all.len());

    // A feed file that went missing is written again, and only that one.
    std::fs::remove_file(public.join("tags/world.xml")).expect("remove a tag feed");
    run_ok(tmp.path(), &["fetch"]).await;
    assert!(public.join("tags/world.xml").is_file());
    assert_eq!(marked(&public, &all).len(), all.len() - 1);

    // A new alpha entry changes the merged feed, alpha's and its tags', not beta's.
    mark(&public, &["tags/world.xml"]);
    let alpha = rss(
        "Alpha Herald",
        &feeds.url("/alpha"),
        &[
            Item {
                guid: "a4",
                title: "Lighthouse reopens to visitors",
                minute: 7,
                categories: &[],
            },
            Item {
                guid: "a1",
                title: ALPHA_TITLES[0],
                minute: 1,
                categories: &["Analysis"],
            },
        ],
    );
    std::fs::write(tmp.path().join("served/alpha.xml"), alpha).expect("alpha feed");
    run_ok(tmp.path(), &["fetch", "--force"]).await;
    assert_eq!(
        marked(&public, &all),
        BTreeSet::from([
            "tags/tech.xml".to_owned(),
            "tags/analysis.xml".to_owned(),
            "sources/beta.xml".to_owned(),
        ])
    );
    assert!(read_text(&public.join("sources/alpha.xml")).contains("Lighthouse reopens"));

    // Changed feed settings render every feed again.
    mark(&public, &all);
    add_to_feed_table(tmp.path(), "author = \"The Desk\"\n");
    run_ok(tmp.path(), &["fetch"]).await;
    assert_eq!(marked(&public, &all), BTreeSet::new());
    assert_valid_atom(&public.join("atom.xml"));
}

// ---------------------------------------------------------------------------------------------
// Rewrite rules and labels: files rendered again from state.

/// A feed server that sends an ETag and, when `honor` is set, answers a matching
/// If-None-Match with 304. It counts both kinds of answer.
#[derive(Debug, Default)]
struct EtagFeed {
    body: Mutex<String>,
    honor: AtomicBool,
    full: AtomicUsize,
    not_modified: AtomicUsize,
}

const FEED_ETAG: &str = "\"daily-v1\"";

async fn etag_feed(State(feed): State<Arc<EtagFeed>>, request: HeaderMap) -> Response {
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == FEED_ETAG));
    if matches && feed.honor.load(Ordering::SeqCst) {
        feed.not_modified.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, FEED_ETAG)]).into_response();
    }
    feed.full.fetch_add(1, Ordering::SeqCst);
    let body = feed
        .body
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    (
        [
            (header::CONTENT_TYPE, "application/rss+xml"),
            (header::ETAG, FEED_ETAG),
        ],
        body,
    )
        .into_response()
}

/// Starts the ETag server on 127.0.0.1; returns its base URL.
async fn start_etag_feed(feed: &Arc<EtagFeed>) -> String {
    let app = Router::new()
        .route("/daily.xml", get(etag_feed))
        .with_state(Arc::clone(feed));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("etag feed server") });
    base
}

const SITE_SUFFIX: &str = " | The Daily Example";
const DAILY_TITLES: [&str; 4] = [
    "Markets rally on rate hopes | The Daily Example",
    "Quiet session for bonds",
    "Storm warning issued for the coast | The Daily Example",
    "Local fair opens its gates",
];
/// Drops a trailing `| Site name` (TOML basic string: each `\\` is one backslash).
const TITLE_RULE: &str = r#"rewrite = { title = [{ pattern = "\\s*\\|[^|]*$", replace = "" }] }"#;

fn daily_config(dir: &Path, url: &str, extra: &str, top: &str) {
    write_config(
        dir,
        &format!(
            "{top}{}",
            source("daily", url, &format!("language = \"en\"\n{extra}"))
        ),
    );
}

/// The daily feed, served with an ETag; returns it and the server's base URL.
async fn daily_feed() -> (Arc<EtagFeed>, String) {
    let feed = Arc::new(EtagFeed::default());
    let base = start_etag_feed(&feed).await;
    let items: Vec<Item<'_>> = DAILY_TITLES
        .iter()
        .enumerate()
        .map(|(n, title)| Item {
            guid: ["d1", "d2", "d3", "d4"][n],
            title,
            minute: u32::try_from(n).expect("small"),
            categories: &[],
        })
        .collect();
    *feed
        .body
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        rss("The Daily Example", &base, &items);
    (feed, base)
}

/// The daily feed (answered 304 when unchanged if `answer_304`), archived once without the
/// title rule: the feed, the server's base URL, the feed's URL and the archive's four files.
async fn daily_archived(
    dir: &Path,
    answer_304: bool,
) -> (
    Arc<EtagFeed>,
    String,
    String,
    BTreeMap<PathBuf, (Vec<u8>, SystemTime)>,
) {
    let (feed, base) = daily_feed().await;
    feed.honor.store(answer_304, Ordering::SeqCst);
    let url = format!("{base}/daily.xml");
    daily_config(dir, &url, "", "");
    let first = gazette(dir, &["fetch"]).await;
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    let before = snapshot(&dir.join("archive"));
    assert_eq!(before.len(), 4, "{}", stdout(&first));
    (feed, base, url, before)
}

/// Adds the title rule and fetches the daily feed again with `--force`; returns the run's log.
async fn fetch_under_title_rule(dir: &Path, url: &str) -> String {
    daily_config(dir, url, TITLE_RULE, "");
    let second = gazette(dir, &["fetch", "--force"]).await;
    let log = format!("{}{}", stdout(&second), stderr(&second));
    assert!(second.status.success(), "{log}");
    log
}

/// Fetches the daily feed, adds the title rule and fetches again with `--force`; every file
/// whose title the rule matches must change, and only those. With `answer_304` the second
/// fetch is answered 304 (the feed did not change); otherwise 200 with the same body.
async fn rewrite_rule_case(answer_304: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (feed, _, url, before) = daily_archived(tmp.path(), answer_304).await;
    let archive = tmp.path().join("archive");
    let log = fetch_under_title_rule(tmp.path(), &url).await;
    if answer_304 {
        assert_eq!(
            (
                feed.full.load(Ordering::SeqCst),
                feed.not_modified.load(Ordering::SeqCst)
            ),
            (1, 1),
            "the second fetch was not answered 304: {log}"
        );
    } else {
        assert_eq!(
            (
                feed.full.load(Ordering::SeqCst),
                feed.not_modified.load(Ordering::SeqCst)
            ),
            (2, 0),
            "the second fetch was not answered 200: {log}"
        );
    }
    let after = snapshot(&archive);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "files were added or removed: {log}"
    );
    for (path, (old_bytes, old_mtime)) in &before {
        let (new_bytes, new_mtime) = &after[path];
        let old = String::from_utf8_lossy(old_bytes);
        let new = String::from_utf8_lossy(new_bytes);
        if old.contains(SITE_SUFFIX) {
            assert_ne!(
                old_bytes,
                new_bytes,
                "{} was not rendered again: {log}",
                path.display()
            );
            assert!(
                !new.contains(SITE_SUFFIX),
                "{} still has the old title:\n{new}",
                path.display()
            );
        } else {
            assert_eq!(
                old,
                new,
                "{} changed though its title does not match",
                path.display()
            );
            assert_eq!(
                old_mtime,
                new_mtime,
                "{} was rewritten though its bytes are the same",
                path.display()
            );
        }
    }
    for rewritten in [
        "Markets rally on rate hopes",
        "Storm warning issued for the coast",
    ] {
        file_titled(&archive, rewritten);
    }
    let merged = read_text(&tmp.path().join("public/atom.xml"));
    assert!(
        merged.contains("<title>Markets rally on rate hopes</title>")
            && !merged.contains(SITE_SUFFIX),
        "the feed does not follow the rule:\n{merged}"
    );

    // A label change and `build --rerender`: every file's link line changes.
    let before = snapshot(&archive);
    daily_config(
        tmp.path(),
        &url,
        TITLE_RULE,
        "[labels]\nen = \"Read the original\"\n",
    );
    let build = gazette(tmp.path(), &["build", "--rerender"]).await;
    let log = format!("{}{}", stdout(&build), stderr(&build));
    assert!(build.status.success(), "{log}");
    assert!(
        stdout(&build).contains("4 archive files rendered again"),
        "{log}"
    );
    let after = snapshot(&archive);
    assert_eq!(after.len(), 4, "{log}");
    for (path, (bytes, _)) in &after {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            text.contains("\n[Read the original](") && !text.contains("[Source Link]("),
            "{} kept the old label:\n{text}",
            path.display()
        );
        assert_ne!(&before[path].0, bytes);
    }
    // The files are now what the settings make: a further forced fetch writes none of them.
    let again = gazette(tmp.path(), &["fetch", "--force"]).await;
    assert!(
        again.status.success(),
        "{}{}",
        stdout(&again),
        stderr(&again)
    );
    assert_eq!(
        snapshot(&archive),
        after,
        "a fetch after `build --rerender` rewrote files: {}",
        stdout(&again)
    );
}

#[tokio::test]
async fn a_changed_rewrite_rule_rerenders_exactly_the_affected_files() {
    rewrite_rule_case(false).await;
}

#[tokio::test]
async fn a_changed_rewrite_rule_rerenders_exactly_the_affected_files_after_a_304() {
    rewrite_rule_case(true).await;
}

/// A settings change that comes with a feed of only new entries: the new ones are written
/// under the new settings, and the files archived before are still rendered again (the source
/// has records the refresh did not write).
#[tokio::test]
async fn a_changed_rewrite_rule_rerenders_old_files_when_the_feed_brings_only_new_entries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (feed, base, url, _) = daily_archived(tmp.path(), false).await;
    let archive = tmp.path().join("archive");
    let fresh = [
        Item {
            guid: "d5",
            title: "Harbour reopens after repairs | The Daily Example",
            minute: 10,
            categories: &[],
        },
        Item {
            guid: "d6",
            title: "Library extends its hours",
            minute: 11,
            categories: &[],
        },
    ];
    *feed
        .body
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        rss("The Daily Example", &base, &fresh);
    let log = fetch_under_title_rule(tmp.path(), &url).await;
    let after = snapshot(&archive);
    assert_eq!(after.len(), 6, "{log}");
    for (path, (bytes, _)) in &after {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(SITE_SUFFIX),
            "{} was not rendered under the new rule:\n{text}\n{log}",
            path.display()
        );
    }
    for title in [
        "Markets rally on rate hopes",
        "Storm warning issued for the coast",
        "Harbour reopens after repairs",
        "Library extends its hours",
    ] {
        file_titled(&archive, title);
    }
}

// ---------------------------------------------------------------------------------------------
// remove [--purge]

const KEPT_COMMENT: &str =
    "# Hand-kept list of feeds: this comment must survive `gazette remove`.\n";

/// Serves three sources of two entries each and fetches them; the config starts with a
/// comment and one kept source carries a comment of its own.
async fn three_sources(tmp: &Path) -> FeedServer {
    let served = tmp.join("served");
    std::fs::create_dir_all(&served).expect("served dir");
    let server = FeedServer::start(&served).await;
    let base = server.url("");
    for (id, channel) in [
        ("alpha", "Alpha Herald"),
        ("beta", "Beta Ledger"),
        ("gamma", "Gamma Gazette"),
    ] {
        let first = format!("{channel} story one");
        let second = format!("{channel} story two");
        let body = rss(
            channel,
            &format!("{base}/{id}"),
            &[
                Item {
                    guid: &format!("{id}-1"),
                    title: &first,
                    minute: 1,
                    categories: &[],
                },
                Item {
                    guid: &format!("{id}-2"),
                    title: &second,
                    minute: 2,
                    categories: &[],
                },
            ],
        );
        std::fs::write(served.join(format!("{id}.xml")), body).expect("feed");
    }
    let sources = [
        source(
            "alpha",
            &server.url("/feeds/alpha.xml"),
            "tags = [\"world\"]",
        ),
        source("beta", &server.url("/feeds/beta.xml"), "tags = [\"tech\"]"),
        source(
            "gamma",
            &server.url("/feeds/gamma.xml"),
            "tags = [\"misc\"] # gamma stays",
        ),
    ]
    .concat();
    write_config(tmp, &sources);
    let path = config_path(tmp);
    let text = read_text(&path);
    std::fs::write(&path, format!("{KEPT_COMMENT}{text}")).expect("comment the config");
    let fetch = gazette(tmp, &["fetch"]).await;
    assert!(
        fetch.status.success(),
        "{}{}",
        stdout(&fetch),
        stderr(&fetch)
    );
    assert_eq!(
        common::files_with_mtimes(&tmp.join("archive")).len(),
        6,
        "{}",
        stdout(&fetch)
    );
    server
}

/// The titles of the merged feed's entries.
fn merged_titles(dir: &Path) -> Vec<String> {
    parse_atom(&read_text(&dir.join("public/atom.xml")))
        .entries
        .into_iter()
        .map(|e| e.title)
        .collect()
}

async fn verify_agrees(dir: &Path, when: &str) {
    let verify = gazette(dir, &["verify"]).await;
    assert_eq!(
        verify.status.code(),
        Some(0),
        "verify {when}: {}{}",
        stdout(&verify),
        stderr(&verify)
    );
}

#[tokio::test]
async fn remove_takes_a_source_out_and_purge_deletes_its_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let _feeds = three_sources(tmp.path()).await;
    add_to_feed_table(tmp.path(), "json = true\n");
    let build = gazette(tmp.path(), &["build"]).await;
    assert!(build.status.success(), "{}", stderr(&build));
    let archive = tmp.path().join("archive");
    let alpha_files = snapshot(&archive.join("alpha"));
    let beta_files = snapshot(&archive.join("beta"));
    assert_eq!((alpha_files.len(), beta_files.len()), (2, 2));

    let remove = gazette(tmp.path(), &["remove", "alpha"]).await;
    let log = format!("{}{}", stdout(&remove), stderr(&remove));
    assert_eq!(remove.status.code(), Some(0), "{log}");
    let config = read_text(&config_path(tmp.path()));
    assert!(
        !config.contains("id = \"alpha\"") && !config.contains("alpha.xml"),
        "alpha is still configured:\n{config}"
    );
    assert!(
        config.starts_with(KEPT_COMMENT) && config.contains("# gamma stays"),
        "the config lost its comments:\n{config}"
    );
    assert!(
        config.contains("id = \"beta\"") && config.contains("id = \"gamma\""),
        "{config}"
    );
    let titles = merged_titles(tmp.path());
    assert!(
        titles.iter().all(|t| !t.starts_with("Alpha Herald")),
        "alpha's entries are still in the merged feed: {titles:?}"
    );
    assert_eq!(titles.len(), 4, "{titles:?}");
    let json = read_text(&tmp.path().join("public/feed.json"));
    assert!(!json.contains("Alpha Herald story"), "{json}");
    assert_eq!(
        snapshot(&archive.join("alpha")),
        alpha_files,
        "alpha's files did not stay as they were"
    );
    verify_agrees(tmp.path(), "after remove").await;
    let status = gazette(tmp.path(), &["status"]).await;
    assert!(
        stdout(&status)
            .lines()
            .any(|l| l.starts_with("removed, files still known: alpha (2 files)")),
        "{}",
        stdout(&status)
    );

    // The source is out of the config, so a fetch neither archives nor publishes it.
    let fetch = gazette(tmp.path(), &["fetch", "--force"]).await;
    let log = format!("{}{}", stdout(&fetch), stderr(&fetch));
    assert!(fetch.status.success(), "{log}");
    assert!(!stdout(&fetch).contains("alpha"), "{log}");
    let titles = merged_titles(tmp.path());
    assert!(
        titles.iter().all(|t| !t.starts_with("Alpha Herald")),
        "alpha came back: {titles:?}"
    );
    assert_eq!(snapshot(&archive.join("alpha")), alpha_files);
    verify_agrees(tmp.path(), "after a fetch").await;

    let purge = gazette(tmp.path(), &["remove", "beta", "--purge"]).await;
    let log = format!("{}{}", stdout(&purge), stderr(&purge));
    assert_eq!(purge.status.code(), Some(0), "{log}");
    for path in beta_files.keys() {
        assert!(!path.exists(), "{} was not deleted: {log}", path.display());
    }
    // Nothing is left of the source's folders either.
    assert!(!archive.join("beta").exists(), "{log}");
    let titles = merged_titles(tmp.path());
    assert_eq!(
        titles,
        ["Gamma Gazette story two", "Gamma Gazette story one"],
        "{log}"
    );
    assert!(!read_text(&config_path(tmp.path())).contains("id = \"beta\""));
    // Purging one source leaves the other removed source's files alone.
    assert_eq!(snapshot(&archive.join("alpha")), alpha_files);
    verify_agrees(tmp.path(), "after remove --purge").await;
}

#[tokio::test]
async fn a_removed_source_is_in_no_feed_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let _feeds = three_sources(tmp.path()).await;
    add_to_feed_table(
        tmp.path(),
        "json = true\ntag_feeds = true\nsource_feeds = true\n",
    );
    let build = gazette(tmp.path(), &["build"]).await;
    assert!(build.status.success(), "{}", stderr(&build));
    let public = tmp.path().join("public");
    // The tag and source feeds exist, with alpha's entries, before the removal.
    for feed in ["tags/world.xml", "sources/alpha.xml"] {
        assert!(
            read_text(&public.join(feed)).contains("Alpha Herald story one"),
            "{feed}"
        );
    }
    let remove = gazette(tmp.path(), &["remove", "alpha"]).await;
    assert_eq!(
        remove.status.code(),
        Some(0),
        "{}{}",
        stdout(&remove),
        stderr(&remove)
    );
    // "Out of every feed": no published file may still list alpha's entries.
    let stale: Vec<PathBuf> = common::files_with_mtimes(&public)
        .into_iter()
        .map(|(path, _)| path)
        .filter(|path| read_text(path).contains("Alpha Herald story"))
        .collect();
    assert!(
        stale.is_empty(),
        "feed files still carry the removed source's entries: {stale:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// enrich --all

const KEY_ENV: &str = "GAZETTE_TEST_LLM_KEY";
const KEY: &str = "sk-test-state-outputs";

/// What the fake model was asked: the requests' article keys, in order.
type Asked = Arc<Mutex<Vec<String>>>;

fn asked(llm: &Asked) -> Vec<String> {
    llm.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// The zh title the fake model gives an article.
fn zh_title(title: &str) -> String {
    format!("译文：{title}")
}

/// An OpenAI-compatible chat completions endpoint that translates by prefixing: the article
/// (the JSON at the end of the user message) comes back as a zh section and an en summary.
async fn completions(State(llm): State<Asked>, body: axum::Json<Value>) -> Response {
    let user = body.0["messages"][1]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let request: Value = user
        .find('{')
        .and_then(|at| serde_json::from_str(&user[at..]).ok())
        .unwrap_or(Value::Null);
    let key = request["key"].as_str().unwrap_or_default().to_owned();
    let title = request["title"].as_str().unwrap_or_default().to_owned();
    llm.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(key);
    let answer = json!({"sections": [
        {"language": "zh", "title": zh_title(&title), "body": format!("关于{title}的中文译文。")},
        {"language": "en", "title": title, "body": format!("A summary of **{title}**.")},
    ]});
    axum::Json(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
    }))
    .into_response()
}

async fn start_llm() -> (String, Asked) {
    let llm: Asked = Arc::default();
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(Arc::clone(&llm));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("llm server") });
    (base, llm)
}

async fn enrich(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["enrich"];
    all.extend_from_slice(args);
    let output = gazette_with_env(dir, &all, &[(KEY_ENV, KEY)]).await;
    let log = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(0), "enrich {args:?}: {log}");
    log
}

async fn pending(dir: &Path) -> Value {
    let status = gazette(dir, &["status", "--json"]).await;
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    status["enrichment"]["pending"].clone()
}

/// Whether every file of `source` is in the bilingual form: a zh section under the zh link
/// label, headed by the translated title, before the original.
fn bilingual(archive: &Path, source: &str) -> bool {
    let files = common::files_with_mtimes(&archive.join(source));
    !files.is_empty()
        && files.iter().all(|(path, _)| {
            let text = read_text(path);
            let title = text
                .lines()
                .find_map(|l| l.strip_prefix("title: "))
                .unwrap_or_default()
                .to_owned();
            title.starts_with("译文：")
                && text.contains("[原文链接](")
                && text.contains(&format!("\n# {title}"))
        })
}

#[tokio::test]
async fn enrich_all_reaches_what_is_archived() {
    let (llm_url, llm) = start_llm().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).expect("served dir");
    let server = FeedServer::start(&served).await;
    let base = server.url("");
    let titles = [
        (
            "a",
            ["Rivers rise after heavy rain", "New library opens downtown"],
        ),
        (
            "b",
            [
                "Chip maker expands factory",
                "Open source project turns ten",
            ],
        ),
    ];
    for (id, [first, second]) in titles {
        let body = rss(
            &format!("Source {id}"),
            &format!("{base}/{id}"),
            &[
                Item {
                    guid: &format!("{id}-1"),
                    title: first,
                    minute: 1,
                    categories: &[],
                },
                Item {
                    guid: &format!("{id}-2"),
                    title: second,
                    minute: 2,
                    categories: &[],
                },
            ],
        );
        std::fs::write(served.join(format!("{id}.xml")), body).expect("feed");
    }
    let sources = [
        source("a", &server.url("/feeds/a.xml"), "language = \"en\""),
        source("b", &server.url("/feeds/b.xml"), "language = \"en\""),
    ]
    .concat();
    // No [enrich] yet: the files are archived monolingual, and nothing is pending.
    write_config(tmp.path(), &sources);
    let fetch = gazette(tmp.path(), &["fetch"]).await;
    assert!(
        fetch.status.success(),
        "{}{}",
        stdout(&fetch),
        stderr(&fetch)
    );
    let archive = tmp.path().join("archive");
    let monolingual = snapshot(&archive);
    assert_eq!(monolingual.len(), 4);
    for (path, (bytes, _)) in &monolingual {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains("原文链接"),
            "{} is not monolingual",
            path.display()
        );
    }

    let enrich_table = format!(
        "[enrich]\nprovider = \"openai\"\nlanguages = [\"zh\"]\nbase_url = \"{llm_url}\"\n\
         api_key_env = \"{KEY_ENV}\"\nbackoff = \"0s\"\n"
    );
    write_config(tmp.path(), &format!("{enrich_table}{sources}"));

    // Nothing is dated in the future: nothing is queued, asked or written.
    enrich(tmp.path(), &["--all", "--since", "2999-01-01"]).await;
    assert_eq!(asked(&llm), Vec::<String>::new());
    assert_eq!(snapshot(&archive), monolingual);
    assert_eq!(pending(tmp.path()).await, 0);

    // One source: its two articles are asked about once each; the other source waits.
    let log = enrich(tmp.path(), &["--all", "--source", "a"]).await;
    assert_eq!(asked(&llm).len(), 2, "{log}");
    assert!(
        bilingual(&archive, "a"),
        "a's files are not bilingual: {log}"
    );
    let now = snapshot(&archive);
    for (path, old) in &monolingual {
        if path.starts_with(archive.join("b")) {
            assert_eq!(&now[path], old, "{} changed: {log}", path.display());
        }
    }

    // Every source: only b's articles are left to ask about.
    let log = enrich(tmp.path(), &["--all"]).await;
    let keys = asked(&llm);
    assert_eq!(keys.len(), 4, "{log}");
    let distinct: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(
        distinct.len(),
        4,
        "an article was asked about twice: {keys:?}"
    );
    assert!(
        bilingual(&archive, "b"),
        "b's files are not bilingual: {log}"
    );
    let merged = read_text(&tmp.path().join("public/atom.xml"));
    assert!(
        merged.contains(&format!(
            "<title>{}</title>",
            zh_title("Chip maker expands factory")
        )),
        "the feed does not show the enriched title:\n{merged}"
    );
    assert_eq!(pending(tmp.path()).await, 0);

    // Everything has its sections: a further pass asks nothing and writes nothing.
    let enriched = snapshot(&archive);
    let log = enrich(tmp.path(), &["--all"]).await;
    assert_eq!(asked(&llm).len(), 4, "asked again: {log}");
    assert_eq!(snapshot(&archive), enriched, "{log}");

    // Another model: `--all` alone leaves the sections as they are; `--redo` asks the new
    // model about each article once, from the article's own text (kept in state).
    write_config(
        tmp.path(),
        &format!("{enrich_table}model = \"other-model\"\n{sources}"),
    );
    let log = enrich(tmp.path(), &["--all"]).await;
    assert_eq!(asked(&llm).len(), 4, "asked without --redo: {log}");
    let log = enrich(tmp.path(), &["--all", "--redo"]).await;
    let keys = asked(&llm);
    assert_eq!(keys.len(), 8, "{log}");
    assert_eq!(
        keys[4..].iter().collect::<BTreeSet<_>>(),
        keys[..4].iter().collect::<BTreeSet<_>>(),
        "the new model was not asked about every article once: {keys:?}"
    );
    assert!(
        bilingual(&archive, "a") && bilingual(&archive, "b"),
        "{log}"
    );
    let log = enrich(tmp.path(), &["--all", "--redo"]).await;
    assert_eq!(asked(&llm).len(), 8, "redone twice: {log}");
}

/// Changed settings reach the archive on the very next run, even when the source is not due
/// and nothing is fetched.
#[tokio::test]
async fn a_changed_rewrite_rule_rerenders_a_source_that_is_not_due() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (feed, base) = daily_feed().await;
    let url = format!("{base}/daily.xml");
    daily_config(tmp.path(), &url, "interval = \"1h\"\n", "");
    let first = gazette(tmp.path(), &["fetch"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let archive = tmp.path().join("archive");
    let before = snapshot(&archive);
    let requests = feed.full.load(Ordering::SeqCst) + feed.not_modified.load(Ordering::SeqCst);

    daily_config(
        tmp.path(),
        &url,
        &format!("interval = \"1h\"\n{TITLE_RULE}"),
        "",
    );
    let second = gazette(tmp.path(), &["fetch"]).await;
    let log = format!("{}{}", stdout(&second), stderr(&second));
    assert!(second.status.success(), "{log}");
    assert_eq!(
        feed.full.load(Ordering::SeqCst) + feed.not_modified.load(Ordering::SeqCst),
        requests,
        "the source was fetched though it is not due: {log}"
    );
    let after = snapshot(&archive);
    let changed: Vec<&PathBuf> = before
        .iter()
        .filter(|(path, (bytes, _))| after[*path].0 != *bytes)
        .map(|(path, _)| path)
        .collect();
    let matching = before
        .values()
        .filter(|(bytes, _)| String::from_utf8_lossy(bytes).contains(SITE_SUFFIX))
        .count();
    assert!(matching > 0, "the feed has titles the rule matches");
    assert_eq!(changed.len(), matching, "{log}");
    assert!(
        read_text(&tmp.path().join("public/atom.xml"))
            .contains("<title>Markets rally on rate hopes</title>"),
        "{log}"
    );
}
