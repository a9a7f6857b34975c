//! Comparison benchmark: Gazette against sfeed and against the download floor, the same job on
//! the same feeds, served over HTTP on 127.0.0.1 by this process (axum, ETag and 304 as a real
//! server answers conditional requests).
//!
//! ```text
//! bash scripts/bench-deps.sh        # GNU time, curl, sfeed (once)
//! cargo bench --bench compare       # 1000 sources x 50 entries, 3 runs of each
//! GAZETTE_BENCH_SOURCES=200 GAZETTE_BENCH_ENTRIES=50 cargo bench --bench compare
//! ```
//!
//! Environment: `GAZETTE_BENCH_SOURCES` (default 1000), `GAZETTE_BENCH_ENTRIES` (default 50, each
//! about 3.4 KB with its full text in `content:encoded`, the scale bench's feeds),
//! `GAZETTE_BENCH_REPEATS` (default 3), `GAZETTE_BENCH_KEEP=1` (keep each tool's folder, to look
//! at what it wrote), `GAZETTE_BENCH_TOOLS` (default `floor,sfeed,gazette`: the tools to run;
//! the others' columns say "not run"), `GAZETTE_BENCH_STATE` (`sqlite`, the default, or
//! `postgres`: Gazette's state in a database of its own per repetition on the PostgreSQL server
//! `GAZETTE_TEST_POSTGRES_URL` names, else on a private one the bench starts, as the tests do).
//!
//! Three runs, each in a fresh temporary folder per tool and repetition:
//!
//! - `cold`: the first run, empty state; every source answers 200 with its whole feed;
//! - `warm`: again with nothing changed; every source is asked and answers 304 to the conditional
//!   request (Gazette with `fetch --force`, since no source is due yet);
//! - `incremental`: every tenth source (10%, from the first) now has one new entry (its window
//!   moves by one: one new, the oldest dropped, a new ETag) and answers 200; the rest 304. The
//!   new entries are the newest of all, so the merged feed changes too.
//!
//! Three tools, each with 8 requests in flight:
//!
//! - download floor: the same requests and nothing else, one `curl --parallel --parallel-max 8`
//!   process over a config file of every URL. Bodies go to `/dev/null`; each response's ETag is
//!   saved to a file (`--etag-save`), and warm and incremental send it back (`--etag-compare`),
//!   so the server answers 304 where nothing changed. The status codes are checked: N 200s cold,
//!   N 304s warm, N/10 200s and the rest 304 incremental.
//! - sfeed (the Debian package, `sfeed_update` and its tools, version 1.7 when this was written),
//!   as an sfeed user would script the job: an sfeedrc with `maxjobs=8`, `fetch()` overridden to
//!   curl with `--etag-save`/`--etag-compare` and `-z` (conditional GET, as sfeed's README shows),
//!   `merge()` overridden to also list the entries not stored before; after `sfeed_update`, one
//!   awk pass writes a Markdown file per new entry (front matter: title, date, link, source; the
//!   content as it came, HTML, not converted), then, when some entry was new, `sfeed_atom` writes
//!   a merged Atom feed of the newest 100 entries. All of it is one shell script, timed whole.
//!   sfeed_update 1.7 starts its feeds in batches of 8 and waits for each batch to finish: that
//!   is sfeed as shipped. The server never compresses, so `--compressed` (from the README) only
//!   adds a request header. When sfeed is not installed its column says "absent".
//! - Gazette: the release binary with `[fetch] concurrency = 8` and `per_host = 8` (every source
//!   is on 127.0.0.1, one host), `[feed] max_entries = 100` like sfeed's merged feed. Its job is
//!   more than sfeed's: HTML converted to Markdown, identity and dedupe, a state database.
//!
//! The first table is the one asked for: each cell is the median of the repetitions' wall times
//! and, apart, of their peak RSS; the ratios are of the wall times. A second table gives the
//! median CPU time (user + system, GNU time's `%U` + `%S`, in hundredths of a second; for sfeed,
//! of every process in the tree) and its ratios: it is steadier on a shared machine, and tells
//! work from waiting. Peak RSS
//! is GNU time's `%M` (`/usr/bin/time`): for curl and Gazette, one process, it is that process's
//! peak. For sfeed, a shell script that runs thousands of short processes, 8 feeds at a time, it
//! is the largest peak of any single process in the tree, not the sum of those running at once
//! (Linux reports a reaped child's peak to its parent as a maximum). The runs of the three tools
//! are interleaved (floor, sfeed, Gazette, then again), so that a burst of load from elsewhere
//! on the machine is spread over all three; on a shared machine the ratios mean more than the
//! seconds.
//!
//! Below the tables, the archive floor (cold only): once every tool has run, the files
//! Gazette's first cold run wrote are made again in an empty folder the way Gazette makes them,
//! and nothing else: each folder once, each file staged and put in place as Gazette does (an
//! unnamed file linked, where the system has them), a thread per core, one flush at the end
//! (`benches/archive_floor`, run by this bench's own executable under GNU time). No program
//! writes the same archive safely in less. What it costs depends on the machine's file system
//! more than anything else in the runs does (a file or folder made took about 23 µs of CPU on
//! one guest's disk, 4 to 9 µs on its tmpfs; see `benches/RESULTS.md`), so both tools' cold runs
//! are given against it too.
//!
//! After each run the bench checks that the job was done: Markdown files written (one per entry,
//! cumulative), the merged feed's entries, the floor's status codes.
//!
//! A bench of its own rather than a mode of `benches/scale.rs`: that one follows one Gazette
//! state through six phases at one or more archive sizes; this one takes three tools through
//! three runs, repeated. They share the feeds, the server and the measured run
//! (`benches/common/mod.rs`), so their numbers are of the same feeds and measured the same way.

