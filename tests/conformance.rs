//! Conformance: `gazette preview` over a corpus of feed files (tests/fixtures/conformance/feeds/)
//! against what Python feedparser reads from the same files, normalized to what Gazette promises
//! (expected.json, written by scripts/conformance_oracle.py), with the hand-written expectations
//! of expected-manual.json laid over it per file. tests/fixtures/conformance/README.md says where
//! the files come from and why each hand-written expectation departs from feedparser.
//!
//! Per file the entry count is compared, and per entry its title, link, date and authors. Every
//! mismatch is collected and the test fails once, at the end, with the whole list and the
//! agreement per field.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

/// The URL each file is read as if fetched from: `BASE` + its name (the oracle uses the same).
const BASE: &str = "http://127.0.0.1/conformance/";

/// Longest a single `preview` may take; past it the file counts as hung and the run is killed.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The corpus must not shrink by accident.
const MIN_FILES: usize = 170;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance")
}

#[test]
fn preview_agrees_with_the_conformance_expectations() {
    let dir = corpus();
    let names = feed_names(&dir.join("feeds"));
    let expectations = load_expectations(&dir);
    let mut report = Report::default();

    assert!(
        names.len() >= MIN_FILES,
        "the corpus has {} files; it should have at least {MIN_FILES}",
        names.len()
    );
    for name in expectations.keys() {
        if !names.contains(name) {
            report.mismatch(name, None, "file", "a file in feeds/", "no such file");
        }
    }

    let workdir = tempfile::tempdir().expect("temporary working directory");
    let runs = run_all(&dir.join("feeds"), &names, workdir.path());
    for (name, run) in names.iter().zip(&runs) {
        match expectations.get(name) {
            Some(expected) => check_file(name, expected, run, &mut report),
            None => report.mismatch(
                name,
                None,
                "expectation",
                "an entry in expected.json or expected-manual.json",
                "none",
            ),
        }
    }

    let slowest = names
        .iter()
        .zip(&runs)
        .max_by_key(|(_, run)| run.elapsed)
        .map(|(name, run)| format!("; slowest file {name} ({:.0?})", run.elapsed))
        .unwrap_or_default();
    let summary = format!("{}{slowest}", report.summary(names.len()));
    if report.mismatches.is_empty() {
        println!("{summary}");
        return;
    }
    let full = report.render();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-report.txt");
    let saved = std::fs::write(&path, format!("{full}\n{summary}\n"))
        .map(|()| format!("(also written to {})", path.display()))
        .unwrap_or_default();
    eprintln!("{full}");
    panic!(
        "{} mismatches in {} of {} files {saved}\n{summary}",
        report.mismatches.len(),
        report.files_with_mismatches(),
        names.len()
    );
}

// ------------------------------------------------------------------------------------------
// Expectations

fn feed_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry"))
        .filter(|entry| entry.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|entry| entry.file_name().into_string().expect("UTF-8 file name"))
        .collect();
    names.sort();
    names
}

fn read_json(path: &Path) -> Map<String, Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => panic!("{} is not a JSON object", path.display()),
        Err(e) => panic!("{} is not valid JSON: {e}", path.display()),
    }
}

/// expected.json with expected-manual.json laid over it, file by file.
fn load_expectations(dir: &Path) -> BTreeMap<String, Value> {
    let mut expected: BTreeMap<String, Value> =
        read_json(&dir.join("expected.json")).into_iter().collect();
    for (name, value) in read_json(&dir.join("expected-manual.json")) {
        let why = value.get("why").and_then(Value::as_str).unwrap_or_default();
        assert!(
            !why.trim().is_empty(),
            "expected-manual.json: {name} has no \"why\""
        );
        expected.insert(name, value);
    }
    expected
}

// ------------------------------------------------------------------------------------------
// Running the binary

