//! Split roles benchmark: the cold and warm runs of the compare bench's feeds, by one process on
//! SQLite, by one process on PostgreSQL, and by a publisher with 1 and with 3 workers on
//! PostgreSQL, all on this machine.
//!
//! ```text
//! cargo bench --bench roles                        # 1000 sources x 50 entries, 3 runs of each
//! GAZETTE_BENCH_SOURCES=200 cargo bench --bench roles
//! ```
//!
//! Environment: `GAZETTE_BENCH_SOURCES` (default 1000), `GAZETTE_BENCH_ENTRIES` (default 50),
//! `GAZETTE_BENCH_REPEATS` (default 3), `GAZETTE_BENCH_SETUPS` (default `sqlite,postgres,1,3`:
//! one process on each database, a publisher with 1 and with 3 workers). PostgreSQL: the server `GAZETTE_TEST_POSTGRES_URL`
//! names, else a private one the bench starts, as the tests do; a database of its own per run.
//!
//! The feeds are served on 8 ports of 127.0.0.1, a source on each in turn: workers take a host
//! (and port) at a time, so that one host's `per_host` holds across them, and feeds on a
//! single port would leave all but one worker idle. Every setup has the same limits:
//! `[fetch] concurrency = 8`, `per_host = 8`, for each process.
//!
//! - `cold`: empty state; every source answers 200 with its whole feed. One process: `gazette
//!   fetch`, timed whole. Split roles: from the workers' start (the publisher already holds the
//!   archive lock and has synced the sources) until every source is fetched and every record's
//!   file written.
//! - `warm`: every source asked again, answering 304. One process: `gazette fetch --force`.
//!   Split roles: every source made due at once in state; until each was fetched again.
//!
//! Peak RSS: one process's own (GNU time); split roles, each process's (`VmHWM`), and the sum
//! over the processes. CPU: user + system of every process.

mod common;
#[path = "../tests/common/postgres.rs"]
#[allow(dead_code, reason = "the tests' helper; the bench uses part of it")]
mod postgres;

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use common::{Feed, Feeds, env_usize, print_table, start_server, timed};

const PORTS: usize = 8;
const JOBS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    Sqlite,
    Postgres,
    Workers(usize),
    /// Workers with no publisher (the sources synced by `gazette sync`): what writing the
    /// records alone takes, without the files.
    RecordsOnly(usize),
}

impl Setup {
    fn name(self) -> String {
        match self {
            Setup::Sqlite => "SQLite, one process".to_owned(),
            Setup::Postgres => "PostgreSQL, one process".to_owned(),
            Setup::Workers(1) => "PostgreSQL, publisher + 1 worker".to_owned(),
            Setup::Workers(n) => format!("PostgreSQL, publisher + {n} workers"),
            Setup::RecordsOnly(1) => "PostgreSQL, 1 worker, no publisher (records only)".to_owned(),
            Setup::RecordsOnly(n) => {
                format!("PostgreSQL, {n} workers, no publisher (records only)")
            }
        }
    }
}

/// One run's wall time, CPU time (all processes) and peak RSS (all processes, summed).
#[derive(Clone, Copy, Debug)]
struct Run {
    seconds: f64,
    cpu_seconds: f64,
    peak_mib: f64,
}

struct Bench {
    bases: Vec<String>,
    sources: usize,
    entries: usize,
}

impl Bench {
    fn config(&self, state_url: &str) -> String {
        let mut config = format!(
            "[archive]\ndir = \"archive\"\n[feed]\npath = \"public/atom.xml\"\nmax_entries = 100\n\
             [state]\nurl = \"{state_url}\"\nlease = \"60s\"\npoll = \"100ms\"\n\
             [fetch]\nconcurrency = {JOBS}\nper_host = {JOBS}\n"
        );
        for s in 0..self.sources {
            let _ = write!(
                config,
                "[[sources]]\nid = \"s{s}\"\nurl = \"{}/s{s}.xml\"\n",
                self.bases[s % PORTS]
            );
        }
        config
    }
}

