//! State that cannot be written: a state database on a tmpfs too small for it. Runs as root,
//! which can mount one (CI does); elsewhere it says why it did not run, and under `CI=true` it
//! fails instead.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::routing::get;
use common::daemon::InProcess;
use common::{gazette, source, stderr, stdout, write_config};

const SOURCES: usize = 4;
const ENTRIES: usize = 40;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` when this process cannot mount (not root): the caller returns, having said so.
    fn mount(at: &Path, size: &str) -> Option<Self> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root: this test must mount a tmpfs"
            );
            eprintln!("state_faults: not run: mounting a tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(at).expect("mount point");
        mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], at);
        Some(Self(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        mount(&["-o", &format!("remount,size={size}")], &self.0);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount(args: &[&str], at: &Path) {
    let status = Command::new("mount")
        .args(args)
        .arg(at)
        .status()
        .expect("run mount");
    assert!(status.success(), "mount {args:?} {}", at.display());
}

/// Requests per feed name.
type Hits = Arc<Mutex<HashMap<String, usize>>>;

fn feed(name: &str) -> String {
    let paragraph = "The harbour authority published its annual figures, and the council \
                     discussed them at length before the vote. "
        .repeat(20);
    let items: String = (0..ENTRIES)
        .map(|n| {
            format!(
                "<item><guid>{name}-{n}</guid><title>{name} story {n}</title>\
                 <link>http://127.0.0.1/{name}/{n}</link>\
                 <pubDate>Mon, 13 May 2024 09:{n:02}:00 GMT</pubDate>\
                 <description>&lt;p&gt;{paragraph}{n}&lt;/p&gt;</description></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{name}</title>\
         <link>http://127.0.0.1/</link><description>{name}</description>{items}</channel></rss>"
    )
}

async fn serve(hits: Hits) -> String {
    let app = Router::new()
        .route(
            "/feeds/{name}",
            get(
                |State(hits): State<Hits>, UrlPath(name): UrlPath<String>| async move {
                    *hits
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(name.clone())
                        .or_default() += 1;
                    feed(&name)
                },
            ),
        )
        .with_state(hits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("feed server") });
    base
}

fn counts(hits: &Hits) -> HashMap<String, usize> {
    hits.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn archived(dir: &Path) -> usize {
    common::files_with_mtimes(&dir.join("archive")).len()
}

#[tokio::test]
async fn a_full_state_disk_fails_cleanly_and_the_daemon_recovers_when_it_has_room() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let hits = Hits::default();
    let base = serve(hits.clone()).await;
    let sources: String = (0..SOURCES)
        .map(|n| {
            source(
                &format!("s{n}"),
                &format!("{base}/feeds/s{n}"),
                "interval = \"10s\"",
            )
        })
        .collect();
    write_config(dir, &format!("[fetch]\nhonor_ttl = false\n{sources}"));
    // Room for the empty schema, not for the articles: the schema is made on the usual disk,
    // then moved onto a tmpfs of its size and a little more, whatever the migrations add over
    // time: SQLite's shared-memory file (32 KiB) and six pages of log, enough to open the state
    // and record some failures, not enough for one source's articles (12 to 40 KiB worked).
    let sync = gazette(dir, &["sync"]).await;
    assert!(sync.status.success(), "{}", stderr(&sync));
    // All of it in the database file, none left in its log.
    let pool = common::state_pool(dir).await;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .expect("checkpoint");
    pool.close().await;
    let schema = std::fs::read(dir.join("state/gazette.db")).expect("the empty state");
    std::fs::remove_dir_all(dir.join("state")).expect("move the state aside");
    let room = schema.len() / 1024 + 32 + 24;
    let Some(state) = Tmpfs::mount(&dir.join("state"), &format!("{room}k")) else {
        return;
    };
    std::fs::write(dir.join("state/gazette.db"), &schema).expect("the state on the tmpfs");

    // One-shot: every source fails with the cause, and nothing about transaction depths.
    let run = gazette(dir, &["fetch"]).await;
    let (out, log) = (stdout(&run), stderr(&run));
    // 3: sources failed; 1: the merged feed's record found no room either, which depends on
    // how many failures were recorded before the disk filled.
    assert!(
        matches!(run.status.code(), Some(1 | 3)),
        "{:?}: {out}{log}",
        run.status.code()
    );
    for n in 0..SOURCES {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("s{n}: ")))
            .unwrap_or_else(|| panic!("no line for s{n}: {out}"));
        assert!(line.contains("disk is full"), "{line}");
    }
    assert!(
        !format!("{out}{log}").contains("transaction depth"),
        "{out}{log}"
    );

    // The daemon, on the same full disk, on a clock the test moves.
    let mut daemon = InProcess::start(dir).await;
    // (A source whose failure the one-shot run did record is not due yet.)
    let (fetched, failed, _) = daemon.cycle().await;
    assert!(
        fetched > 0 && failed == fetched,
        "{fetched} fetched, {failed} failed"
    );
    let failed_at = daemon.clock.now();
    let after_failing = counts(&hits);
    // While state cannot record the failures, their back-off (10 s, less a tenth of jitter)
    // holds all the same: wake-ups before then fetch nothing.
    let mut wake = daemon.waiting().await;
    while wake < failed_at + chrono::Duration::seconds(9) {
        advance_to(&daemon, wake);
        let (fetched, _, _) = daemon.cycle().await;
        assert_eq!(
            counts(&hits),
            after_failing,
            "fetched within the back-off at {wake}"
        );
        assert_eq!(fetched, 0, "a source not due counted as fetched at {wake}");
        wake = daemon.waiting().await;
    }

    // Room again: no restart, and each source's first fetch once it is due archives all of
    // its entries (sources come due at different wake-ups, jitter apart).
    state.resize("64m");
    advance_to(&daemon, wake);
    while archived(dir) < SOURCES * ENTRIES {
        daemon.cycle().await;
        if archived(dir) < SOURCES * ENTRIES {
            // Every source is due again by then, whatever its jitter.
            assert!(
                daemon.clock.now() < failed_at + chrono::Duration::seconds(60),
                "{} of {} archived a minute later",
                archived(dir),
                SOURCES * ENTRIES
            );
            daemon.skip_to_next_wake().await;
        }
    }
    let fetched_once_more: HashMap<String, usize> = after_failing
        .iter()
        .map(|(name, n)| (name.clone(), n + 1))
        .collect();
    assert_eq!(counts(&hits), fetched_once_more);
    assert_eq!(archived(dir), SOURCES * ENTRIES, "every entry once");
    let health = common::daemon::client()
        .get(daemon.url("/healthz"))
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(health.status().as_u16(), 200);
    daemon.stop().await.expect("the daemon stops cleanly");
}

/// Moves the daemon's clock to `when`.
fn advance_to(daemon: &InProcess, when: chrono::DateTime<chrono::Utc>) {
    let now = daemon.clock.now();
    daemon
        .clock
        .advance((when - now).to_std().unwrap_or_default());
}

/// Runs the binary and returns (exit code, stderr); a daemon that does not stop within 30 s
/// fails the test.
async fn refused(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let run = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        common::gazette(dir, args),
    )
    .await
    .unwrap_or_else(|_| panic!("gazette {args:?} did not stop on a damaged state"));
    (run.status.code(), stderr(&run))
}

#[tokio::test]
async fn each_kind_of_damaged_state_is_refused_with_the_way_out() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let served = dir.join("served");
    common::copy_demo_feeds(&served);
    let server = common::FeedServer::start(&served).await;
    write_config(
        dir,
        &source(
            "ft",
            &server.url("/feeds/ft-world.atom"),
            "language = \"en\"",
        ),
    );
    let fetch = gazette(dir, &["fetch"]).await;
    assert!(fetch.status.success(), "{}", stderr(&fetch));
    let db = dir.join("state/gazette.db");
    let whole = std::fs::read(&db).expect("the state database");
    assert!(whole.len() >= 8 * 4096, "{} bytes", whole.len());

    let mut random_page = whole.clone();
    let middle = (whole.len() / 4096 / 2) * 4096;
    for byte in &mut random_page[middle..middle + 4096] {
        *byte = fastrand::u8(..);
    }
    let damages: [(&str, Vec<u8>); 4] = [
        ("truncated", whole[..whole.len() / 2 + 100].to_vec()),
        ("random bytes on a page", random_page),
        ("zero bytes", Vec::new()),
        ("a foreign file", b"date,title\n2024-05-13,hello\n".to_vec()),
    ];
    for (kind, bytes) in damages {
        for sidecar in ["gazette.db-wal", "gazette.db-shm"] {
            let _ = std::fs::remove_file(dir.join("state").join(sidecar));
        }
        std::fs::write(&db, &bytes).expect("damage the state");
        let mut commands: Vec<&[&str]> = vec![&["check"], &["verify"]];
        if kind != "random bytes on a page" {
            // The cheap check at every open sees these; page damage needs SQLite's checks.
            commands.extend([&["fetch"][..], &["status"][..]]);
        }
        commands.push(&["run", "--listen", "127.0.0.1:0"]);
        for args in commands {
            let (code, log) = refused(dir, args).await;
            assert!(
                code.is_some_and(|c| c != 0),
                "{kind}: gazette {args:?} exited {code:?}: {log}"
            );
            assert_eq!(
                log.matches("gazette rebuild").count(),
                1,
                "{kind}: gazette {args:?} said: {log}"
            );
        }
        assert!(
            std::fs::read(&db).expect("still there") == bytes,
            "{kind}: the damaged file was changed"
        );
    }
}

#[tokio::test]
async fn a_backup_is_taken_while_the_daemon_runs_and_restores_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let served = dir.join("served");
    common::copy_demo_feeds(&served);
    let server = common::FeedServer::start(&served).await;
    let sources = [
        source(
            "ft",
            &server.url("/feeds/ft-world.atom"),
            "language = \"en\"",
        ),
        source("tech", &server.url("/feeds/tech-rss2.xml"), ""),
    ]
    .concat();
    write_config(dir, &sources);
    let fetch = gazette(dir, &["fetch"]).await;
    assert!(fetch.status.success(), "{}", stderr(&fetch));
    let files = archived(dir);
    assert!(files > 0);

    // The daemon holds the writer lock; a backup needs none.
    let daemon = common::daemon::Daemon::start(dir).await;
    let copy = dir.join("backup.db");
    let backup = gazette(dir, &["backup", copy.to_str().expect("utf-8")]).await;
    assert!(backup.status.success(), "{}", stderr(&backup));
    assert!(
        stdout(&backup).contains("written and checked"),
        "{}",
        stdout(&backup)
    );
    let again = gazette(dir, &["backup", copy.to_str().expect("utf-8")]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("never written over"),
        "{}",
        stderr(&again)
    );
    drop(daemon);

    let url = format!("sqlite://{}?mode=ro", copy.to_str().expect("utf-8"));
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("open the copy");
    let articles: i64 = sqlx::query_scalar("SELECT count(*) FROM articles")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(articles, i64::try_from(files).expect("small"));
    pool.close().await;

    // Restored in place of a lost state, it agrees with the archive.
    let state = dir.join("state");
    std::fs::remove_dir_all(&state).expect("lose the state");
    std::fs::create_dir_all(&state).expect("state folder");
    std::fs::copy(&copy, state.join("gazette.db")).expect("restore");
    let verify = gazette(dir, &["verify"]).await;
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    let check = gazette(dir, &["check"]).await;
    assert!(
        stdout(&check).contains("ok (quick_check)"),
        "{}",
        stdout(&check)
    );
}
