//! Fuzzing on the stable toolchain: a mutation fuzzer over checked-in corpora, run for a
//! bounded time by `cargo test`. Targets: feed parsing and normalizing, front matter reading,
//! config loading, and the HTTP request path of `gazette run`.
//!
//! Why not AFL++ (`cargo afl`) or libFuzzer: cargo-fuzz needs nightly, which these machines do
//! not have, and `cargo afl` needs an instrumented build and its own runner outside `cargo
//! test`. A coverage-blind mutator is weaker at finding deep paths, but it runs in every test
//! run on every machine, against the same corpora the other tests use, and a crash it finds
//! is a failing test at once.
//!
//! Each target mutates its corpus (byte flips, inserted tokens of the format, deleted and
//! repeated ranges, splices of two inputs) for `GAZETTE_FUZZ_SECONDS` (default 4) per target,
//! seeded by `GAZETTE_FUZZ_SEED` (default: the clock, printed so a run can be repeated). Any
//! panic fails the test, and the input that caused it is written to
//! `tests/fuzz/regressions/<target>/`; every file there is replayed first, on every run.

mod common;

use std::io::{Read as _, Write as _};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gazette::config::{Location, Settings, Source};
use gazette::format::Labels;
use gazette::normalize::{self, FeedContext};
use gazette::parse::{self, ParseLimits};
use url::Url;

