//! `gazette backfill`: a feed's history (RFC 5005) walked against a server on 127.0.0.1 that
//! answers conditional requests and counts what it served, so the tests can tell which pages
//! were read again.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{all_files, gazette, source, stdout, write_config};

/// What the server serves, and what it answered.
#[derive(Default)]
struct Server {
    /// Documents by name (`feed.xml`, `page1.xml`, …).
    pages: HashMap<String, String>,
    /// Full answers (200) per name.
    bodies: HashMap<String, usize>,
    /// 304 answers per name.
    not_modified: HashMap<String, usize>,
    /// Requests per name that carried a header a source configured (`X-Token`).
    with_token: HashMap<String, usize>,
    /// Every request, whatever it was answered.
    requests: usize,
}

type Shared = Arc<Mutex<Server>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, Server> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn etag_of(body: &str) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:x}\"", hasher.finish())
}

async fn page(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let mut server = lock(&state);
    server.requests += 1;
    if headers.contains_key("x-token") {
        *server.with_token.entry(name.clone()).or_default() += 1;
    }
    let Some(body) = server.pages.get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = etag_of(&body);
    let asked = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if asked == Some(etag.as_str()) {
        *server.not_modified.entry(name).or_default() += 1;
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    *server.bodies.entry(name.clone()).or_default() += 1;
    let kind = if name.ends_with(".json") {
        "application/feed+json"
    } else {
        "application/atom+xml"
    };
    (
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response()
}

/// Serves `/h/NAME` from the shared pages; returns its base URL.
async fn serve(state: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new()
        .route("/h/{name}", get(page))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });
    format!("http://{addr}")
}