fn main() {
    let sources = env_usize("GAZETTE_BENCH_SOURCES", 1000);
    let entries = env_usize("GAZETTE_BENCH_ENTRIES", 50);
    let repeats = env_usize("GAZETTE_BENCH_REPEATS", 3);
    common::warn_after_recent_removal();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let feeds: Feeds = Arc::new(RwLock::new(
        (0..sources)
            .map(|s| (format!("s{s}.xml"), Feed::new(s, entries, 0, usize::MAX)))
            .collect(),
    ));
    let bases: Vec<String> = (0..PORTS)
        .map(|_| runtime.block_on(start_server(&feeds)))
        .collect();
    let bench = Bench {
        bases,
        sources,
        entries,
    };
    let setups: Vec<Setup> = std::env::var("GAZETTE_BENCH_SETUPS")
        .unwrap_or_else(|_| "sqlite,postgres,1,3".to_owned())
        .split(',')
        .map(|s| match s.trim() {
            "sqlite" => Setup::Sqlite,
            "postgres" => Setup::Postgres,
            n if n.ends_with('r') => {
                Setup::RecordsOnly(n.trim_end_matches('r').parse().unwrap_or_else(|_| {
                    panic!("GAZETTE_BENCH_SETUPS: {n:?} is not a number of workers and `r`")
                }))
            }
            n => Setup::Workers(n.parse().unwrap_or_else(|_| {
                panic!("GAZETTE_BENCH_SETUPS: {n:?} is not sqlite, postgres or a number of workers")
            })),
        })
        .collect();
    let mut results: Vec<Vec<[Run; 2]>> = vec![Vec::new(); setups.len()];
    // Interleaved, so that a burst of load elsewhere on the machine spreads over all setups.
    for repeat in 0..repeats {
        for (i, setup) in setups.iter().enumerate() {
            let runs = match setup {
                Setup::Sqlite => one_process(&bench, "sqlite://state/gazette.db"),
                Setup::Postgres => one_process(&bench, &postgres::fresh_database()),
                Setup::Workers(n) => split(&bench, *n, true),
                Setup::RecordsOnly(n) => split(&bench, *n, false),
            };
            println!(
                "run {}: {}: cold {:.2} s, warm {:.3} s",
                repeat + 1,
                setup.name(),
                runs[0].seconds,
                runs[1].seconds
            );
            results[i].push(runs);
        }
    }
    print_results(&bench, &setups, &results);
}

fn one_process(bench: &Bench, state_url: &str) -> [Run; 2] {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("gazette.toml"), bench.config(state_url)).expect("config");
    let gazette = env!("CARGO_BIN_EXE_gazette");
    let mut runs = Vec::new();
    for args in [
        &["--config", "gazette.toml", "fetch"][..],
        &["--config", "gazette.toml", "fetch", "--force"][..],
    ] {
        let (m, _) = timed("gazette", dir.path(), gazette, args);
        runs.push(Run {
            seconds: m.seconds,
            cpu_seconds: m.cpu_seconds,
            peak_mib: m.peak_mib,
        });
    }
    assert_eq!(
        markdown_files(&dir.path().join("archive")),
        bench.sources * bench.entries
    );
    common::remove_folders(vec![dir]);
    [runs[0], runs[1]]
}