/// What one `gazette preview` run gave.
struct Run {
    /// `None` when it was killed for taking longer than [`TIMEOUT`].
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `preview` over every file, on as many threads as there are cores (at least two).
fn run_all(feeds: &Path, names: &[String], workdir: &Path) -> Vec<Run> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Run>>> = Mutex::new((0..names.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(name) = names.get(index) else { break };
                    let run = preview(&feeds.join(name), name, workdir);
                    results.lock().expect("results")[index] = Some(run);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|run| run.expect("every file was run"))
        .collect()
}

fn preview(path: &Path, name: &str, workdir: &Path) -> Run {
    let started = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gazette"));
    command
        .arg("preview")
        .arg(path)
        .arg("--base")
        .arg(format!("{BASE}{name}"))
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("GAZETTE_CONFIG")
        .env_remove("RUST_LOG");
    for proxy in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        command.env_remove(proxy);
    }
    let mut child = command.spawn().expect("run gazette");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    // The exit is waited for on its own thread, so the deadline is a wait on a channel, not a
    // polling loop.
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let (exited, exit) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait().expect("wait for gazette");
        let _ = exited.send(());
        status
    });
    let finished = exit.recv_timeout(TIMEOUT).is_ok();
    if !finished {
        // SAFETY: kill(2) on our own child, which the waiter thread has not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let status = waiter.join().expect("waiter");
    let status = finished.then_some(status);
    Run {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        elapsed: started.elapsed(),
    }
}

/// Reads a pipe to its end on its own thread, so a full pipe never blocks the child.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

// ------------------------------------------------------------------------------------------
// Comparing

fn check_file(name: &str, expected: &Value, run: &Run, report: &mut Report) {
    let Some(status) = run.status else {
        report.count(false);
        report.mismatch(
            name,
            None,
            "exit",
            "to finish",
            &format!("killed after {:.0?} (hung)", run.elapsed),
        );
        return;
    };
    if expected.get("error").and_then(Value::as_bool) == Some(true) {
        let named = run.stderr.contains(name);
        let ok = !status.success() && named;
        report.count(ok);
        if !ok {
            let got = if status.success() {
                format!("exit 0 with {} entries", run.stdout.lines().count())
            } else {
                format!(
                    "{status}, stderr not naming the file: {}",
                    error_line(&run.stderr)
                )
            };
            report.mismatch(
                name,
                None,
                "error",
                "a non-zero exit and a message naming the file",
                &got,
            );
        }
        return;
    }
    if !status.success() {
        report.count(false);
        report.mismatch(
            name,
            None,
            "exit",
            "success",
            &format!("{status}: {}", error_line(&run.stderr)),
        );
        return;
    }
    let mut got = Vec::new();
    for (line_number, line) in run.stdout.lines().enumerate() {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(entry)) => got.push(entry),
            _ => report.mismatch(
                name,
                None,
                "stdout",
                "one JSON object per line",
                &format!("line {}: {}", line_number + 1, shorten(line)),
            ),
        }
    }
    let want: &[Value] = expected
        .get("entries")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let want_count = expected
        .get("count")
        .and_then(Value::as_u64)
        .map_or(want.len(), |c| usize::try_from(c).unwrap_or(usize::MAX));
    report.count(want_count == got.len());
    if want_count != got.len() {
        report.mismatch(
            name,
            None,
            "count",
            &want_count.to_string(),
            &got.len().to_string(),
        );
    }
    for (index, (want, got)) in want.iter().zip(&got).enumerate() {
        check_entry(name, index, want, got, report);
    }
}

