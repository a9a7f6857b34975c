//! The daemon: its logic in this process on a manual clock (schedule, back-off, reload, stop,
//! everything it serves), and `gazette run` as a subprocess for signals and a real browser.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::get;
use common::daemon::{Daemon, InProcess, client};
use common::{
    FeedServer, assert_valid_atom, closed_port, copy_demo_feeds, gazette, source, stderr,
    write_config,
};
use gazette::daemon::Event;

const MINUTE: Duration = Duration::from_secs(60);

fn archive_count(dir: &Path) -> usize {
    common::files_with_mtimes(&dir.join("archive")).len()
}

/// The demo feeds served on 127.0.0.1 as three sources due every 30 minutes; the daemon wakes
/// at least hourly.
async fn demo_setup(tmp: &Path, extra: &str) -> FeedServer {
    let served = tmp.join("served");
    copy_demo_feeds(&served);
    let server = FeedServer::start(&served).await;
    // The tech feed asks for a 60-minute <ttl>; the schedule below is the config's alone.
    let config = format!(
        "[serve]\ntick = \"1h\"\nshutdown_grace = \"2s\"\n[fetch]\nhonor_ttl = false\n{extra}"
    );
    let sources = [
        source(
            "ft",
            &server.url("/feeds/ft-world.atom"),
            "tags = [\"world\"]\nlanguage = \"en\"\ncategory_tags = false\ninterval = \"30m\"",
        ),
        source(
            "tech",
            &server.url("/feeds/tech-rss2.xml"),
            "tags = [\"tech\"]\ninterval = \"30m\"",
        ),
        source(
            "notes",
            &server.url("/feeds/notes.json"),
            "interval = \"30m\"",
        ),
    ]
    .concat();
    write_config(tmp, &format!("{config}{sources}"));
    // A cron `fetch` during the daemon's life gives up after a second.
    let path = tmp.join("config/gazette.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        text.replace("[state]\n", "[state]\nlock_timeout = \"1s\"\n"),
    )
    .expect("config");
    server
}