mod archive_floor;
mod common;
#[path = "../tests/common/postgres.rs"]
#[allow(dead_code, reason = "the tests' helper; the bench uses part of it")]
mod postgres;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, RwLock};

use common::{Feed, Feeds, Measured, TIME, env_usize, print_table, start_server, timed};

/// Requests in flight, for each tool: sfeed's default `maxjobs`.
const JOBS: usize = 8;
/// One source in this many has a new entry in the incremental run.
const CHANGED_EVERY: usize = 10;
/// Entries in the merged Atom feed, for both sfeed and Gazette.
const ATOM_ENTRIES: usize = 100;
const RUNS: [&str; 3] = ["cold", "warm", "incremental"];

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Tool {
    Floor,
    Sfeed,
    Gazette,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Self::Floor => "floor",
            Self::Sfeed => "sfeed",
            Self::Gazette => "gazette",
        }
    }
}

struct Bench {
    feeds: Feeds,
    base: String,
    sources: usize,
    entries: usize,
}

impl Bench {
    fn url(&self, source: usize) -> String {
        format!("{}/s{source}.xml", self.base)
    }

    fn changed(source: usize) -> bool {
        source.is_multiple_of(CHANGED_EVERY)
    }

    fn changed_count(&self) -> usize {
        self.sources.div_ceil(CHANGED_EVERY)
    }

    /// Every tenth source at version `offset`: 0 as the cold run finds it, 1 with one new entry,
    /// dated after all the others as a real feed's new entry is, so that the merged feed changes.
    /// The others never change, so they are generated once.
    fn set_changed(&self, offset: usize) {
        let mut feeds = self.feeds.write().expect("feed table lock poisoned");
        for s in (0..self.sources).filter(|&s| Self::changed(s)) {
            feeds.insert(
                format!("s{s}.xml"),
                Feed::new(s, self.entries, offset, self.entries),
            );
        }
    }
}

