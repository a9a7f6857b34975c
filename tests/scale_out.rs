//! Split roles on a real PostgreSQL server: worker processes fetch and write records, a
//! publisher writes the archive from them. Killed at random moments, they still archive every
//! entry exactly once, byte for byte as one process on SQLite does, fetch each source once
//! (twice at most for a source whose worker died holding it), and pay for each LLM answer
//! once. Of two publishers, one writes the archive and the other takes over when it dies.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::header;
use axum::routing::{get, post};
use common::postgres;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const SOURCES: usize = 200;
const ENTRIES: usize = 5;
/// Sources with LLM enrichment (the first ones).
const ENRICHED: usize = 20;
/// Ports the feeds are spread over: workers take a host (and port) at a time.
const PORTS: usize = 8;
const LEASE: Duration = Duration::from_secs(4);
/// Longer than any wait here should take.
const STUCK: Duration = Duration::from_secs(120);

/// Requests per path, shared by the feed servers and the fake LLM.
type Counts = Arc<Mutex<BTreeMap<String, usize>>>;

fn count(counts: &Counts, key: String) {
    *counts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key)
        .or_default() += 1;
}

fn counts_of(counts: &Counts) -> BTreeMap<String, usize> {
    counts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn feed_body(source: usize) -> String {
    let items: String = (0..ENTRIES)
        .map(|n| {
            format!(
                "<item><title>Story {n} of feed {source}</title>\
                 <link>http://127.0.0.1/articles/{source}/{n}</link>\
                 <guid>urn:story:{source}:{n}</guid>\
                 <pubDate>{day:02} Mar 2026 {hour:02}:00:00 GMT</pubDate>\
                 <description>&lt;p&gt;Paragraph one of story {n} in feed {source}.&lt;/p&gt;\
                 &lt;p&gt;Paragraph two.&lt;/p&gt;</description></item>",
                day = 1 + source % 28,
                hour = n
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Feed {source}</title>\
         <link>http://127.0.0.1/feeds/{source}</link><description>d</description>{items}\
         </channel></rss>"
    )
}

/// Something happened that the tests wait on: a request served, a line a process printed. The
/// waits look at the state again on each, instead of at fixed intervals.
static HAPPENED: std::sync::LazyLock<watch::Sender<u64>> =
    std::sync::LazyLock::new(|| watch::channel(0).0);

fn happened() {
    HAPPENED.send_modify(|n| *n += 1);
}

/// Permits to answer: a request waits for one, so the test decides how far a run gets before
/// it kills a process (and a killed worker is sure to hold leases on unanswered sources).
type Gate = Arc<tokio::sync::Semaphore>;

/// A feed server on `PORTS` ports, counting requests, answering as `gate` lets it.
async fn start_feeds(counts: &Counts, gate: &Gate) -> Vec<SocketAddr> {
    let app =
        Router::new()
            .route(
                "/f/{name}",
                get(
                    |State((counts, gate)): State<(Counts, Gate)>,
                     UrlPath(name): UrlPath<String>| async move {
                        count(&counts, name.clone());
                        happened();
                        gate.acquire().await.expect("the gate").forget();
                        let source: usize = name
                            .trim_end_matches(".xml")
                            .parse()
                            .expect("a feed number");
                        (
                            [(header::CONTENT_TYPE, "application/rss+xml")],
                            feed_body(source),
                        )
                    },
                ),
            )
            .with_state((Arc::clone(counts), Arc::clone(gate)));
    let mut addrs = Vec::new();
    for _ in 0..PORTS {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        addrs.push(listener.local_addr().expect("addr"));
        let app = app.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.expect("feed server") });
    }
    addrs
}

/// An OpenAI-compatible server that counts each distinct request, answering every one.
async fn start_llm(counts: &Counts) -> String {
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(
                |State(counts): State<Counts>, body: axum::Json<Value>| async move {
                    count(&counts, body.0["messages"].to_string());
                    let content = json!({"sections": [
                        {"language": "zh", "title": "中文标题", "body": "中文正文。"},
                        {"language": "en", "title": "English title", "body": "English body."},
                    ]})
                    .to_string();
                    axum::Json(json!({
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
                    }))
                },
            ),
        )
        .with_state(Arc::clone(counts));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("llm server") });
    base
}

const KEY_ENV: &str = "GAZETTE_TEST_LLM_KEY";

/// A worker's own sections: the state, its limits, its LLM.
fn worker_config(state_url: &str, llm: &str) -> String {
    format!(
        "[state]\nurl = \"{state_url}\"\nlease = \"{}s\"\npoll = \"100ms\"\n\
         [fetch]\nconcurrency = 4\nper_host = 2\n\
         [enrich]\nprovider = \"openai\"\nlanguages = [\"zh\"]\nbase_url = \"{llm}\"\n\
         api_key_env = \"{KEY_ENV}\"\nrequests_per_minute = 100000\n",
        LEASE.as_secs()
    )
}