#[tokio::test]
async fn the_daemon_archives_on_schedule_and_serves_everything() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = demo_setup(tmp.path(), "").await;
    let mut daemon = InProcess::start(tmp.path()).await;
    let http = client();
    assert_eq!(
        daemon.cycle().await,
        (3, 0, 10),
        "the first cycle archives the demo feeds"
    );
    assert_eq!(archive_count(tmp.path()), 10);
    assert!(tmp.path().join("public/atom.xml").is_file());

    // The next wake is when the sources are due again, not sooner.
    let started = daemon.clock.now();
    let until = daemon.waiting().await;
    assert_eq!(until - started, chrono::Duration::minutes(30));

    // A new entry is picked up on schedule.
    let feed = server.dir.join("tech-rss2.xml");
    let text = std::fs::read_to_string(&feed).expect("feed");
    let item = "<item><title>Late breaking item</title><link>https://tech.example.org/late</link><guid>late-1</guid></item>";
    std::fs::write(&feed, text.replacen("<item>", &format!("{item}<item>"), 1))
        .expect("update feed");
    daemon.clock.advance(30 * MINUTE);
    assert_eq!(daemon.cycle().await, (3, 0, 1));
    assert_eq!(archive_count(tmp.path()), 11);
    let atom = http
        .get(daemon.url("/atom.xml"))
        .send()
        .await
        .expect("atom")
        .text()
        .await
        .expect("text");
    assert_eq!(atom.matches("<entry>").count(), 11);

    // The feed, with validators, revalidation and compression.
    let atom = http
        .get(daemon.url("/atom.xml"))
        .send()
        .await
        .expect("atom");
    assert_eq!(atom.status(), 200);
    assert_eq!(
        atom.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let etag = atom.headers()["etag"].to_str().expect("etag").to_owned();
    let modified = atom.headers()["last-modified"]
        .to_str()
        .expect("last-modified")
        .to_owned();
    let body = atom.bytes().await.expect("body");
    let served_feed = tmp.path().join("served-atom.xml");
    std::fs::write(&served_feed, &body).expect("save");
    assert_valid_atom(&served_feed);
    let again = http
        .get(daemon.url("/atom.xml"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("revalidate");
    assert_eq!(again.status(), 304);
    let since = http
        .get(daemon.url("/atom.xml"))
        .header("if-modified-since", &modified)
        .send()
        .await
        .expect("since");
    assert_eq!(since.status(), 304);
    // A client that does not decode, so the encoding stays visible.
    let raw_client = reqwest::Client::builder()
        .no_proxy()
        .no_gzip()
        .no_brotli()
        .build()
        .expect("client");
    for encoding in ["gzip", "br"] {
        let compressed = raw_client
            .get(daemon.url("/atom.xml"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .expect("compressed");
        assert_eq!(compressed.headers()["content-encoding"], encoding);
        assert!(compressed.bytes().await.expect("body").len() < body.len());
    }
    let head = http
        .head(daemon.url("/atom.xml"))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.expect("head body").is_empty());

    for (path, expected) in [
        ("/tags/tech.xml", "Late breaking item"),
        ("/sources/ft.xml", "US and China"),
    ] {
        let filtered = http.get(daemon.url(path)).send().await.expect("filtered");
        assert_eq!(filtered.status(), 200, "{path}");
        let text = filtered.text().await.expect("text");
        assert!(text.contains(expected), "{path}: {text}");
        let file = tmp.path().join("filtered.xml");
        std::fs::write(&file, text).expect("save");
        assert_valid_atom(&file);
    }
    assert_eq!(
        http.get(daemon.url("/sources/nope.xml"))
            .send()
            .await
            .expect("404")
            .status(),
        404
    );

    let json: serde_json::Value = http
        .get(daemon.url("/feed.json"))
        .send()
        .await
        .expect("json")
        .json()
        .await
        .expect("JSON Feed");
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert!(
        json["items"]
            .as_array()
            .is_some_and(|items| items.len() == 11)
    );

    let index = http
        .get(daemon.url("/"))
        .send()
        .await
        .expect("index")
        .text()
        .await
        .expect("html");
    assert!(
        index.contains("US and China to hold first talks"),
        "{index}"
    );
    assert!(
        index.contains("<link rel=\"alternate\" type=\"application/atom+xml\""),
        "{index}"
    );
    let href = index
        .split("href=\"")
        .find_map(|s| {
            s.split('"')
                .next()
                .filter(|h| h.starts_with("/articles/ft/"))
        })
        .expect("an article link")
        .to_owned();
    let article = http.get(daemon.url(&href)).send().await.expect("article");
    assert_eq!(article.status(), 200);
    assert!(
        article
            .text()
            .await
            .expect("html")
            .contains("<strong>US and Chinese officials</strong>")
    );
    let raw = http
        .get(daemon.url(&href.replace(".html", ".md")))
        .send()
        .await
        .expect("raw");
    assert_eq!(
        raw.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    assert!(raw.text().await.expect("md").starts_with("---\ntitle: "));
    for evil in [
        "/articles/../config/gazette.toml",
        "/articles/%2e%2e/config/gazette.toml",
        "/articles/..%2fconfig%2fgazette.toml",
    ] {
        let status = http
            .get(daemon.url(evil))
            .send()
            .await
            .expect("evil")
            .status();
        assert!(status == 404 || status == 400, "{evil}: {status}");
    }

    assert_eq!(
        http.get(daemon.url("/healthz"))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );
    let metrics = http
        .get(daemon.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("gazette_fetches_total{outcome=\"archived\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gazette_articles_archived_total{kind=\"new\"} 11"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gazette_fetch_duration_seconds_count"),
        "{metrics}"
    );

    // A cron fetch while the daemon runs waits, then gives up without writing.
    let before = common::files_with_mtimes(&tmp.path().join("archive"));
    let started = Instant::now();
    let fetch = gazette(tmp.path(), &["fetch", "--force"]).await;
    assert_eq!(fetch.status.code(), Some(4), "{}", stderr(&fetch));
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        stderr(&fetch).contains(&format!(
            "another Gazette process (pid {}) is writing this archive",
            std::process::id()
        )),
        "{}",
        stderr(&fetch)
    );
    assert_eq!(
        common::files_with_mtimes(&tmp.path().join("archive")).len(),
        before.len()
    );
    daemon.stop().await.expect("stopped cleanly");
}

/// The demo feeds served, and a config of the `ft` source alone due every `interval`; returns
/// the server, the config's `[serve]` table and the source's table, for configs to come.
async fn reload_setup(tmp: &Path, interval: &str) -> (FeedServer, String, String) {
    let served = tmp.join("served");
    copy_demo_feeds(&served);
    let server = FeedServer::start(&served).await;
    let base = "[serve]\ntick = \"1h\"\n".to_owned();
    let ft = source(
        "ft",
        &server.url("/feeds/ft-world.atom"),
        &format!("interval = \"{interval}\""),
    );
    write_config(tmp, &format!("{base}{ft}"));
    (server, base, ft)
}

#[tokio::test]
async fn reload_takes_the_new_config_and_keeps_the_old_one_when_invalid() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, base, ft) = reload_setup(tmp.path(), "30m").await;
    let mut daemon = InProcess::start(tmp.path()).await;
    let http = client();
    assert_eq!(daemon.cycle().await, (1, 0, 3));
    let notes_status = |daemon: &InProcess| {
        let url = daemon.url("/sources/notes.xml");
        let http = http.clone();
        async move { http.get(url).send().await.expect("notes feed").status() }
    };
    assert_eq!(notes_status(&daemon).await, 404);

    let notes = source(
        "notes",
        &server.url("/feeds/notes.json"),
        "interval = \"30m\"",
    );
    write_config(tmp.path(), &format!("{base}{ft}{notes}"));
    assert_eq!(daemon.reload().await, Event::Reloaded { sources: 2 });
    // The new source is due at once; the old one is not.
    assert_eq!(daemon.cycle().await, (1, 0, 3));
    assert_eq!(notes_status(&daemon).await, 200);

    let path = tmp.path().join("config/gazette.toml");
    std::fs::write(&path, "[[sources]]\nid = \"Broken Id\"\nurl = \"x\"\n").expect("break config");
    let Event::ReloadRefused(reason) = daemon.reload().await else {
        panic!("a broken config was taken");
    };
    assert!(reason.contains("Broken Id"), "{reason}");
    // Valid TOML that only the HTTP client rejects is refused too.
    std::fs::write(
        &path,
        format!("[fetch]\nuser_agent = \"bad\\u0001agent\"\n{ft}"),
    )
    .expect("bad agent");
    assert!(matches!(daemon.reload().await, Event::ReloadRefused(_)));

    // The old configuration goes on: both sources are fetched when due, and served.
    daemon.skip_to_next_wake().await;
    assert_eq!(daemon.cycle().await, (2, 0, 0));
    assert_eq!(notes_status(&daemon).await, 200);
    assert_eq!(
        http.get(daemon.url("/healthz"))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );
    daemon.stop().await.expect("stopped cleanly");
}

/// A server that accepts connections and never answers.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    base
}

#[tokio::test]
async fn failing_sources_back_off_and_so_does_one_that_runs_out_of_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let silent = silent_server().await;
    let config = format!(
        "[serve]\ntick = \"1d\"\nshutdown_grace = \"200ms\"\n[fetch]\nrun_deadline = \"300ms\"\n{}{}",
        source(
            "down",
            &format!("http://127.0.0.1:{}/feed.xml", closed_port()),
            "interval = \"10m\"",
        ),
        source(
            "silent",
            &format!("{silent}/feed.xml"),
            "interval = \"10m\""
        ),
    );
    write_config(tmp.path(), &config);
    let mut daemon = InProcess::start(tmp.path()).await;
    let settings =
        gazette::config::Settings::load(&tmp.path().join("config/gazette.toml")).expect("settings");
    let store = gazette::store::Store::open(&settings.state_url)
        .await
        .expect("state");

    for failures in 1..=3u32 {
        assert_eq!(daemon.cycle().await, (2, 2, 0), "cycle {failures}");
        let now = daemon.clock.now();
        for id in ["down", "silent"] {
            let state = store.source_state(id).await.expect("read").expect("state");
            assert_eq!(state.consecutive_failures, failures, "{id}");
            // The interval doubled per failure, give or take the tenth of jitter.
            let wait = (state.next_due_at.expect("due") - now).num_seconds();
            let expected = 600 * (1 << (failures - 1));
            assert!(
                (expected * 9 / 10..=expected * 11 / 10).contains(&wait),
                "{id} after {failures} failures waits {wait} s"
            );
        }
        if failures == 1 {
            let rows = store.source_status().await.expect("status");
            let silent = rows.iter().find(|r| r.id == "silent").expect("silent");
            let down = rows.iter().find(|r| r.id == "down").expect("down");
            assert_eq!(silent.last_error_kind.as_deref(), Some("deadline"));
            assert_eq!(down.last_error_kind.as_deref(), Some("connect"));
            assert!(
                silent
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("deadline")),
                "{:?}",
                silent.last_error
            );
        }
        // Both sources are due by the later of their times (the jitter differs).
        daemon.waiting().await;
        let mut latest = now;
        for id in ["down", "silent"] {
            let state = store.source_state(id).await.expect("read").expect("state");
            latest = latest.max(state.next_due_at.expect("due"));
        }
        daemon
            .clock
            .advance((latest - now).to_std().expect("later"));
    }
    daemon
        .stop()
        .await
        .expect("stopped within the grace period");
}