/// Whether `program` is an executable file in a directory of `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The first line of a command's output, for the versions in the header; empty when it fails.
fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// Files named `*.md` under `dir`, at any depth.
fn count_markdown(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.expect("directory entry"))
        .map(|e| {
            let path = e.path();
            if e.file_type().expect("file type").is_dir() {
                count_markdown(&path)
            } else {
                usize::from(path.extension().is_some_and(|x| x == "md"))
            }
        })
        .sum()
}

/// The archive floor's runs (see `archive_floor`), each in a fresh folder kept in `folders`.
fn archive_floor_runs(
    listing: &archive_floor::Listing,
    repeats: usize,
    folders: &mut Vec<tempfile::TempDir>,
) -> Vec<Measured> {
    let exe = std::env::current_exe().expect("the bench's own executable");
    let exe = exe.to_str().expect("the bench's path is UTF-8");
    (0..repeats)
        .map(|repeat| {
            let dir = workdir("archive-floor", repeat);
            let list = dir.path().join("listing.tsv");
            std::fs::write(&list, &listing.text).expect("write the listing");
            let list = list.to_str().expect("temp paths are UTF-8");
            let (m, _) = timed(
                "archive floor",
                dir.path(),
                exe,
                &[archive_floor::FLAG, list],
            );
            let made = archive_floor::listing(&dir.path().join("archive"));
            assert_eq!(
                (made.files, made.folders),
                (listing.files, listing.folders),
                "archive floor: files and folders made"
            );
            println!(
                "#{} {:<21} {:>8.3} s {:>8.3} s CPU {:>8.1} MiB  {} files, {} folders",
                repeat + 1,
                "archive floor cold",
                m.seconds,
                m.cpu_seconds,
                m.peak_mib,
                made.files,
                made.folders
            );
            folders.push(dir);
            m
        })
        .collect()
}

/// A fresh folder for one tool's runs, or one of the archive floor's; kept, and its path
/// printed, with `GAZETTE_BENCH_KEEP=1`, to look at what each tool wrote.
fn workdir(tool: &str, repeat: usize) -> tempfile::TempDir {
    let keep = std::env::var_os("GAZETTE_BENCH_KEEP").is_some_and(|v| v == "1");
    let dir = tempfile::Builder::new()
        .prefix(&format!("gazette-compare-{tool}-"))
        .disable_cleanup(keep)
        .tempdir()
        .expect("tempdir");
    if keep {
        println!("#{} {tool:<8} kept in {}", repeat + 1, dir.path().display());
    }
    dir
}

/// `<entry>` elements in the merged Atom feed at `path`.
fn atom_entries(path: &Path) -> usize {
    let atom = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no merged feed {}: {e}", path.display()));
    atom.matches("<entry>").count() + atom.matches("<entry ").count()
}

fn print_run(repeat: usize, tool: Tool, run: &str, m: Measured, note: &str) {
    println!(
        "#{} {:<8} {run:<12} {:>8.3} s {:>8.3} s CPU {:>8.1} MiB  {note}",
        repeat + 1,
        tool.name(),
        m.seconds,
        m.cpu_seconds,
        m.peak_mib
    );
}

/// The floor's config file for curl: one transfer per source, `next` between them (not after the
/// last, where curl would expect one more URL). `conditional` sends the saved ETag back.
fn curl_config(bench: &Bench, conditional: bool) -> String {
    let mut config = String::new();
    for s in 0..bench.sources {
        if s > 0 {
            config.push_str("next\n");
        }
        let _ = writeln!(config, "url = \"{}\"", bench.url(s));
        config.push_str("output = \"/dev/null\"\n");
        if conditional {
            let _ = writeln!(config, "etag-compare = \"etags/s{s}\"");
        }
        let _ = writeln!(config, "etag-save = \"etags/s{s}\"");
        // One status code a line on stdout, checked after the run.
        config.push_str("write-out = \"%{http_code}\\n\"\n");
    }
    config
}

