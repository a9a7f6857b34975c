//! What the scale and compare benchmarks share: the generated feeds, the HTTP server on
//! 127.0.0.1 that serves them (answering conditional requests as a real server does), one
//! measured run of a program under GNU time, and the Markdown table. A folder module rather than
//! `benches/common.rs`, which Cargo would take for a benchmark of its own.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// GNU time: its `%M` is the peak RSS of the process it runs, or, when that process waits for
/// children, the largest peak of any one process in the tree (Linux hands a reaped child's peak
/// up to its parent as a maximum, not a sum), so processes running side by side do not add up.
pub const TIME: &str = "/usr/bin/time";

/// How long after a large removal new files come slower on a file system without a journal:
/// the kernel skips inodes freed in the last minute one by one as it makes a file (five more
/// while their table block waits to be written), and the scan grows with how many were freed.
const SETTLING: std::time::Duration = std::time::Duration::from_secs(6 * 60);

/// The file whose age says when a bench last removed its folders from `$TMPDIR`.
fn removal_mark() -> std::path::PathBuf {
    std::env::temp_dir().join(".gazette-bench-removed")
}

/// Warns when a bench removed its folders from `$TMPDIR` within the last minutes: the runs
/// that make files there (every tool's cold run) may come out slow on such a file system.
pub fn warn_after_recent_removal() {
    let age = std::fs::metadata(removal_mark())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| at.elapsed().ok());
    if let Some(age) = age.filter(|age| *age < SETTLING) {
        println!(
            "note: a bench removed its folders from {} {} s ago; on a file system without a journal \
             the runs that make files may be slow for {} s more (benches/RESULTS.md, \"How to run\")",
            std::env::temp_dir().display(),
            age.as_secs(),
            (SETTLING - age).as_secs()
        );
    }
}

/// Removes a bench's folders (dropping them) and notes when, for
/// [`warn_after_recent_removal`].
pub fn remove_folders<T>(folders: Vec<T>) {
    drop(folders);
    let _ = std::fs::write(removal_mark(), b"");
}

pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        // A typo must not silently run the bench at the default size.
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// About 3.4 KB per entry, like a news feed that carries its articles' full text. Entries from
/// `fresh_from` on are dated February 2024, after every other entry (all in January), as a new
/// entry of a real feed is its newest.
fn feed(source: usize, entries: usize, offset: usize, fresh_from: usize) -> String {
    let mut xml = String::with_capacity(entries * 3600 + 512);
    let _ = write!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel>\
         <title>Source {source}</title><link>https://s{source}.example.org/</link><description>Bench source</description>"
    );
    for i in offset..offset + entries {
        let day = 1 + i % 28;
        let month = if i >= fresh_from { "Feb" } else { "Jan" };
        let _ = write!(
            xml,
            "<item><title>Story {i} from source {source}: markets, weather &amp; sport</title>\
             <link>https://s{source}.example.org/news/{i}</link><guid>https://s{source}.example.org/news/{i}</guid>\
             <pubDate>Mon, {day:02} {month} 2024 10:{m:02}:00 +0000</pubDate><category>bench</category>\
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

pub struct Feed {
    pub body: Bytes,
    /// Source, offset and count determine the body, so they make a strong validator.
    etag: String,
}

impl Feed {
    /// Source `source`'s feed of entries `offset..offset + entries`, those from `fresh_from` on
    /// dated later than all the others (`usize::MAX`: none).
    pub fn new(source: usize, entries: usize, offset: usize, fresh_from: usize) -> Self {
        Self {
            body: Bytes::from(feed(source, entries, offset, fresh_from)),
            // The bench uses one `fresh_from` per source and offset, so it needs no place here.
            etag: format!("\"s{source}-{offset}-{entries}\""),
        }
    }
}

/// Behind a lock because the benches change feeds while the server runs: the scale bench adds
/// its seed feeds and drops them once seeded, the compare bench changes some sources between runs.
pub type Feeds = Arc<RwLock<HashMap<String, Feed>>>;

async fn serve(
    State(feeds): State<Feeds>,
    UrlPath(name): UrlPath<String>,
    request: HeaderMap,
) -> Response {
    let feeds = feeds.read().expect("feed table lock poisoned");
    let Some(feed) = feeds.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = [(header::ETAG, feed.etag.clone())];
    // What a real server does, so that the warm run measures the 304 path.
    if request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == feed.etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, etag).into_response();
    }
    (
        etag,
        [(header::CONTENT_TYPE, "application/rss+xml")],
        feed.body.clone(),
    )
        .into_response()
}

