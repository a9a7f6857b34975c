//! Scale benchmark: the release binary against feeds served over HTTP on 127.0.0.1, timed and
//! measured for peak memory, one run at a time. On an archive of a given size (seeded first
//! through the same HTTP feeds, many entries per source, when the size is not 0) it runs:
//!
//! - `seed`: one fetch of the seed feeds, which archives the articles the measured runs start from;
//! - `cold`: N sources x M new entries each, fetched and archived;
//! - `warm`: again with nothing changed, forced so that every source is asked and answers 304 to
//!   the conditional request;
//! - `idle`: as cron would, when no source is due yet;
//! - `build`: `gazette build` with `public/atom.xml` removed first, so the merged feed is
//!   rendered from the state database and written;
//! - `rebuild`: `gazette build` again, which renders the same feed and finds it unchanged.
//!
//! Peak memory is each run's own maximum resident set size as GNU time reports it
//! (`/usr/bin/time -f %M`, needed: `apt-get install time`). getrusage(RUSAGE_CHILDREN) would not
//! do: a child counts the bench process's resident feeds until it execs the binary.
//!
//! `cargo bench --bench scale`; sizes from the environment:
//!
//! - `GAZETTE_BENCH_SOURCES` (default 1000): sources, each with its own feed;
//! - `GAZETTE_BENCH_ENTRIES` (default 50): new entries per source in the cold run;
//! - `GAZETTE_BENCH_PRESEED` (default 0): articles archived before the measured runs, rounded up
//!   to a whole number per source;
//! - `GAZETTE_BENCH_ARCHIVES` (a list such as `1000,200000`): runs the whole sequence once for
//!   each archive size, each in its own temporary folder, then prints per phase the peak memory
//!   and time at each size and the ratio of the largest to the smallest, to show whether memory
//!   stays flat as the archive grows ("flat" when the largest peak is within 20% of the smallest).
//!   The measured runs are the same at every size: the same sources and cold-run entries; only
//!   the archive they find differs. `cargo bench --bench scale -- --archives` does the same with
//!   the list `1000,200000`. Not together with `GAZETTE_BENCH_PRESEED`, which is one size.
//!
//! With the defaults, `--archives` seeds 1000 sources x 200 entries for the large archive.
//!
//! Gazette against sfeed and the download floor on the same feeds: `benches/compare.rs`. The
//! feeds, the server and the measured run are shared with it (`benches/common/mod.rs`).

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, RwLock};

use common::{Feed, Feeds, Measured, TIME, env_usize, print_table, start_server, timed};

/// The archive sizes `--archives` compares: a small archive and the size the project is measured at.
const DEFAULT_ARCHIVES: &str = "1000,200000";
/// Largest peak over smallest peak still called flat.
const FLAT_WITHIN: f64 = 1.2;

/// Ascending and without repeats, so that "big/small" is the last over the first.
fn parse_sizes(list: &str) -> Vec<usize> {
    let mut sizes: Vec<usize> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("archive size {s:?} in {list:?} is not a whole number"))
        })
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    assert!(!sizes.is_empty(), "no archive size in {list:?}");
    sizes
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

/// One run of the binary under GNU time; `entries` is what the run works through, for a rate.
fn run(dir: &Path, label: &str, args: &[&str], entries: Option<usize>) -> Measured {
    let mut full = vec!["--config", "gazette.toml"];
    full.extend_from_slice(args);
    let (measured, output) = timed(label, dir, env!("CARGO_BIN_EXE_gazette"), &full);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.lines().last().unwrap_or_default();
    let Measured {
        seconds,
        cpu_seconds,
        peak_mib,
    } = measured;
    let rate = entries.map_or_else(String::new, |n| {
        format!("{:.0} entries/s", n as f64 / seconds)
    });
    println!(
        "{label:<7} {seconds:>8.2} s  {cpu_seconds:>7.2} s CPU  {peak_mib:>7.1} MiB peak  {rate:>16}  ({summary})"
    );
    measured
}

/// What one archive size's sequence works with.
struct Bench {
    feeds: Feeds,
    base: String,
    sources: usize,
    entries: usize,
}

const PHASES: [&str; 6] = ["seed", "cold", "warm", "idle", "build", "rebuild"];