/// The whole config (the publisher's, and the single process's): archive settings of its own,
/// which the workers must follow without being told, then a worker's sections and the sources.
fn full_config(state_url: &str, feeds: &[SocketAddr], llm: &str) -> String {
    let mut rest = format!(
        "[archive]\ndir = \"../archive\"\npath_template = \"{{source}}/{{yyyy}}-{{mm}}/{{slug}}.md\"\n\
         identity_keys = true\n\
         [feed]\npath = \"../public/atom.xml\"\ntitle = \"Test\"\n\
         id = \"urn:uuid:5a0c1bde-3f4e-4c1a-9d7e-0a1b2c3d4e5f\"\nself_url = \"http://127.0.0.1/atom.xml\"\n\
         [labels]\nfr = \"Lien\"\n{}",
        worker_config(state_url, llm)
    );
    for i in 0..SOURCES {
        rest.push_str(&common::source(
            &format!("f{i:03}"),
            &format!("http://{}/f/{i}.xml", feeds[i % PORTS]),
            &format!("interval = \"1h\"\nenrich = {}", i < ENRICHED),
        ));
    }
    rest
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join("config").join(name);
    std::fs::create_dir_all(path.parent().expect("folder")).expect("config folder");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A `gazette run` process of some role, its stdout lines kept to wait on.
struct Process {
    child: Child,
    lines: watch::Receiver<Vec<String>>,
}

impl Process {
    fn start(dir: &Path, config: &Path, role: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gazette"))
            .arg("--config")
            .arg(config)
            .args(["run", "--role", role, "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env_remove("GAZETTE_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env(KEY_ENV, "sk-test")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start gazette run");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = watch::channel(Vec::new());
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                tx.send_modify(|lines| lines.push(line));
                happened();
            }
        });
        Self { child, lines }
    }

    /// Waits for a stdout line starting with `prefix`; returns it.
    async fn said(&self, prefix: &str) -> String {
        let mut lines = self.lines.clone();
        let found = tokio::time::timeout(
            STUCK,
            lines.wait_for(|lines| lines.iter().any(|l| l.starts_with(prefix))),
        )
        .await;
        match found {
            Ok(Ok(lines)) => lines
                .iter()
                .find(|l| l.starts_with(prefix))
                .cloned()
                .unwrap_or_default(),
            _ => panic!(
                "no line starting {prefix:?}; stdout:\n{}",
                self.lines.borrow().join("\n")
            ),
        }
    }

    fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL");
    }

    async fn stop(mut self) {
        let pid = i32::try_from(self.child.id().expect("running")).expect("pid");
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = tokio::time::timeout(STUCK, self.child.wait())
            .await
            .expect("stopped in time")
            .expect("wait");
        assert!(status.success(), "{status:?}");
    }
}

/// Looks at the database each time something happens (a request, a process's line: a worker
/// prints each round after its commit, the publisher each pass) until `query` answers what
/// `done` wants; returns that answer.
async fn until_answer(url: &str, query: &str, done: impl Fn(&str) -> bool) -> String {
    loop {
        // Subscribed before looking, so that nothing happening meanwhile is missed.
        let mut next = HAPPENED.subscribe();
        let answer = postgres::psql(url, query);
        if done(&answer) {
            return answer;
        }
        if tokio::time::timeout(STUCK, next.changed()).await.is_err() {
            panic!("{query} stuck at {answer:?}: nothing happened for {STUCK:?}");
        }
    }
}

/// [`until_answer`] for a query of one integer.
async fn until(url: &str, query: &str, done: impl Fn(i64) -> bool) -> i64 {
    let answer = until_answer(url, query, |a| a.parse().is_ok_and(&done)).await;
    answer.parse().expect("a number")
}

/// Every file below `dir` (temp folders included), by relative path, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    common::all_files(dir)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read");
            (path.strip_prefix(dir).expect("below").to_path_buf(), bytes)
        })
        .collect()
}

const UNRENDERED: &str = "SELECT COUNT(*) FROM render_queue";
const ARTICLES: &str = "SELECT COUNT(*) FROM articles";
const FETCHED: &str = "SELECT COUNT(*) FROM sources WHERE last_status = 'ok'";
const ENRICHED_DONE: &str = "SELECT COUNT(*) FROM enrichments WHERE status = 'done'";