/// An Atom document with entries `numbers` (dated day N of 2019, one a day), RFC 5005 links
/// (`rel`, `href`) and history markers (`fh:archive`, `fh:complete`).
fn atom(numbers: &[u32], links: &[(&str, &str)], markers: &[&str]) -> String {
    let links: String = links
        .iter()
        .map(|(rel, href)| format!("<link rel=\"{rel}\" href=\"{href}\"/>"))
        .collect();
    let markers: String = markers.iter().map(|m| format!("<fh:{m}/>")).collect();
    let entries: String = numbers
        .iter()
        .map(|n| {
            format!(
                "<entry><id>urn:post:{n}</id><title>Post {n}</title>\
                 <link href=\"https://news.example/posts/{n}\"/>\
                 <published>2019-01-{n:02}T08:00:00Z</published><updated>2019-01-{n:02}T08:00:00Z</updated>\
                 <content type=\"html\">&lt;p&gt;Body of post {n}.&lt;/p&gt;</content></entry>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:fh=\"http://purl.org/syndication/history/1.0\">\
         <id>urn:feed:history</id><title>History</title><updated>2019-01-31T00:00:00Z</updated>\
         {links}{markers}{entries}</feed>"
    )
}

/// The archive's articles: their `date:` lines, sorted.
fn archived_dates(dir: &Path) -> Vec<String> {
    let mut dates: Vec<String> = all_files(&dir.join("archive"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("read article");
            text.lines()
                .find_map(|l| l.strip_prefix("date: "))
                .expect("a date line")
                .to_owned()
        })
        .collect();
    dates.sort();
    dates
}

fn counts(map: &HashMap<String, usize>) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
    counts.sort();
    counts
}

fn named(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

async fn status_of(dir: &Path, id: &str) -> serde_json::Value {
    let out = gazette(dir, &["status", "--json"]).await;
    assert!(out.status.success(), "{out:?}");
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("status json");
    status["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .expect("the source in status")
}

#[tokio::test]
async fn an_archived_feed_is_backfilled_once_then_only_changed_pages_are_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let state = Shared::default();
    let base = serve(Arc::clone(&state)).await;
    {
        let mut server = lock(&state);
        // The subscription document and three archive pages, newest to oldest; links are
        // relative, as many feeds write them.
        server.pages.insert(
            "feed.xml".into(),
            atom(&[10, 11, 12], &[("prev-archive", "page3.xml")], &[]),
        );
        server.pages.insert(
            "page3.xml".into(),
            atom(
                &[7, 8, 9],
                &[("prev-archive", "page2.xml"), ("current", "feed.xml")],
                &["archive"],
            ),
        );
        server.pages.insert(
            "page2.xml".into(),
            atom(&[4, 5, 6], &[("prev-archive", "page1.xml")], &["archive"]),
        );
        server
            .pages
            .insert("page1.xml".into(), atom(&[1, 2, 3], &[], &["archive"]));
    }
    // `max_age` keeps a first fetch small; a backfill asks for the old entries all the same.
    let feed = format!("{base}/h/feed.xml");
    write_config(
        dir,
        &source("history", &feed, "filters = { max_age = \"30d\" }"),
    );

    let out = gazette(dir, &["backfill", "history"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("history: 4 pages walked (4 read, 0 unchanged); 12 new"),
        "{text}"
    );
    assert!(
        text.contains("reached the start of the feed's history"),
        "{text}"
    );
    assert!(text.contains("oldest article 2019-01-01"), "{text}");
    // Every entry is archived once, under its own date.
    let expected: Vec<String> = (1..=12)
        .map(|n| format!("2019-01-{n:02}T08:00:00.000Z"))
        .collect();
    assert_eq!(archived_dates(dir), expected);
    let everything = named(&[
        ("feed.xml", 1),
        ("page1.xml", 1),
        ("page2.xml", 1),
        ("page3.xml", 1),
    ]);
    assert_eq!(counts(&lock(&state).bodies), everything);

    // How far back the source reaches, and how its backfill ended.
    let status = status_of(dir, "history").await;
    assert_eq!(status["oldest_article"], "2019-01-01T08:00:00Z", "{status}");
    assert_eq!(status["backfill"]["pages"], 4, "{status}");
    assert_eq!(status["backfill"]["complete"], false, "{status}");

    // Again: every page is asked for conditionally, none is read, nothing is archived.
    let files_before = common::files_with_mtimes(&dir.join("archive"));
    let out = gazette(dir, &["backfill", "history"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("4 pages walked (0 read, 4 unchanged); 0 new, 0 updated"),
        "{text}"
    );
    assert_eq!(counts(&lock(&state).bodies), everything);
    assert_eq!(counts(&lock(&state).not_modified), {
        let mut once = everything.clone();
        once.iter_mut().for_each(|(_, n)| *n = 1);
        once
    });
    assert_eq!(
        common::files_with_mtimes(&dir.join("archive")),
        files_before
    );

    // A page that changed (an old post corrected) is read again, alone.
    {
        let mut server = lock(&state);
        let page = atom(&[4, 5, 6], &[("prev-archive", "page1.xml")], &["archive"])
            .replace("Body of post 5.", "Body of post 5, corrected.");
        server.pages.insert("page2.xml".into(), page);
    }
    let out = gazette(dir, &["backfill", "history"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("4 pages walked (1 read, 3 unchanged); 0 new, 1 updated, 2 unchanged"),
        "{text}"
    );
    assert_eq!(lock(&state).bodies.get("page2.xml"), Some(&2));
    assert_eq!(lock(&state).bodies.get("page1.xml"), Some(&1));

    // The regular fetch finds the feed's entries archived already: no duplicate.
    let out = gazette(dir, &["fetch"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("history: 0 new, 0 updated, 3 unchanged"),
        "{}",
        stdout(&out)
    );
    assert_eq!(archived_dates(dir).len(), 12);
}

#[tokio::test]
async fn a_paged_json_feed_is_walked_page_by_page_up_to_the_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let state = Shared::default();
    let base = serve(Arc::clone(&state)).await;
    let json_page = |numbers: &[u32], next: Option<&str>| {
        let items: Vec<serde_json::Value> = numbers
            .iter()
            .map(|n| {
                serde_json::json!({
                    "id": format!("post-{n}"),
                    "url": format!("https://news.example/p/{n}"),
                    "title": format!("Item {n}"),
                    "content_text": format!("Text of item {n}."),
                    "date_published": format!("2020-03-{n:02}T12:00:00Z"),
                })
            })
            .collect();
        let mut feed = serde_json::json!({
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Paged",
            "items": items,
        });
        if let Some(next) = next {
            feed["next_url"] = serde_json::Value::String(format!("{base}/h/{next}"));
        }
        feed.to_string()
    };
    {
        let mut server = lock(&state);
        server
            .pages
            .insert("feed.json".into(), json_page(&[5, 6], Some("p2.json")));
        server
            .pages
            .insert("p2.json".into(), json_page(&[3, 4], Some("p3.json")));
        server
            .pages
            .insert("p3.json".into(), json_page(&[1, 2], None));
    }
    write_config(dir, &source("paged", &format!("{base}/h/feed.json"), ""));

    let out = gazette(dir, &["backfill", "paged", "--max-pages", "2"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("2 pages walked (2 read, 0 unchanged); 4 new"),
        "{text}"
    );
    assert!(
        text.contains("stopped at the page limit; older pages remain"),
        "{text}"
    );
    assert!(text.contains("oldest article 2020-03-03"), "{text}");
    let status = status_of(dir, "paged").await;
    assert_eq!(
        status["backfill"]["ended"], "stopped at the page limit; older pages remain",
        "{status}"
    );

    let out = gazette(dir, &["backfill", "paged"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("3 pages walked (1 read, 2 unchanged); 2 new"),
        "{text}"
    );
    assert!(text.contains("reached the start"), "{text}");
    assert_eq!(archived_dates(dir).len(), 6);
    assert_eq!(lock(&state).bodies.get("p3.json"), Some(&1));
}

#[tokio::test]
async fn a_complete_feed_replaces_what_it_no_longer_lists() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let state = Shared::default();
    let base = serve(Arc::clone(&state)).await;
    lock(&state)
        .pages
        .insert("feed.xml".into(), atom(&[1, 2, 3], &[], &["complete"]));
    write_config(dir, &source("top", &format!("{base}/h/feed.xml"), ""));

    let out = gazette(dir, &["backfill", "top"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("3 new"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("the feed is complete"),
        "{}",
        stdout(&out)
    );
    assert_eq!(archived_dates(dir).len(), 3);

    // Post 2 left the list (a top-ten feed, say): its article leaves the archive.
    lock(&state)
        .pages
        .insert("feed.xml".into(), atom(&[1, 3, 4], &[], &["complete"]));
    let out = gazette(dir, &["backfill", "top"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("1 new"), "{text}");
    assert!(
        text.contains("1 articles removed: the complete feed no longer lists them"),
        "{text}"
    );
    assert_eq!(
        archived_dates(dir),
        [
            "2019-01-01T08:00:00.000Z",
            "2019-01-03T08:00:00.000Z",
            "2019-01-04T08:00:00.000Z"
        ]
    );
    let feed = std::fs::read_to_string(dir.join("public/atom.xml")).expect("merged feed");
    assert!(!feed.contains("Post 2<"), "{feed}");
    assert!(feed.contains("Post 4<"), "{feed}");
    assert_eq!(status_of(dir, "top").await["backfill"]["complete"], true);

    // A complete feed that suddenly lists nothing is more likely broken than empty.
    lock(&state)
        .pages
        .insert("feed.xml".into(), atom(&[], &[], &["complete"]));
    let out = gazette(dir, &["backfill", "top"]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(archived_dates(dir).len(), 3);
}

#[tokio::test]
async fn history_links_that_loop_or_leave_the_feeds_origin_are_not_followed_blindly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let state = Shared::default();
    let base = serve(Arc::clone(&state)).await;
    // Another origin (another port of 127.0.0.1): a private address, which a page's link may
    // not reach without `allow_private`, and which never sees the source's headers.
    let elsewhere = serve(Arc::clone(&state)).await;
    {
        let mut server = lock(&state);
        server.pages.insert(
            "feed.xml".into(),
            atom(&[3], &[("prev-archive", "old.xml")], &[]),
        );
        server.pages.insert(
            "old.xml".into(),
            atom(&[2], &[("prev-archive", "feed.xml")], &["archive"]),
        );
        server.pages.insert(
            "away.xml".into(),
            atom(
                &[9],
                &[("prev-archive", &format!("{elsewhere}/h/far.xml"))],
                &[],
            ),
        );
        server
            .pages
            .insert("far.xml".into(), atom(&[1], &[], &["archive"]));
    }
    let config = source("looping", &format!("{base}/h/feed.xml"), "")
        + &source(
            "leaving",
            &format!("{base}/h/away.xml"),
            "headers = { \"X-Token\" = \"secret\" }",
        );
    write_config(dir, &config);

    let out = gazette(dir, &["backfill", "looping"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("2 pages walked"), "{text}");
    assert!(
        text.contains("links back to a page already walked"),
        "{text}"
    );

    let out = gazette(dir, &["backfill", "leaving"]).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("1 pages walked"), "{text}");
    assert!(text.contains("failed:"), "{text}");
    assert!(!lock(&state).bodies.contains_key("far.xml"));
    assert_eq!(lock(&state).with_token.get("away.xml"), Some(&1));
    assert!(
        status_of(dir, "leaving").await["backfill"]["ended"]
            .as_str()
            .is_some_and(|e| e.starts_with("failed:"))
    );

    // Allowed to reach it, the page elsewhere is read, without the source's credentials.
    let allowed = format!("[fetch]\nallow_private = [\"127.0.0.1/32\"]\n{config}");
    write_config(dir, &allowed);
    let out = gazette(dir, &["backfill", "leaving"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("2 pages walked"), "{}", stdout(&out));
    assert_eq!(lock(&state).bodies.get("far.xml"), Some(&1));
    assert!(!lock(&state).with_token.contains_key("far.xml"));
}

/// The source's schedule holds for its history: a source backing off after failures is not
/// walked (its server not asked at all) before it is due again.
#[tokio::test]
async fn a_source_backing_off_is_not_walked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let state = Shared::default();
    let base = serve(Arc::clone(&state)).await;
    // No such page yet: the fetch fails and the source backs off.
    write_config(dir, &source("resting", &format!("{base}/h/feed.xml"), ""));
    let out = gazette(dir, &["fetch"]).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    lock(&state)
        .pages
        .insert("feed.xml".into(), atom(&[1], &[], &[]));
    let asked = lock(&state).requests;

    let out = gazette(dir, &["backfill", "resting"]).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("0 pages walked"), "{text}");
    assert!(
        text.contains("backing off after 1 failures; its server is not asked again before"),
        "{text}"
    );
    assert_eq!(lock(&state).requests, asked, "the server was asked");
}