/// The whole sequence on a fresh archive of `archive` articles (rounded up to whole seed feeds);
/// one measurement per phase of `PHASES`, `None` for a seed that was not needed, and the folder
/// it ran in (removed by the caller once every sequence is done, since removing one slows the
/// next one's files down: see `common::remove_folders`).
fn sequence(bench: &Bench, archive: usize) -> (Vec<Option<Measured>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path();
    let sources = bench.sources;
    let per_source = archive.div_ceil(sources);
    println!(
        "\narchive of {} articles ({sources} sources x {per_source} seed entries) in {}",
        sources * per_source,
        path.display()
    );
    let mut measured = Vec::with_capacity(PHASES.len());
    if per_source > 0 {
        {
            let mut feeds = bench.feeds.write().expect("feed table lock poisoned");
            for s in 0..sources {
                feeds.insert(
                    format!("seed{s}.xml"),
                    Feed::new(s, per_source, 0, usize::MAX),
                );
            }
        }
        write_config(path, &bench.base, sources, "seed");
        measured.push(Some(run(
            path,
            "seed",
            &["fetch"],
            Some(sources * per_source),
        )));
        bench
            .feeds
            .write()
            .expect("feed table lock poisoned")
            .retain(|name, _| !name.starts_with("seed"));
    } else {
        measured.push(None);
    }
    let total = Some(sources * bench.entries);
    write_config(path, &bench.base, sources, "s");
    measured.push(Some(run(path, "cold", &["fetch"], total)));
    measured.push(Some(run(path, "warm", &["fetch", "--force"], total)));
    measured.push(Some(run(path, "idle", &["fetch"], total)));
    let atom = path.join("public/atom.xml");
    std::fs::remove_file(&atom)
        .unwrap_or_else(|e| panic!("the cold run left no {}: {e}", atom.display()));
    measured.push(Some(run(path, "build", &["build"], None)));
    measured.push(Some(run(path, "rebuild", &["build"], None)));
    search(path, sources * per_source.max(1), sources);
    (measured, dir)
}

/// Search on the archive, in-process through the store as `/search` and `gazette search` ask
/// it: a word found in one article, two words found in one, a phrase in every article (the
/// whole archive ranked), and a word in none; the median and the slowest of each kind.
fn search(dir: &Path, articles: usize, sources: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let settings =
            gazette::config::Settings::load(&dir.join("gazette.toml")).expect("the bench config");
        let store = gazette::store::Store::open(&settings.state_url)
            .await
            .expect("the state");
        // Stories are numbered per source and titled "Story I from source S": two numbers
        // find one or two articles, one number about one per source.
        let per_source = (articles / sources.max(1)).max(1);
        let kinds: [(&str, Vec<String>); 4] = [
            (
                "story and source (1-2)",
                (0..25)
                    .map(|n| {
                        format!(
                            "story {} source {}",
                            n * 37 % per_source,
                            n * 7919 % sources.max(1)
                        )
                    })
                    .collect(),
            ),
            (
                "one number (1 a source)",
                (0..25)
                    .map(|n| format!("{}", 8 + n * 13 % per_source))
                    .collect(),
            ),
            ("in every article", vec!["ordinary words".to_owned(); 9]),
            ("in none", vec!["zyzzyva".to_owned(); 9]),
        ];
        let mut all = Vec::new();
        println!("search over {} archived articles:", articles);
        for (kind, queries) in kinds {
            let mut times = Vec::with_capacity(queries.len());
            for query in &queries {
                let started = std::time::Instant::now();
                let found = store.search(query, 21, 0).await.expect("search");
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                std::hint::black_box(found);
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let worst = times.last().copied().unwrap_or_default();
            println!("  {kind:<24} median {median:>7.2} ms  slowest {worst:>7.2} ms");
            all.extend(times);
        }
        all.sort_by(f64::total_cmp);
        let median = all[all.len() / 2];
        println!(
            "  all {} queries: median {median:.2} ms ({:.2}x the 50 ms goal)",
            all.len(),
            median / 50.0
        );
        store.close().await;
    });
}