fn floor(bench: &Bench, repeat: usize) -> ([Measured; 3], tempfile::TempDir) {
    let dir = workdir(Tool::Floor.name(), repeat);
    let path = dir.path();
    std::fs::create_dir(path.join("etags")).expect("etags folder");
    std::fs::write(path.join("cold.cfg"), curl_config(bench, false)).expect("curl config");
    std::fs::write(path.join("conditional.cfg"), curl_config(bench, true)).expect("curl config");
    let jobs = JOBS.to_string();
    let mut measured = Vec::new();
    for (run, config) in RUNS
        .iter()
        .zip(["cold.cfg", "conditional.cfg", "conditional.cfg"])
    {
        if *run == "incremental" {
            bench.set_changed(1);
        }
        let args = [
            "--parallel",
            "--parallel-max",
            &jobs,
            "--no-progress-meter",
            "--config",
            config,
        ];
        let (m, output) = timed(&format!("floor {run}"), path, "curl", &args);
        let mut codes: HashMap<String, usize> = HashMap::new();
        for code in String::from_utf8_lossy(&output.stdout).lines() {
            *codes.entry(code.to_owned()).or_default() += 1;
        }
        let changed = bench.changed_count();
        let expected = match *run {
            "cold" => HashMap::from([("200".to_owned(), bench.sources)]),
            "warm" => HashMap::from([("304".to_owned(), bench.sources)]),
            _ => HashMap::from([
                ("200".to_owned(), changed),
                ("304".to_owned(), bench.sources - changed),
            ]),
        };
        let expected: HashMap<String, usize> =
            expected.into_iter().filter(|&(_, n)| n > 0).collect();
        assert_eq!(codes, expected, "floor {run}: status codes");
        let mut note = String::new();
        for (code, n) in &codes {
            let _ = write!(note, "{n} x {code} ");
        }
        print_run(repeat, Tool::Floor, run, m, note.trim_end());
        measured.push(m);
    }
    (measured.try_into().expect("three runs"), dir)
}

/// `'...'` for the shell, for the folder and URLs the bench writes into sfeed's scripts.
fn shell_quote(s: &str) -> String {
    assert!(!s.contains('\''), "{s:?} has a quote");
    format!("'{s}'")
}

/// The sfeedrc: the feeds, 8 jobs, and the two functions overridden as sfeed's README shows.
fn sfeedrc(bench: &Bench, dir: &Path) -> String {
    let dir = dir.to_str().expect("temp folder is UTF-8");
    let mut rc = format!(
        "# Written by Gazette's benches/compare.rs.\n\
         sfeedpath={feeds}\n\
         maxjobs={JOBS}\n\n\
         feeds() {{\n",
        feeds = shell_quote(&format!("{dir}/feeds"))
    );
    for s in 0..bench.sources {
        let _ = writeln!(rc, "\tfeed s{s} {}", shell_quote(&bench.url(s)));
    }
    rc.push_str("}\n");
    let _ = write!(
        rc,
        r#"
# Conditional GET: the ETag saved and sent back, If-Modified-Since from the ETag file's time.
# fetch(name, url, feedfile)
fetch() {{
	etag={etags}"$(basename "$3")"
	curl -L --max-redirs 0 -H "User-Agent:" -f -s -m 15 --compressed \
		--etag-save "$etag" --etag-compare "$etag" -z "$etag" \
		"$2" 2>/dev/null
}}

# sfeed_update's own merge, and the entries not stored before (the same key: id, title, link)
# listed in new/NAME for the Markdown pass. FILENAME, not NR == FNR: the old file may be empty.
# The sort is sfeed_update's default merge, word for word (a tab between its quotes).
# merge(name, oldfile, newfile)
merge() {{
	awk -F '\t' 'FILENAME == ARGV[1] {{ old[$6 FS $2 FS $3]; next }} !(($6 FS $2 FS $3) in old)' \
		"$2" "$3" > {new}"$1"
	sort -t '	' -u -k6,6 -k2,2 -k3,3 "$2" "$3" 2>/dev/null
}}
"#,
        etags = shell_quote(&format!("{dir}/etags/")),
        new = shell_quote(&format!("{dir}/new/")),
    );
    rc
}