#[tokio::test]
async fn the_front_page_renders_in_a_real_browser() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let _server = demo_setup(tmp.path(), "").await;
    let mut daemon = InProcess::start(tmp.path()).await;
    assert_eq!(daemon.cycle().await, (3, 0, 10));
    let Some(dom) = common::browser_dom(&daemon.url("/")).await else {
        return;
    };
    assert!(
        dom.contains("US and China to hold first talks to reduce risk of AI"),
        "{dom}"
    );
    assert!(dom.contains("Rust &amp; WebAssembly: a tour"), "{dom}");
    assert!(
        dom.contains("href=\"/atom.xml\"") && dom.contains("href=\"/feed.json\""),
        "{dom}"
    );
    assert!(
        dom.contains("rel=\"alternate\" type=\"application/atom+xml\""),
        "{dom}"
    );
}

#[tokio::test]
async fn sigterm_during_a_busy_fetch_exits_cleanly() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let started_one = Arc::new(tokio::sync::Notify::new());
    let counter = Arc::clone(&in_flight);
    let notify = Arc::clone(&started_one);
    let app = Router::new().route(
        "/slow/{n}",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            notify.notify_one();
            async {
                let stream = futures::stream::unfold(0u32, |n| async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    (n < 120).then(|| {
                        (
                            Ok::<_, std::convert::Infallible>(Bytes::from_static(b" ")),
                            n + 1,
                        )
                    })
                });
                Body::from_stream(stream)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config =
        "[serve]\nshutdown_grace = \"2s\"\n[fetch]\ntimeout = \"120s\"\nread_timeout = \"60s\"\n"
            .to_owned();
    for n in 0..4 {
        config.push_str(&source(
            &format!("slow{n}"),
            &format!("{base}/slow/{n}"),
            "",
        ));
    }
    write_config(tmp.path(), &config);
    let mut daemon = Daemon::start(tmp.path()).await;
    while in_flight.load(Ordering::SeqCst) < 2 {
        tokio::time::timeout(Duration::from_secs(30), started_one.notified())
            .await
            .expect("fetches are in flight");
    }
    let started = Instant::now();
    daemon.signal(libc::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(5), daemon.child.wait())
        .await
        .expect("exited within 5 seconds")
        .expect("status");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let leftovers: Vec<_> = common::files_with_mtimes(tmp.path())
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".gazette-") || n.ends_with(".tmp"))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn sighup_reloads_the_config_and_keeps_the_old_one_when_invalid() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, base, ft) = reload_setup(tmp.path(), "1h").await;
    let daemon = Daemon::start(tmp.path()).await;
    let http = client();
    daemon.wait_for_log(&["feed published"], 1).await;
    assert_eq!(archive_count(tmp.path()), 3);

    let notes = source(
        "notes",
        &server.url("/feeds/notes.json"),
        "interval = \"1h\"",
    );
    write_config(tmp.path(), &format!("{base}{ft}{notes}"));
    daemon.signal(libc::SIGHUP);
    daemon
        .wait_for_log(&["configuration reloaded", "sources=2"], 1)
        .await;
    // Only the new config knows `notes`: its articles prove the reload took effect.
    daemon.wait_for_log(&["feed published"], 2).await;
    assert_eq!(archive_count(tmp.path()), 6);
    let notes_feed = http
        .get(daemon.url("/sources/notes.xml"))
        .send()
        .await
        .expect("notes feed");
    assert_eq!(notes_feed.status(), 200);

    let path = tmp.path().join("config/gazette.toml");
    std::fs::write(&path, "[[sources]]\nid = \"Broken Id\"\nurl = \"x\"\n").expect("break config");
    daemon.signal(libc::SIGHUP);
    daemon
        .wait_for_log(&["the new configuration is invalid", "Broken Id"], 1)
        .await;
    // Valid TOML that only the HTTP client rejects is refused too.
    std::fs::write(
        &path,
        format!("[fetch]\nuser_agent = \"bad\\u0001agent\"\n{ft}"),
    )
    .expect("bad agent");
    daemon.signal(libc::SIGHUP);
    daemon
        .wait_for_log(&["the new configuration is invalid"], 2)
        .await;
    assert_eq!(
        http.get(daemon.url("/healthz"))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );
    let still = http
        .get(daemon.url("/sources/notes.xml"))
        .send()
        .await
        .expect("notes feed");
    assert_eq!(still.status(), 200, "the old configuration was dropped");
}