fn print_comparison(bench: &Bench, sizes: &[usize], results: &[Vec<Option<Measured>>]) {
    let archived: Vec<usize> = sizes
        .iter()
        .map(|&n| n.div_ceil(bench.sources) * bench.sources)
        .collect();
    println!(
        "\npeak RSS and wall time per phase, archives of {} articles; every measured run: {} sources, {} new entries in the cold run",
        archived
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" and "),
        bench.sources,
        bench.sources * bench.entries
    );
    let mut header = vec!["phase".to_owned()];
    header.extend(archived.iter().map(|n| format!("MiB @{n}")));
    header.extend(["MiB big/small".to_owned(), "memory".to_owned()]);
    header.extend(archived.iter().map(|n| format!("s @{n}")));
    header.push("s big/small".to_owned());
    let mut right = vec![false];
    right.extend(sizes.iter().map(|_| true));
    right.extend([true, false]);
    right.extend(sizes.iter().map(|_| true));
    right.push(true);

    let cell = |m: Option<Measured>, f: fn(Measured) -> f64, decimals: usize| {
        m.map_or_else(|| "-".to_owned(), |m| format!("{:.decimals$}", f(m)))
    };
    let ratio = |column: &[Option<Measured>], f: fn(Measured) -> f64| match (
        column.first().copied().flatten(),
        column.last().copied().flatten(),
    ) {
        (Some(small), Some(big)) => format!("{:.2}", f(big) / f(small)),
        _ => "-".to_owned(),
    };
    let mut rows = Vec::new();
    for (p, phase) in PHASES.iter().enumerate() {
        let column: Vec<Option<Measured>> = results.iter().map(|r| r[p]).collect();
        let peaks: Vec<f64> = column.iter().flatten().map(|m| m.peak_mib).collect();
        let verdict = if p == 0 {
            // Seeding is the one phase whose work grows with the archive.
            "not compared (seeds the archive)".to_owned()
        } else {
            let max = peaks.iter().copied().fold(f64::MIN, f64::max);
            let min = peaks.iter().copied().fold(f64::MAX, f64::min);
            if max <= min * FLAT_WITHIN {
                "flat (within 20%)".to_owned()
            } else {
                "NOT flat".to_owned()
            }
        };
        let mut row = vec![(*phase).to_owned()];
        row.extend(column.iter().map(|&m| cell(m, |m| m.peak_mib, 1)));
        row.push(ratio(&column, |m| m.peak_mib));
        row.push(verdict);
        row.extend(column.iter().map(|&m| cell(m, |m| m.seconds, 2)));
        row.push(ratio(&column, |m| m.seconds));
        rows.push(row);
    }
    print_table(&header, &rows, &right);
}

#[tokio::main]
async fn main() {
    assert!(
        Path::new(TIME).exists(),
        "{TIME} is missing: this bench measures each run's peak memory with GNU time (apt-get install time)"
    );
    let sources = env_usize("GAZETTE_BENCH_SOURCES", 1000).max(1);
    let entries = env_usize("GAZETTE_BENCH_ENTRIES", 50);
    let archives = match std::env::var("GAZETTE_BENCH_ARCHIVES") {
        Ok(list) => Some(parse_sizes(&list)),
        // `cargo bench` passes `--bench` too; only `--archives` matters here.
        Err(_) if std::env::args().any(|a| a == "--archives") => {
            Some(parse_sizes(DEFAULT_ARCHIVES))
        }
        Err(_) => None,
    };
    assert!(
        archives.is_none() || std::env::var_os("GAZETTE_BENCH_PRESEED").is_none(),
        "GAZETTE_BENCH_PRESEED is one archive size and GAZETTE_BENCH_ARCHIVES a list of them: set one"
    );
    let compare = archives.is_some();
    let sizes = archives.unwrap_or_else(|| vec![env_usize("GAZETTE_BENCH_PRESEED", 0)]);

    // The cold feeds start after the largest seed, so that their entries are new at every size
    // and the feeds are the same bytes for all of them.
    let offset = sizes.iter().max().copied().unwrap_or(0).div_ceil(sources);
    let mut feeds = HashMap::new();
    let mut bytes = 0;
    for s in 0..sources {
        let feed = Feed::new(s, entries, offset, usize::MAX);
        bytes += feed.body.len();
        feeds.insert(format!("s{s}.xml"), feed);
    }
    let feeds: Feeds = Arc::new(RwLock::new(feeds));
    let base = start_server(&feeds).await;

    println!(
        "gazette scale bench: {sources} sources x {entries} entries = {} entries, {:.1} MB of feeds over HTTP on 127.0.0.1",
        sources * entries,
        bytes as f64 / 1e6
    );
    common::warn_after_recent_removal();
    let bench = Bench {
        feeds,
        base,
        sources,
        entries,
    };
    // The runs block on child processes; the server keeps the runtime's threads.
    tokio::task::spawn_blocking(move || {
        let (results, folders): (Vec<_>, Vec<_>) =
            sizes.iter().map(|&n| sequence(&bench, n)).unzip();
        if compare {
            print_comparison(&bench, &sizes, &results);
        }
        common::remove_folders(folders);
    })
    .await
    .expect("bench");
}