/// A `gazette run` of some role, waited on until it prints `ready`.
fn start(dir: &Path, role: &str, ready: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gazette"))
        .args([
            "--config",
            "gazette.toml",
            "run",
            "--role",
            role,
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gazette run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    loop {
        let line = lines
            .next()
            .expect("the process said it was ready")
            .expect("read");
        if line.starts_with(ready) {
            break;
        }
    }
    // The rest of its output is not read; a thread drains it so that it never blocks.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// Polls the state until `query` answers `wanted`.
fn until(url: &str, query: &str, wanted: &str) {
    let started = Instant::now();
    loop {
        if postgres::psql(url, query) == wanted {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "{query} never became {wanted}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn split(bench: &Bench, workers: usize, with_publisher: bool) -> [Run; 2] {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = postgres::fresh_database();
    std::fs::write(dir.path().join("gazette.toml"), bench.config(&url)).expect("config");
    let mut publisher = if with_publisher {
        start(dir.path(), "publisher", "publishing")
    } else {
        let synced = Command::new(env!("CARGO_BIN_EXE_gazette"))
            .args(["--config", "gazette.toml", "sync"])
            .current_dir(dir.path())
            .status()
            .expect("gazette sync");
        assert!(synced.success());
        // Stands in for the publisher in the sums below: a process that does nothing.
        Command::new("sleep").arg("3600").spawn().expect("sleep")
    };
    let all = bench.sources.to_string();
    // The publisher syncs the sources once it holds the lock.
    until(
        &url,
        "SELECT COUNT(*) FROM sources WHERE config IS NOT NULL",
        &all,
    );
    let before = [cpu_seconds(&publisher), 0.0];
    let started = Instant::now();
    let mut children: Vec<Child> = (0..workers)
        .map(|_| start(dir.path(), "worker", "worker "))
        .collect();
    until(
        &url,
        "SELECT COUNT(*) FROM sources WHERE last_status = 'ok'",
        &all,
    );
    let fetched = started.elapsed().as_secs_f64();
    if with_publisher {
        until(&url, "SELECT COUNT(*) FROM render_queue", "0");
    }
    let cold_seconds = started.elapsed().as_secs_f64();
    println!(
        "  every source fetched and recorded after {fetched:.2} s, every file written after {cold_seconds:.2} s"
    );
    let cold_cpu = total_cpu(&publisher, &children) - before[0];
    let cold_peak = total_peak(&publisher, &children);
    assert_eq!(
        postgres::psql(&url, "SELECT COUNT(*) FROM articles"),
        (bench.sources * bench.entries).to_string()
    );

    // Warm: every source due again; each answers 304.
    let cpu_before = total_cpu(&publisher, &children);
    let stamp = postgres::psql(&url, "SELECT MAX(last_fetch_at) FROM sources");
    let started = Instant::now();
    postgres::psql(&url, "UPDATE sources SET next_due_at = 0");
    until(
        &url,
        &format!("SELECT COUNT(*) FROM sources WHERE last_fetch_at > {stamp}"),
        &all,
    );
    until(
        &url,
        "SELECT COUNT(*) FROM sources WHERE lease_owner IS NOT NULL",
        "0",
    );
    let warm_seconds = started.elapsed().as_secs_f64();
    let warm_cpu = total_cpu(&publisher, &children) - cpu_before;
    let warm_peak = total_peak(&publisher, &children);
    for child in children.iter_mut().chain(std::iter::once(&mut publisher)) {
        let _ = child.kill();
        let _ = child.wait();
    }
    if with_publisher {
        assert_eq!(
            markdown_files(&dir.path().join("archive")),
            bench.sources * bench.entries
        );
    }
    common::remove_folders(vec![dir]);
    [
        Run {
            seconds: cold_seconds,
            cpu_seconds: cold_cpu,
            peak_mib: cold_peak,
        },
        Run {
            seconds: warm_seconds,
            cpu_seconds: warm_cpu,
            peak_mib: warm_peak,
        },
    ]
}

/// User + system CPU seconds a running process has used (`/proc/PID/stat`, in clock ticks).
fn cpu_seconds(child: &Child) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf with a valid name has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// The peak RSS a running process has reached (`VmHWM`), in MiB.
fn peak_mib(child: &Child) -> f64 {
    std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn total_cpu(publisher: &Child, workers: &[Child]) -> f64 {
    cpu_seconds(publisher) + workers.iter().map(cpu_seconds).sum::<f64>()
}

fn total_peak(publisher: &Child, workers: &[Child]) -> f64 {
    peak_mib(publisher) + workers.iter().map(peak_mib).sum::<f64>()
}

fn markdown_files(dir: &Path) -> usize {
    let mut count = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                count += 1;
            }
        }
    }
    count
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

fn print_results(bench: &Bench, setups: &[Setup], results: &[Vec<[Run; 2]>]) {
    println!(
        "\n{} sources x {} entries, medians of {} runs; ratios against {}\n",
        bench.sources,
        bench.entries,
        results[0].len(),
        setups[0].name()
    );
    // Ratios are against the first setup (SQLite, one process, unless chosen otherwise).
    let med = |i: usize, run: usize, f: fn(&Run) -> f64| {
        median(results[i].iter().map(|r| f(&r[run])).collect())
    };
    let header: Vec<String> = [
        "setup",
        "cold",
        "× first",
        "cold CPU",
        "cold peak RSS",
        "warm",
        "× first",
        "warm CPU",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let rows: Vec<Vec<String>> = setups
        .iter()
        .enumerate()
        .map(|(i, setup)| {
            let cold = med(i, 0, |r| r.seconds);
            let warm = med(i, 1, |r| r.seconds);
            vec![
                setup.name(),
                format!("{cold:.2} s"),
                format!("{:.2}", cold / med(0, 0, |r| r.seconds)),
                format!("{:.2} s", med(i, 0, |r| r.cpu_seconds)),
                format!("{:.0} MiB", med(i, 0, |r| r.peak_mib)),
                format!("{warm:.3} s"),
                format!("{:.2}", warm / med(0, 1, |r| r.seconds)),
                format!("{:.2} s", med(i, 1, |r| r.cpu_seconds)),
            ]
        })
        .collect();
    print_table(
        &header,
        &rows,
        &[false, true, true, true, true, true, true, true],
    );
}