/// The whole sfeed job, timed as one: update, a Markdown file per new entry, the merged feed.
const SFEED_JOB: &str = r#"#!/bin/sh
# Written by Gazette's benches/compare.rs: the sfeed side of the comparison.
set -eu
rm -rf new
mkdir -p new etags archive public
sfeed_update ./sfeedrc > /dev/null
cd new
set -- *
cd ..
# Nothing new: no file to write, and the merged feed stays as it is.
[ -e "new/$1" ] || exit 0
# A folder per source with new entries, then one awk pass over every list of new entries.
(cd archive && mkdir -p "$@")
awk -F '\t' '
# YAML single-quoted: a quote is doubled, nothing else is special (sfeed keeps titles on one line).
function quote(s) { gsub(/\047/, "\047\047", s); return "\047" s "\047" }
# sfeed escapes the content field: \n, \t and \\.
function unescape(s,   out, i, n, c) {
	if (index(s, "\\") == 0) return s
	out = ""; n = length(s)
	for (i = 1; i <= n; i++) {
		c = substr(s, i, 1)
		if (c == "\\" && i < n) {
			c = substr(s, ++i, 1)
			if (c == "n") c = "\n"; else if (c == "t") c = "\t"
		}
		out = out c
	}
	return out
}
FNR == 1 { source = FILENAME; sub(/^.*\//, "", source) }
{
	name = ($6 != "") ? $6 : $3
	gsub(/[^A-Za-z0-9._-]+/, "_", name)
	file = "archive/" source "/" name ".md"
	printf "---\ntitle: %s\ndate: %s\nlink: %s\nsource: %s\n---\n\n%s\n", quote($2), \
		strftime("%Y-%m-%dT%H:%M:%SZ", $1, 1), quote($3), source, unescape($4) > file
	close(file)
}' new/*
# The newest 100 over all sources. Each feed file is sorted newest first, so its first 100 lines
# are all that can count.
awk 'FNR > 100 { nextfile } { print }' feeds/* | sort -k1,1rn | head -n 100 | sfeed_atom > public/atom.xml
"#;

fn sfeed(bench: &Bench, repeat: usize) -> ([Measured; 3], tempfile::TempDir) {
    let dir = workdir(Tool::Sfeed.name(), repeat);
    let path = dir.path();
    std::fs::write(path.join("sfeedrc"), sfeedrc(bench, path)).expect("sfeedrc");
    std::fs::write(path.join("job.sh"), SFEED_JOB).expect("sfeed job script");
    let mut measured = Vec::new();
    let mut articles = 0;
    for run in RUNS {
        let new = match run {
            "cold" => bench.sources * bench.entries,
            "warm" => 0,
            _ => {
                bench.set_changed(1);
                bench.changed_count()
            }
        };
        let (m, _) = timed(&format!("sfeed {run}"), path, "sh", &["job.sh"]);
        articles += new;
        let files = count_markdown(&path.join("archive"));
        assert_eq!(files, articles, "sfeed {run}: Markdown files");
        let atom = atom_entries(&path.join("public/atom.xml"));
        assert_eq!(
            atom,
            ATOM_ENTRIES.min(articles),
            "sfeed {run}: merged feed entries"
        );
        print_run(
            repeat,
            Tool::Sfeed,
            run,
            m,
            &format!("{new} new, {files} Markdown files"),
        );
        measured.push(m);
    }
    (measured.try_into().expect("three runs"), dir)
}

fn gazette_config(bench: &Bench) -> String {
    let mut config = format!(
        "[archive]\ndir = \"archive\"\n\
         [feed]\npath = \"public/atom.xml\"\nmax_entries = {ATOM_ENTRIES}\n\
         [state]\nurl = \"{}\"\n\
         [fetch]\nconcurrency = {JOBS}\nper_host = {JOBS}\n",
        state_url()
    );
    for s in 0..bench.sources {
        let _ = write!(
            config,
            "[[sources]]\nid = \"s{s}\"\nurl = \"{}\"\n",
            bench.url(s)
        );
    }
    config
}

/// Where Gazette keeps state: SQLite beside the archive, or a new PostgreSQL database.
fn state_url() -> String {
    match std::env::var("GAZETTE_BENCH_STATE").as_deref() {
        Ok("postgres") => postgres::fresh_database(),
        Ok("sqlite") | Err(_) => "sqlite://state/gazette.db".to_owned(),
        Ok(other) => panic!("GAZETTE_BENCH_STATE: {other:?} is neither sqlite nor postgres"),
    }
}

/// Gazette's three runs. The first cold run's files are listed into `listing`, for the
/// archive floor.
fn gazette(
    bench: &Bench,
    repeat: usize,
    listing: &mut Option<archive_floor::Listing>,
) -> ([Measured; 3], tempfile::TempDir) {
    let dir = workdir(Tool::Gazette.name(), repeat);
    let path = dir.path();
    std::fs::write(path.join("gazette.toml"), gazette_config(bench)).expect("config");
    let mut measured = Vec::new();
    let mut articles = 0;
    for run in RUNS {
        let (new, args): (usize, &[&str]) = match run {
            "cold" => (bench.sources * bench.entries, &["fetch"]),
            "warm" => (0, &["fetch", "--force"]),
            _ => {
                bench.set_changed(1);
                (bench.changed_count(), &["fetch", "--force"])
            }
        };
        let mut full = vec!["--config", "gazette.toml"];
        full.extend_from_slice(args);
        let (m, output) = timed(
            &format!("gazette {run}"),
            path,
            env!("CARGO_BIN_EXE_gazette"),
            &full,
        );
        articles += new;
        let files = count_markdown(&path.join("archive"));
        assert_eq!(files, articles, "gazette {run}: Markdown files");
        if run == "cold" && listing.is_none() {
            *listing = Some(archive_floor::listing(&path.join("archive")));
        }
        let atom = atom_entries(&path.join("public/atom.xml"));
        assert_eq!(
            atom,
            ATOM_ENTRIES.min(articles),
            "gazette {run}: merged feed entries"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        print_run(
            repeat,
            Tool::Gazette,
            run,
            m,
            stdout.lines().last().unwrap_or_default(),
        );
        measured.push(m);
    }
    (measured.try_into().expect("three runs"), dir)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{s:.3} s")
    } else {
        format!("{s:.2} s")
    }
}

/// Gazette's time over another tool's, said the way round that reads.
fn faster_slower(gazette: f64, other: f64) -> String {
    if gazette <= other {
        format!("{:.1}× faster", other / gazette)
    } else {
        format!("{:.1}× slower", gazette / other)
    }
}

fn main() {
    if archive_floor::run_if_asked() {
        return;
    }
    assert!(
        Path::new(TIME).exists(),
        "{TIME} is missing: this bench measures each run's peak memory with GNU time (bash scripts/bench-deps.sh, or apt-get install time)"
    );
    let sources = env_usize("GAZETTE_BENCH_SOURCES", 1000).max(1);
    let entries = env_usize("GAZETTE_BENCH_ENTRIES", 50).max(1);
    let repeats = env_usize("GAZETTE_BENCH_REPEATS", 3).max(1);

    // Only some tools, for a look at one of them: the table says "not run" for the others.
    let wanted: Vec<String> = std::env::var("GAZETTE_BENCH_TOOLS")
        .unwrap_or_else(|_| "floor,sfeed,gazette".to_owned())
        .split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    for name in &wanted {
        assert!(
            ["floor", "sfeed", "gazette"].contains(&name.as_str()),
            "GAZETTE_BENCH_TOOLS: {name:?} is none of floor, sfeed, gazette"
        );
    }
    let wanted = |tool: Tool| wanted.iter().any(|w| w == tool.name());
    let have_curl = on_path("curl");
    let have_sfeed = have_curl
        && ["sfeed_update", "sfeed", "sfeed_atom"]
            .iter()
            .all(|p| on_path(p));
    let tools: Vec<Tool> = [
        (Tool::Floor, have_curl),
        (Tool::Sfeed, have_sfeed),
        (Tool::Gazette, true),
    ]
    .into_iter()
    .filter(|&(tool, installed)| installed && wanted(tool))
    .map(|(tool, _)| tool)
    .collect();
    // What a column says when its tool did not run.
    let missing = |tool: Tool| {
        if wanted(tool) { "absent" } else { "not run" }
    };

    let mut feeds = HashMap::new();
    let mut bytes = 0;
    for s in 0..sources {
        let feed = Feed::new(s, entries, 0, entries);
        bytes += feed.body.len();
        feeds.insert(format!("s{s}.xml"), feed);
    }
    let feeds: Feeds = Arc::new(RwLock::new(feeds));

    let runtime = tokio::runtime::Runtime::new().expect("Tokio runtime");
    let base = runtime.block_on(start_server(&feeds));
    println!(
        "gazette compare bench: {sources} sources x {entries} entries = {} entries, {:.1} MB of feeds over HTTP on 127.0.0.1; \
         incremental: {} sources with a new entry; {JOBS} requests in flight; median of {repeats}",
        sources * entries,
        bytes as f64 / 1e6,
        sources.div_ceil(CHANGED_EVERY),
    );
    println!(
        "curl: {}",
        if have_curl {
            first_line("curl", &["--version"])
        } else {
            "absent".to_owned()
        }
    );
    let sfeed_version = first_line("dpkg-query", &["-W", "-f", "${Version}\n", "sfeed"]);
    println!(
        "sfeed: {}",
        if have_sfeed {
            format!("sfeed_update {sfeed_version}")
        } else {
            "absent (install: bash scripts/bench-deps.sh, or apt-get install sfeed)".to_owned()
        }
    );
    println!("gazette: {}", env!("CARGO_BIN_EXE_gazette"));
    common::warn_after_recent_removal();

    let bench = Bench {
        feeds,
        base,
        sources,
        entries,
    };
    let mut results: HashMap<Tool, Vec<[Measured; 3]>> = HashMap::new();
    // Every tool's folder stays until all runs are done: removing tens of thousands of files
    // between runs slows the next tool down (on ext4 with online discard, the freed blocks are
    // trimmed at the following journal commits, which a tool that flushes its files waits for).
    let mut folders = Vec::new();
    let mut listing = None;
    // Interleaved: a burst of load from elsewhere lands on one repetition of every tool rather
    // than on every repetition of one. The server runs on the runtime's threads meanwhile.
    for repeat in 0..repeats {
        for &tool in &tools {
            bench.set_changed(0);
            let (measured, folder) = match tool {
                Tool::Floor => floor(&bench, repeat),
                Tool::Sfeed => sfeed(&bench, repeat),
                Tool::Gazette => gazette(&bench, repeat, &mut listing),
            };
            folders.push(folder);
            results.entry(tool).or_default().push(measured);
        }
    }
    // After every tool, while their folders stay: no removal slows it down.
    let floor_runs = listing
        .as_ref()
        .map(|listing| archive_floor_runs(listing, repeats, &mut folders));

    // Medians of each tool and run: wall time, CPU time, peak RSS, each on its own.
    let medians = |tool: Tool, run: usize| {
        results.get(&tool).map(|reps| {
            let of = |f: fn(&Measured) -> f64| median(reps.iter().map(|r| f(&r[run])).collect());
            Measured {
                seconds: of(|m| m.seconds),
                cpu_seconds: of(|m| m.cpu_seconds),
                peak_mib: of(|m| m.peak_mib),
            }
        })
    };
    let header = |what: &str| -> Vec<String> {
        [
            "run",
            "download floor",
            "sfeed",
            "Gazette",
            "Gazette / sfeed",
            "Gazette / floor",
        ]
        .map(|h| {
            if h == "run" {
                format!("run ({what})")
            } else {
                h.to_owned()
            }
        })
        .to_vec()
    };
    // The table asked for (wall time and peak memory), then the same with CPU time, which on a
    // shared machine is steadier and shows what each tool costs rather than how long it waited.
    for (what, time, with_memory) in [
        (
            "wall",
            (|m: Measured| m.seconds) as fn(Measured) -> f64,
            true,
        ),
        ("CPU", |m: Measured| m.cpu_seconds, false),
    ] {
        let cell = |tool: Tool, m: Option<Measured>| {
            m.map_or_else(
                || missing(tool).to_owned(),
                |m| {
                    if with_memory {
                        format!("{}, {:.1} MiB", seconds(time(m)), m.peak_mib)
                    } else {
                        // GNU time's resolution.
                        format!("{:.2} s", time(m))
                    }
                },
            )
        };
        if with_memory {
            println!(
                "\n{sources} sources x {entries} entries, {JOBS} requests in flight; each cell: median wall time and median peak RSS \
                 (GNU time %M: of the largest single process for sfeed) of {repeats} runs"
            );
        } else {
            println!(
                "\nthe same runs' CPU time (user + system, GNU time %U + %S: the whole process tree for sfeed), median of {repeats}"
            );
        }
        let mut rows = Vec::new();
        for (i, run) in RUNS.iter().enumerate() {
            let (f, s, g) = (
                medians(Tool::Floor, i),
                medians(Tool::Sfeed, i),
                medians(Tool::Gazette, i),
            );
            let gazette = g.map(time);
            rows.push(vec![
                (*run).to_owned(),
                cell(Tool::Floor, f),
                cell(Tool::Sfeed, s),
                cell(Tool::Gazette, g),
                s.zip(gazette)
                    .map_or_else(|| "-".to_owned(), |(s, g)| faster_slower(g, time(s))),
                f.zip(gazette).map_or_else(
                    || "-".to_owned(),
                    // GNU time counts CPU in hundredths: below that a ratio means nothing.
                    |(f, g)| {
                        if time(f) < 0.01 {
                            "-".to_owned()
                        } else {
                            format!("{:.1}×", g / time(f))
                        }
                    },
                ),
            ]);
        }
        print_table(&header(what), &rows, &[false, true, true, true, true, true]);
    }
    if let (Some(listing), Some(runs)) = (&listing, floor_runs) {
        let floor = Measured {
            seconds: median(runs.iter().map(|m| m.seconds).collect()),
            cpu_seconds: median(runs.iter().map(|m| m.cpu_seconds).collect()),
            peak_mib: median(runs.iter().map(|m| m.peak_mib).collect()),
        };
        let over = |tool: Tool, whose: &str| {
            medians(tool, 0).map_or_else(
                || format!("{whose}: {}", missing(tool)),
                |m| {
                    format!(
                        "{whose}: {:.1}× the wall time, {:.1}× the CPU time",
                        m.seconds / floor.seconds,
                        m.cpu_seconds / floor.cpu_seconds
                    )
                },
            )
        };
        println!(
            "\narchive floor (cold): the {} files and {} folders of Gazette's first cold run made again in an empty folder, \
             each staged and put in place as Gazette does, a thread per core, one flush, nothing else: {} wall, {:.2} s CPU, \
             median of {repeats}. Against it, {}; {}",
            listing.files,
            listing.folders,
            seconds(floor.seconds),
            floor.cpu_seconds,
            over(Tool::Gazette, "Gazette's cold run"),
            over(Tool::Sfeed, "sfeed's"),
        );
    }
    if !have_sfeed && wanted(Tool::Sfeed) {
        println!(
            "\nsfeed: absent; install it with `bash scripts/bench-deps.sh` (or `apt-get install sfeed`)"
        );
    }
    common::remove_folders(folders);
    // The server's tasks end with the runtime; nothing is left to wait for.
    drop(runtime);
}
