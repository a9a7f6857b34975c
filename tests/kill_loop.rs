//! A large fetch killed (SIGKILL) again and again at random points, then let finish: every
//! entry is archived once, no temp file is left, the state database is whole, and another
//! forced fetch changes nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{FeedServer, gazette, source, stderr, stdout, write_config};

const SOURCES: usize = 30;
const ENTRIES: usize = 40;
/// Kills at least this many fetches before letting one finish.
const KILLS: usize = 10;

fn feed(name: &str) -> String {
    let paragraph = "Councillors argued over the harbour budget until late, and the vote was \
                     put off to the next session. "
        .repeat(12);
    let items: String = (0..ENTRIES)
        .map(|n| {
            format!(
                "<item><guid>{name}-{n}</guid><title>{name} report {n}</title>\
                 <link>http://127.0.0.1/{name}/{n}</link>\
                 <pubDate>Tue, 14 May 2024 {h:02}:{m:02}:00 GMT</pubDate>\
                 <description>&lt;p&gt;{paragraph}{n}&lt;/p&gt;</description></item>",
                h = n / 60,
                m = n % 60,
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{name}</title>\
         <link>http://127.0.0.1/</link><description>{name}</description>{items}</channel></rss>"
    )
}

/// Archive files (`.md`, outside hidden folders), counted while a fetch may be writing.
fn articles(dir: &Path) -> usize {
    let archive = dir.join("archive");
    common::all_files(&archive)
        .iter()
        .filter_map(|p| p.strip_prefix(&archive).ok())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "md")
                && !p
                    .components()
                    .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
        })
        .count()
}

#[tokio::test]
async fn a_fetch_killed_at_random_points_loses_and_repeats_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let served = dir.join("served");
    std::fs::create_dir_all(&served).expect("served");
    for n in 0..SOURCES {
        std::fs::write(served.join(format!("k{n}.xml")), feed(&format!("k{n}"))).expect("feed");
    }
    let server = FeedServer::start(&served).await;
    let sources: String = (0..SOURCES)
        .map(|n| {
            source(
                &format!("k{n}"),
                &server.url(&format!("/feeds/k{n}.xml")),
                "",
            )
        })
        .collect();
    // Few sources per batch in flight, so that kills land between and inside commits.
    write_config(dir, &format!("[fetch]\nconcurrency = 2\n{sources}"));

    let total = SOURCES * ENTRIES;
    let mut killed = 0;
    while killed < KILLS {
        let before = articles(dir);
        assert!(before < total, "finished after {killed} kills");
        // A little further than now: a batch's files are on disk, its state perhaps not yet.
        let threshold = before + 1 + fastrand::usize(0..ENTRIES);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
            .arg("fetch")
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("run.log")).expect("run log"),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("run.err")).expect("run log"),
            ))
            .kill_on_drop(true)
            .spawn()
            .expect("start a fetch");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if articles(dir) >= threshold {
                child.start_kill().expect("SIGKILL");
                killed += 1;
                break;
            }
            if let Some(status) = child.try_wait().expect("poll the fetch") {
                assert!(
                    articles(dir) > before,
                    "a fetch ended ({status}) without archiving anything: {}{}",
                    std::fs::read_to_string(dir.join("run.log")).unwrap_or_default(),
                    std::fs::read_to_string(dir.join("run.err")).unwrap_or_default()
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "kill {killed}: no progress past {} files",
                articles(dir)
            );
            tokio::task::yield_now().await;
        }
        child.wait().await.expect("the fetch ended");
    }

    let finish = gazette(dir, &["fetch"]).await;
    assert!(
        finish.status.success(),
        "{}{}",
        stdout(&finish),
        stderr(&finish)
    );
    assert_eq!(articles(dir), total, "every entry, once");
    let leftovers: Vec<PathBuf> = common::all_files(&dir.join("archive"))
        .into_iter()
        .chain(common::all_files(&dir.join("public")))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".gazette-"))
        })
        .collect();
    assert_eq!(leftovers, Vec::<PathBuf>::new(), "temp files left behind");

    let pool = common::state_pool(dir).await;
    // SQLite's pages are whole (PostgreSQL's own are not this test's business).
    if common::on_sqlite() {
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .expect("integrity_check");
        assert_eq!(integrity, "ok");
    }
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM articles")
        .fetch_one(&pool)
        .await
        .expect("count articles");
    assert_eq!(recorded, i64::try_from(total).expect("small"));
    pool.close().await;

    let before = common::files_with_mtimes(&dir.join("archive"));
    let again = gazette(dir, &["fetch", "--force"]).await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        common::files_with_mtimes(&dir.join("archive")),
        before,
        "a forced fetch after the kills changed files"
    );
}
