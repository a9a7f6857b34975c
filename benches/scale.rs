//! Scale benchmark: N sources x M entries served over HTTP on 127.0.0.1, fetched by the release
//! binary into a fresh archive (cold run); then again with nothing changed, forced so that every
//! source is asked and answers 304 to the conditional request (warm run); then as cron would,
//! when no source is due yet (idle run).
//!
//! `cargo bench --bench scale`; sizes from the environment:
//! `GAZETTE_BENCH_SOURCES` (default 1000), `GAZETTE_BENCH_ENTRIES` (50),
//! `GAZETTE_BENCH_PRESEED` (articles archived before the measured runs, default 0; 200000 matches
//! the archive size the project is measured at, and takes a while to build).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// About 3.4 KB per entry, like a news feed that carries its articles' full text.
fn feed(source: usize, entries: usize, offset: usize) -> String {
    let mut xml = String::with_capacity(entries * 3600 + 512);
    let _ = write!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel>\
         <title>Source {source}</title><link>https://s{source}.example.org/</link><description>Bench source</description>"
    );
    for i in offset..offset + entries {
        let day = 1 + i % 28;
        let _ = write!(
            xml,
            "<item><title>Story {i} from source {source}: markets, weather &amp; sport</title>\
             <link>https://s{source}.example.org/news/{i}</link><guid>https://s{source}.example.org/news/{i}</guid>\
             <pubDate>Mon, {day:02} Jan 2024 10:{m:02}:00 +0000</pubDate><category>bench</category>\
             <description>Summary of story {i}: a short paragraph that says what the article is about, in a sentence or two.</description>\
             <content:encoded><![CDATA[",
            m = i % 60
        );
        for p in 0..8 {
            let _ = write!(
                xml,
                "<p>Paragraph {p} of story {i}. <strong>Key phrase {p}</strong> appears among ordinary words, with a \
                 <a href=\"/related/{i}-{p}\">related link</a> and some <em>emphasis</em>, so that conversion has work to do. \
                 The rest of the paragraph pads the text to the length of a real one, about as long as this.</p>"
            );
        }
        xml.push_str("]]></content:encoded></item>");
    }
    xml.push_str("</channel></rss>\n");
    xml
}

type Feeds = Arc<HashMap<String, Vec<u8>>>;

async fn serve(State(feeds): State<Feeds>, UrlPath(name): UrlPath<String>) -> Response {
    match feeds.get(&name) {
        Some(body) => (
            [(header::CONTENT_TYPE, "application/rss+xml")],
            body.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn write_config(dir: &Path, base: &str, sources: usize, prefix: &str) {
    let mut config = String::from(
        "[archive]\ndir = \"archive\"\n[feed]\npath = \"public/atom.xml\"\n[state]\nurl = \"sqlite://state/gazette.db\"\n[fetch]\nconcurrency = 16\n",
    );
    for s in 0..sources {
        let _ = write!(
            config,
            "[[sources]]\nid = \"s{s}\"\nurl = \"{base}/{prefix}{s}.xml\"\n"
        );
    }
    std::fs::write(dir.join("gazette.toml"), config).expect("config");
}

fn run(dir: &Path, label: &str, entries: usize, extra: &[&str]) -> f64 {
    let start = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
        .args(["--config", "gazette.toml", "fetch"])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("run gazette");
    let seconds = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        output.status.success(),
        "{label} failed: {summary}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!(
        "{label:<6} {seconds:>8.2} s  {:>9.0} entries/s  ({summary})",
        entries as f64 / seconds
    );
    seconds
}

fn max_child_rss_mib() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes into the provided struct, which is large enough.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    if rc != 0 {
        return f64::NAN;
    }
    // SAFETY: initialized by the successful call above.
    let usage = unsafe { usage.assume_init() };
    usage.ru_maxrss as f64 / 1024.0
}

#[tokio::main]
async fn main() {
    let sources = env_usize("GAZETTE_BENCH_SOURCES", 1000);
    let entries = env_usize("GAZETTE_BENCH_ENTRIES", 50);
    let preseed = env_usize("GAZETTE_BENCH_PRESEED", 0);
    let preseed_per_source = preseed.div_ceil(sources.max(1));

    let mut feeds = HashMap::new();
    let mut bytes = 0;
    for s in 0..sources {
        let body = feed(s, entries, preseed_per_source).into_bytes();
        bytes += body.len();
        feeds.insert(format!("s{s}.xml"), body);
        if preseed_per_source > 0 {
            feeds.insert(
                format!("seed{s}.xml"),
                feed(s, preseed_per_source, 0).into_bytes(),
            );
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/feeds", listener.local_addr().expect("addr"));
    let app = Router::new()
        .route("/feeds/{name}", get(serve))
        .with_state(Arc::new(feeds));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });

    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "gazette scale bench: {sources} sources x {entries} entries = {} entries, {:.1} MB of feeds over HTTP on 127.0.0.1",
        sources * entries,
        bytes as f64 / 1e6
    );
    let total = sources * entries;
    tokio::task::spawn_blocking(move || {
        if preseed_per_source > 0 {
            write_config(dir.path(), &base, sources, "seed");
            run(dir.path(), "seed", sources * preseed_per_source, &[]);
        }
        write_config(dir.path(), &base, sources, "s");
        run(dir.path(), "cold", total, &[]);
        run(dir.path(), "warm", total, &["--force"]);
        run(dir.path(), "idle", total, &[]);
        println!("peak RSS of a run: {:.0} MiB", max_child_rss_mib());
    })
    .await
    .expect("bench");
}