fn check_entry(
    name: &str,
    index: usize,
    want: &Value,
    got: &Map<String, Value>,
    report: &mut Report,
) {
    let at = Some(index);

    // Title: whitespace collapsed; an expected null means Gazette made one up, which must not be
    // empty.
    let got_title = got.get("title").and_then(Value::as_str).map(collapse);
    let (ok, expected) = match want.get("title").and_then(Value::as_str) {
        None => (
            got_title.as_deref().is_some_and(|t| !t.is_empty()),
            "a non-empty title".to_owned(),
        ),
        Some(title) => {
            let title = collapse(title);
            (
                got_title.as_deref() == Some(title.as_str()),
                show_str(Some(&title)),
            )
        }
    };
    report.field(Field::Title, ok);
    if !ok {
        report.mismatch(
            name,
            at,
            "title",
            &expected,
            &show_str(got_title.as_deref()),
        );
    }

    // Link: compared as URLs; an empty link is no link.
    let want_link = want
        .get("link")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty());
    let got_link = got
        .get("link")
        .and_then(Value::as_str)
        .filter(|l| !l.trim().is_empty());
    let ok = same_url(want_link, got_link);
    report.field(Field::Link, ok);
    if !ok {
        report.mismatch(name, at, "link", &show_str(want_link), &show_str(got_link));
    }

    // Date: published, else updated, compared as instants to the second (feedparser keeps no
    // fractions).
    let want_date = want.get("date").and_then(Value::as_str);
    let (got_date, shape) = gazette_date(got);
    let ok = match (want_date.map(instant), got_date.map(instant)) {
        (None, None) => shape.is_none(),
        (Some(Some(a)), Some(Some(b))) => a.timestamp() == b.timestamp() && shape.is_none(),
        _ => false,
    };
    report.field(Field::Date, ok);
    if !ok {
        let got_text = match shape {
            Some(problem) => problem,
            None => show_str(got_date),
        };
        report.mismatch(name, at, "date", &show_str(want_date), &got_text);
    }

    // Authors: the same people in the same order.
    let want_authors = people(want.get("authors"));
    let got_authors = people(got.get("authors"));
    let ok = match (&want_authors, &got_authors) {
        (Ok(w), Ok(g)) => w.len() == g.len() && w.iter().zip(g).all(|(a, b)| a.same_as(b)),
        _ => false,
    };
    report.field(Field::Authors, ok);
    if !ok {
        report.mismatch(
            name,
            at,
            "authors",
            &show_people(&want_authors),
            &show_people(&got_authors),
        );
    }
}

/// `published`, else `updated`; the second value says what is wrong with the output's shape.
fn gazette_date(got: &Map<String, Value>) -> (Option<&str>, Option<String>) {
    let mut problem = None;
    for field in ["published", "updated"] {
        match got.get(field) {
            Some(Value::String(s)) => {
                if instant(s).is_none() {
                    problem = Some(format!("{field} {s:?} is not RFC 3339"));
                }
                return (Some(s), problem);
            }
            Some(Value::Null) => {}
            Some(other) => return (None, Some(format!("{field} is {other}, not a string"))),
            None => problem = Some(format!("no \"{field}\" field in the output")),
        }
    }
    (None, problem)
}

fn instant(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text.trim()).ok()
}

/// Equal as URLs (host case, default ports and percent-encoding aside), else as strings.
fn same_url(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => match (url::Url::parse(a.trim()), url::Url::parse(b.trim())) {
            (Ok(a), Ok(b)) => a == b,
            _ => a.trim() == b.trim(),
        },
        _ => false,
    }
}

#[derive(Debug)]
struct Person {
    name: Option<String>,
    email: Option<String>,
    uri: Option<String>,
}

impl Person {
    fn same_as(&self, other: &Person) -> bool {
        self.name == other.name
            && self.email == other.email
            && same_url(self.uri.as_deref(), other.uri.as_deref())
    }
}