/// Serves `feeds` at `<base>/<name>` on a free port of 127.0.0.1, on the current Tokio runtime;
/// the base URL.
pub async fn start_server(feeds: &Feeds) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/feeds", listener.local_addr().expect("addr"));
    let app = Router::new()
        .route("/feeds/{name}", get(serve))
        .with_state(Arc::clone(feeds));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });
    base
}

#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// Wall time.
    pub seconds: f64,
    /// User and system CPU time of the process and every child it waited for, summed: on a
    /// shared machine it varies less than the wall time.
    pub cpu_seconds: f64,
    pub peak_mib: f64,
}

/// One run of `program` in `dir` under GNU time: its wall time, CPU time and peak RSS (see
/// [`TIME`]), and what it printed. A run that fails ends the bench, showing its output.
pub fn timed<S: AsRef<OsStr>>(
    label: &str,
    dir: &Path,
    program: &str,
    args: &[S],
) -> (Measured, Output) {
    // GNU time writes its report to this file, so that the program's own stderr stays apart.
    let report = tempfile::NamedTempFile::new().expect("temp file for GNU time's report");
    settle_writes();
    let start = Instant::now();
    let output = Command::new(TIME)
        .arg("-f")
        .arg("%M %U %S")
        .arg("-o")
        .arg(report.path())
        .arg(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{label}: cannot run {TIME}: {e}"));
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{label} failed ({}): {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read_to_string(report.path()).expect("read GNU time's report");
    // The numbers are the last line; a line about the exit status may come before it.
    let (peak_kib, user, system) = report
        .lines()
        .rev()
        .find_map(|line| {
            let fields: Vec<f64> = line
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            match fields[..] {
                [peak, user, system] => Some((peak, user, system)),
                _ => None,
            }
        })
        .unwrap_or_else(|| {
            panic!("{label}: no peak RSS and CPU times in {TIME}'s report {report:?}")
        });
    let measured = Measured {
        seconds,
        cpu_seconds: user + system,
        peak_mib: peak_kib / 1024.0,
    };
    (measured, output)
}

/// Writes out what earlier runs left unwritten, before a run is timed. A tool that exits with
/// its files still in the page cache (sfeed leaves about 430 MB of them after a cold run)
/// would otherwise have them written during the next tool's run: on its time, and, for one
/// that flushes its own writes (Gazette, before its state points at its files), inside its
/// flush. Each run starts with nothing of another's waiting to be written.
fn settle_writes() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// A Markdown table, padded so that it also reads as plain text; `right[i]` aligns column `i`.
pub fn print_table(header: &[String], rows: &[Vec<String>], right: &[bool]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .fold(header[c].chars().count(), usize::max)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut out = String::from("|");
        for ((cell, &width), &right) in cells.iter().zip(&widths).zip(right) {
            if right {
                let _ = write!(out, " {cell:>width$} |");
            } else {
                let _ = write!(out, " {cell:<width$} |");
            }
        }
        println!("{out}");
    };
    line(header);
    // The cell's padding is part of the rule; a colon at its right end aligns right.
    let rule: Vec<String> = widths
        .iter()
        .zip(right)
        .map(|(&w, &right)| {
            if right {
                format!("{}:", "-".repeat(w + 1))
            } else {
                "-".repeat(w + 2)
            }
        })
        .collect();
    println!("|{}|", rule.join("|"));
    for row in rows {
        line(row);
    }
}