fn budget() -> Duration {
    let seconds = std::env::var("GAZETTE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(4.0);
    Duration::from_secs_f64(seconds)
}

fn rng(target: &str) -> fastrand::Rng {
    let seed = std::env::var("GAZETTE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    // Straight to the process's stderr, past the test harness's capture: a stack overflow
    // aborts the process, and the captured output (the seed to replay it with) goes with it.
    let _ = writeln!(std::io::stderr(), "fuzz {target}: GAZETTE_FUZZ_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

fn read_all(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn regressions(target: &str) -> PathBuf {
    common::repo().join("tests/fuzz/regressions").join(target)
}

/// One mutation of `input`, using `tokens` of the format and `other` inputs for splices.
fn mutate(rng: &mut fastrand::Rng, input: &[u8], tokens: &[&[u8]], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.usize(1..=8) {
        let at = rng.usize(0..=out.len());
        match rng.u8(0..6) {
            0 if !out.is_empty() => {
                let i = rng.usize(0..out.len());
                out[i] ^= 1 << rng.u8(0..8);
            }
            1 => {
                let token = tokens[rng.usize(0..tokens.len())];
                out.splice(at..at, token.iter().copied());
            }
            2 if !out.is_empty() => {
                let end = (at + rng.usize(1..64)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 if !out.is_empty() => {
                let start = rng.usize(0..out.len());
                let end = (start + rng.usize(1..256)).min(out.len());
                let piece = out[start..end].to_vec();
                for _ in 0..rng.usize(1..4) {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            4 if !other.is_empty() => {
                let start = rng.usize(0..other.len());
                let end = (start + rng.usize(1..512)).min(other.len());
                out.splice(at..at, other[start..end].iter().copied());
            }
            _ => out.insert(at, rng.u8(..)),
        }
    }
    out
}

/// Runs `target` on `input`; a panic saves the input as a regression and fails the test.
fn run_case(name: &str, input: &[u8], target: &dyn Fn(&[u8])) {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| target(input)));
    if let Err(panic) = outcome {
        let dir = regressions(name);
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("crash-{:016x}", fxhash(input)));
        let _ = std::fs::write(&file, input);
        std::panic::resume_unwind(Box::new(format!(
            "fuzz {name}: a panic, input saved to {} ({:?})",
            file.display(),
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or(panic.downcast_ref::<&str>().copied())
        )));
    }
}

fn fxhash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Replays the regressions, then fuzzes `corpus` for the time budget; returns the cases run.
fn fuzz(name: &str, corpus: &[Vec<u8>], tokens: &[&[u8]], target: &dyn Fn(&[u8])) -> usize {
    assert!(!corpus.is_empty(), "fuzz {name}: no corpus");
    for input in read_all(&common::all_files(&regressions(name))) {
        run_case(name, &input, target);
    }
    for input in corpus {
        run_case(name, input, target);
    }
    let mut rng = rng(name);
    let deadline = Instant::now() + budget();
    let mut cases = 0;
    while Instant::now() < deadline {
        let input = &corpus[rng.usize(0..corpus.len())];
        let other = &corpus[rng.usize(0..corpus.len())];
        run_case(name, &mutate(&mut rng, input, tokens, other), target);
        cases += 1;
    }
    eprintln!("fuzz {name}: {cases} mutated cases");
    cases
}

const XML_TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x10FFFF;",
    b"&lt;p&gt;",
    b"\"",
    b"'",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<?xml version=\"1.0\" encoding=\"utf-16\"?>",
    b"<!DOCTYPE x [<!ENTITY a \"b\">]>",
    b"<entry>",
    b"</entry>",
    b"<item>",
    b"</item>",
    b"xmlns=\"http://www.w3.org/2005/Atom\"",
    b"type=\"xhtml\"",
    b"<div xmlns=\"http://www.w3.org/1999/xhtml\">",
    b"<pubDate>",
    b"</pubDate>",
    b"2024-02-30T25:61:61Z",
    b"Mon, 32 Foo 99999 99:99:99 XYZ",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\xc3",
    b"\0",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"items\":",
    b"<script>",
    b"<img src=\"javascript:x\">",
    b"<a href=\"",
    b"<table><tr><td>",
];

#[test]
fn fuzz_feed_parsing_and_normalizing() {
    let corpus = read_all(&common::all_files(
        &common::repo().join("tests/fixtures/conformance/feeds"),
    ));
    let base = Url::parse("http://127.0.0.1/feed.xml").expect("base");
    let source = Source::adhoc("fuzz", Location::Http(base.clone()));
    let limits = ParseLimits::default();
    let first_seen = DateTime::<Utc>::UNIX_EPOCH;
    let target = |bytes: &[u8]| {
        let Ok(parsed) = parse::parse_feed(bytes, None, Some(&base), &limits) else {
            return;
        };
        let ctx = FeedContext::new(&parsed.feed, Some(&base));
        for entry in &parsed.feed.entries {
            if let Ok(identity) = normalize::identify(entry, &source, &ctx) {
                let article =
                    normalize::normalize(entry, identity, &source, &ctx, first_seen, None);
                // What is archived must read back as a document.
                let _ = article;
            }
        }
    };
    assert!(fuzz("feeds", &corpus, XML_TOKENS, &target) > 0);
}

#[test]
fn fuzz_front_matter_reading() {
    let corpus = read_all(&common::all_files(
        &common::repo().join("tests/fixtures/archive-format"),
    ));
    let labels = Labels::default();
    let languages = vec!["en".to_owned(), "zh".to_owned()];
    let tokens: &[&[u8]] = &[
        b"---\n",
        b"\n",
        b": ",
        b"- ",
        b"'",
        b"\"",
        b"\\u0000",
        b"|\n",
        b">-\n",
        b"&a ",
        b"*a",
        b"!!binary ",
        b"{",
        b"[",
        b"# ",
        b"## ",
        b"[Link](",
        b")",
        b"\t",
        b"\r\n",
        b"\xe4\xb8\xad",
        b"date: 2024-13-45T00:00:00Z\n",
        b"tags:\n",
        b"title: ",
        b"~",
        b"null",
    ];
    let target = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let _ = gazette::publish::archive::read(&text, &labels, &languages);
    };
    assert!(fuzz("front_matter", &corpus, tokens, &target) > 0);
}

#[test]
fn fuzz_config_loading() {
    let mut paths = common::all_files(&common::repo().join("config"));
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    let mut corpus = read_all(&paths);
    corpus.extend(read_all(&common::all_files(
        &common::repo().join("tests/fuzz/config"),
    )));
    let at = common::repo().join("config/fuzz.toml");
    let tokens: &[&[u8]] = &[
        b"[[sources]]\n",
        b"[fetch]\n",
        b"[serve]\n",
        b"[feed]\n",
        b" = ",
        b"\"",
        b"'''",
        b"\n",
        b"0",
        b"-1",
        b"18446744073709551616",
        b"\"0s\"",
        b"\"999999y\"",
        b"\"1KiB\"",
        b"[",
        b"]",
        b"{",
        b"}",
        b"url = \"",
        b"id = \"",
        b"\"(\"",
        b"sqlite://",
        b"::",
        b"\xff",
        b"true",
    ];
    let target = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let _ = Settings::from_toml(&text, &at);
    };
    assert!(fuzz("config", &corpus, tokens, &target) > 0);
}

/// Writes `request` to a fresh connection and reads what comes back, briefly.
fn exchange(addr: &str, request: &[u8]) {
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    let _ = stream.write_all(request);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
}

#[test]
fn fuzz_the_http_request_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    common::copy_demo_feeds(&dir.join("feeds"));
    common::write_config(
        dir,
        &common::source("ft", "../feeds/ft-world.atom", "language = \"en\""),
    );
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
        .args(["run", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the daemon");
    let mut line = String::new();
    {
        use std::io::BufRead as _;
        let stdout = daemon.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the address line");
    }
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .expect("address")
        .to_owned();
    let corpus = read_all(&common::all_files(
        &common::repo().join("tests/fuzz/requests"),
    ));
    let tokens: &[&[u8]] = &[
        b"\r\n",
        b"\r\n\r\n",
        b" ",
        b"/",
        b"..",
        b"%00",
        b"%2e%2e",
        b"?",
        b"#",
        b":",
        b"Host: ",
        b"Content-Length: 99999999999999999999\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"If-None-Match: ",
        b"If-Modified-Since: ",
        b"Accept-Encoding: br, gzip\r\n",
        b"HTTP/1.0",
        b"HTTP/9.9",
        b"\0",
        b"\xff",
        b"/articles/",
        b"/tags/",
        b"/sources/",
        b".md",
        b".html",
    ];
    let target = |bytes: &[u8]| exchange(&addr, bytes);
    let cases = fuzz("requests", &corpus, tokens, &target);
    assert!(cases > 0);
    // The server lived through all of it and still answers.
    assert!(
        daemon.try_wait().expect("poll the daemon").is_none(),
        "the daemon died"
    );
    let mut healthz = Vec::new();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    stream.read_to_end(&mut healthz).expect("response");
    assert!(
        healthz.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&healthz)
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
}