#[tokio::test(flavor = "multi_thread")]
async fn killed_workers_and_publisher_lose_and_repeat_nothing() {
    let feed_counts = Counts::default();
    let llm_counts = Counts::default();
    // Open for the single run's 200 requests; the split run's are let through as the test says.
    let gate = Gate::new(tokio::sync::Semaphore::new(SOURCES));
    let feeds = start_feeds(&feed_counts, &gate).await;
    let llm = start_llm(&llm_counts).await;

    // What one process on SQLite makes of the same feeds.
    let single = tempfile::tempdir().expect("tempdir");
    write(
        single.path(),
        "gazette.toml",
        &full_config("sqlite://../state/gazette.db", &feeds, &llm),
    );
    let out = common::gazette_with_env(single.path(), &["fetch"], &[(KEY_ENV, "sk-test")]).await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let expected = tree(&single.path().join("archive"));
    assert_eq!(
        expected.len(),
        SOURCES * ENTRIES,
        "one file per entry: {:?}",
        expected.keys().take(3).collect::<Vec<_>>()
    );
    // Filed by the config's own path template, which the workers are not told of.
    assert!(
        expected
            .keys()
            .all(|p| p.components().count() == 3 && p.to_string_lossy().starts_with('f')),
        "{:?}",
        expected.keys().next()
    );
    feed_counts.lock().expect("counts").clear();
    llm_counts.lock().expect("counts").clear();

    // Split roles on PostgreSQL: a publisher, then three workers in a folder of their own,
    // with a config of their own sections only.
    let split = tempfile::tempdir().expect("tempdir");
    let url = postgres::fresh_database();
    let config = split.path().to_path_buf();
    let publisher_config = write(&config, "gazette.toml", &full_config(&url, &feeds, &llm));
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let worker_toml = write(elsewhere.path(), "worker.toml", &worker_config(&url, &llm));
    let mut publisher = Process::start(&config, &publisher_config, "publisher");
    publisher.said("publishing").await;
    let mut workers: Vec<Process> = (0..3)
        .map(|_| Process::start(elsewhere.path(), &worker_toml, "worker"))
        .collect();
    let mut ids = Vec::new();
    for worker in &workers {
        let line = worker.said("worker ").await;
        ids.push(
            line.trim_start_matches("worker ")
                .trim_end_matches(" started")
                .to_owned(),
        );
    }

    // `status` lists the processes sharing the state, with their roles.
    until(&url, "SELECT COUNT(*) FROM workers", |n| n == 4).await;
    let status = common::gazette(
        &config,
        &[
            "--config",
            publisher_config.to_str().expect("utf-8"),
            "status",
            "--json",
        ],
    )
    .await;
    assert!(status.status.success(), "{}", common::stderr(&status));
    let status: Value = serde_json::from_slice(&status.stdout).expect("JSON");
    let mut roles: Vec<&str> = status["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter_map(|w| w["role"].as_str())
        .collect();
    roles.sort_unstable();
    assert_eq!(roles, ["publisher", "worker", "worker", "worker"]);
    assert!(status["queue"]["due"].is_i64(), "{}", status["queue"]);

    // A quarter of the sources answered, the rest held back: a worker holding leases on
    // sources it is still fetching dies.
    gate.add_permits(SOURCES / 4);
    until(&url, FETCHED, |n| {
        n == i64::try_from(SOURCES / 4).expect("n")
    })
    .await;
    let holder = until_answer(
        &url,
        "SELECT lease_owner FROM sources WHERE lease_owner IS NOT NULL
         GROUP BY lease_owner ORDER BY COUNT(*) DESC LIMIT 1",
        |holder| ids.iter().any(|id| id == holder),
    )
    .await;
    let victim = ids.iter().position(|id| *id == holder).expect("a worker");
    workers[victim].kill();
    let killed_at = Instant::now();
    let _ = workers[victim].child.wait().await;
    let orphaned: Vec<String> = postgres::psql(
        &url,
        &format!("SELECT id FROM sources WHERE lease_owner = '{holder}' ORDER BY id"),
    )
    .lines()
    .map(str::to_owned)
    .collect();
    assert!(!orphaned.is_empty(), "the killed worker held no lease");
    let orphans_done = {
        let list = orphaned
            .iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let query =
            format!("SELECT COUNT(*) FROM sources WHERE last_status = 'ok' AND id IN ({list})");
        let url = url.clone();
        let wanted = i64::try_from(orphaned.len()).expect("n");
        tokio::spawn(async move {
            until(&url, &query, |n| n == wanted).await;
            killed_at.elapsed()
        })
    };

    // The publisher dies mid-way too, with files to write if it is caught behind (or once
    // another quarter is recorded), and a new one catches up. The dead worker's requests held
    // at the gate may take up to its concurrency of these permits.
    gate.add_permits(SOURCES / 4 + 4);
    until_answer(
        &url,
        &format!(
            "SELECT ({UNRENDERED}) > 0 OR ({FETCHED}) >= {}",
            SOURCES / 2
        ),
        |caught| caught == "t",
    )
    .await;
    publisher.kill();
    let _ = publisher.child.wait().await;
    let publisher = Process::start(&config, &publisher_config, "publisher");
    publisher.said("publishing").await;
    // Everything else answered: what is left, and the dead worker's sources again.
    gate.add_permits(SOURCES * 2);

    // All fetched, enriched and rendered.
    until(&url, FETCHED, |n| n == i64::try_from(SOURCES).expect("n")).await;
    let orphans_done = orphans_done.await.expect("watching the orphans");
    until(&url, ENRICHED_DONE, |n| {
        n == i64::try_from(ENRICHED * ENTRIES).expect("n")
    })
    .await;
    until(&url, UNRENDERED, |n| n == 0).await;
    let _ = workers.remove(victim);
    for worker in workers {
        worker.stop().await;
    }
    publisher.stop().await;

    // Workers wrote no file.
    let theirs = common::all_files(elsewhere.path());
    assert_eq!(theirs, vec![worker_toml.clone()], "workers wrote files");

    // Every entry once, byte for byte as one process wrote it; no temp file left.
    assert_eq!(
        postgres::psql(&url, ARTICLES),
        (SOURCES * ENTRIES).to_string()
    );
    let archived = tree(&split.path().join("archive"));
    let differing: Vec<&PathBuf> = expected
        .iter()
        .filter(|(path, bytes)| archived.get(*path) != Some(bytes))
        .map(|(path, _)| path)
        .chain(archived.keys().filter(|p| !expected.contains_key(*p)))
        .collect();
    assert!(
        differing.is_empty(),
        "{} files differ from the single run's, such as {:?}",
        differing.len(),
        differing.iter().take(5).collect::<Vec<_>>()
    );

    // Each source fetched once; one whose worker died holding it, twice at most.
    let fetched = counts_of(&feed_counts);
    eprintln!(
        "orphaned {}, fetched twice {}, orphans done after {orphans_done:?}",
        orphaned.len(),
        fetched.values().filter(|n| **n > 1).count()
    );
    assert_eq!(fetched.len(), SOURCES, "every source fetched");
    for (name, n) in &fetched {
        let id = format!(
            "f{:03}",
            name.trim_end_matches(".xml").parse::<usize>().expect("n")
        );
        let limit = if orphaned.contains(&id) { 2 } else { 1 };
        assert!(*n <= limit, "{id} fetched {n} times (limit {limit})");
    }
    // Each LLM answer paid once.
    let asked = counts_of(&llm_counts);
    assert_eq!(asked.len(), ENRICHED * ENTRIES, "one request per article");
    let repeated: HashMap<&String, &usize> = asked.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "asked twice: {repeated:?}");
    // The dead worker's sources were taken over once its leases ran out: within a lease
    // period, and the little the work itself takes.
    assert!(
        orphans_done < LEASE + LEASE / 2,
        "the killed worker's sources took {orphans_done:?} to finish"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn of_two_publishers_one_writes_and_the_other_takes_over() {
    let feed_counts = Counts::default();
    let llm_counts = Counts::default();
    let gate = Gate::new(tokio::sync::Semaphore::new(
        tokio::sync::Semaphore::MAX_PERMITS,
    ));
    let feeds = start_feeds(&feed_counts, &gate).await;
    let llm = start_llm(&llm_counts).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = postgres::fresh_database();
    let config = write(dir.path(), "gazette.toml", &full_config(&url, &feeds, &llm));

    let first = Process::start(dir.path(), &config, "publisher");
    let second = Process::start(dir.path(), &config, "publisher");
    // Whichever took the lock says so; the other stands by, naming it.
    let (mut active, standby) = tokio::select! {
        _ = first.said("publishing") => (first, second),
        _ = second.said("publishing") => (second, first),
    };
    let pid = active.child.id().expect("running");
    let line = standby.said("standby").await;
    assert!(line.contains(&format!("pid {pid}")), "{line}");
    assert!(
        !standby
            .lines
            .borrow()
            .iter()
            .any(|l| l.starts_with("publishing")),
        "both publish"
    );
    // The active one publishes: it writes the feeds.
    active.said("feeds written").await;
    assert!(
        dir.path().join("public/atom.xml").exists(),
        "no feed written"
    );

    active.kill();
    let _ = active.child.wait().await;
    let killed = Instant::now();
    standby.said("publishing").await;
    assert!(
        killed.elapsed() < LEASE,
        "the standby took {:?} to take over",
        killed.elapsed()
    );
    standby.stop().await;
}