fn people(value: Option<&Value>) -> Result<Vec<Person>, String> {
    let list = match value {
        Some(Value::Array(list)) => list,
        Some(Value::Null) => return Ok(Vec::new()),
        None => return Err("no \"authors\" field in the output".to_owned()),
        Some(other) => return Err(format!("authors is {other}, not a list")),
    };
    list.iter()
        .map(|person| {
            let text = |key: &str| {
                person
                    .get(key)
                    .and_then(Value::as_str)
                    .map(collapse)
                    .filter(|s| !s.is_empty())
            };
            match person {
                Value::Object(_) => Ok(Person {
                    name: text("name"),
                    email: text("email"),
                    uri: text("uri"),
                }),
                other => Err(format!("an author is {other}, not an object")),
            }
        })
        .collect()
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn show_str(value: Option<&str>) -> String {
    value.map_or_else(|| "null".to_owned(), |s| format!("{:?}", shorten(s)))
}

fn show_people(people: &Result<Vec<Person>, String>) -> String {
    match people {
        Err(problem) => problem.clone(),
        Ok(list) if list.is_empty() => "[]".to_owned(),
        Ok(list) => {
            let shown: Vec<String> = list
                .iter()
                .map(|p| {
                    let mut s = p.name.clone().unwrap_or_else(|| "(no name)".to_owned());
                    if let Some(email) = &p.email {
                        let _ = write!(s, " <{email}>");
                    }
                    if let Some(uri) = &p.uri {
                        let _ = write!(s, " {uri}");
                    }
                    s
                })
                .collect();
            format!("[{}]", shown.join("; "))
        }
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 160;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// The line of stderr that says what went wrong: the first naming an error, else the last.
fn error_line(text: &str) -> String {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let line = lines
        .clone()
        .find(|l| l.to_ascii_lowercase().contains("error"))
        .or_else(|| lines.next_back())
        .unwrap_or("(nothing on stderr)");
    shorten(line.trim())
}

// ------------------------------------------------------------------------------------------
// Reporting

#[derive(Clone, Copy)]
enum Field {
    Title,
    Link,
    Date,
    Authors,
}

struct Mismatch {
    file: String,
    entry: Option<usize>,
    field: &'static str,
    expected: String,
    got: String,
}

#[derive(Default)]
struct Report {
    mismatches: Vec<Mismatch>,
    /// (agreed, compared) per field: title, link, date, authors; then files' counts.
    fields: [(usize, usize); 4],
    counts: (usize, usize),
}

impl Report {
    fn mismatch(
        &mut self,
        file: &str,
        entry: Option<usize>,
        field: &'static str,
        expected: &str,
        got: &str,
    ) {
        self.mismatches.push(Mismatch {
            file: file.to_owned(),
            entry,
            field,
            expected: expected.to_owned(),
            got: got.to_owned(),
        });
    }

    fn field(&mut self, field: Field, ok: bool) {
        let slot = &mut self.fields[field as usize];
        slot.0 += usize::from(ok);
        slot.1 += 1;
    }

    fn count(&mut self, ok: bool) {
        self.counts.0 += usize::from(ok);
        self.counts.1 += 1;
    }

    fn files_with_mismatches(&self) -> usize {
        let mut files: Vec<&str> = self.mismatches.iter().map(|m| m.file.as_str()).collect();
        files.dedup();
        files.len()
    }

    fn render(&self) -> String {
        let mut out =
            String::from("Conformance mismatches (file, entry, field: expected / got):\n");
        let mut last_file = "";
        for m in &self.mismatches {
            if m.file != last_file {
                let _ = writeln!(out, "\n{}", m.file);
                last_file = &m.file;
            }
            let entry = m
                .entry
                .map_or_else(|| "file".to_owned(), |i| format!("entry {i}"));
            let _ = writeln!(
                out,
                "  {entry}, {}:\n    expected {}\n    got      {}",
                m.field, m.expected, m.got
            );
        }
        out
    }

    fn summary(&self, files: usize) -> String {
        let pct = |(agreed, total): (usize, usize)| {
            if total == 0 {
                "n/a".to_owned()
            } else {
                #[allow(clippy::cast_precision_loss)]
                let p = agreed as f64 * 100.0 / total as f64;
                format!("{agreed}/{total} ({p:.1}%)")
            }
        };
        format!(
            "Conformance over {files} files: titles {}, links {}, dates {}, authors {}, counts {}",
            pct(self.fields[Field::Title as usize]),
            pct(self.fields[Field::Link as usize]),
            pct(self.fields[Field::Date as usize]),
            pct(self.fields[Field::Authors as usize]),
            pct(self.counts),
        )
    }
}
