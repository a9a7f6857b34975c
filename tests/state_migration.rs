//! `gazette migrate-state`: a SQLite state moves whole into PostgreSQL and back, and the moved
//! state serves the same archive. Real binary, real SQLite files, a real PostgreSQL server (the
//! one `GAZETTE_TEST_POSTGRES_URL` names, else a private one the test starts).

mod common;

use std::path::Path;

use common::{copy_demo_feeds, gazette, source, stderr, stdout, write_config_with_state};

/// Every source of the demo feeds, read from files below `dir/feeds`.
fn demo_sources(dir: &Path) -> String {
    let feeds = dir.join("feeds");
    copy_demo_feeds(&feeds);
    let mut names: Vec<String> = std::fs::read_dir(&feeds)
        .expect("feeds")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .iter()
        .map(|name| {
            let id: String = name
                .split('.')
                .next()
                .unwrap_or("feed")
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            source(&id, &feeds.join(name).display().to_string(), "")
        })
        .collect()
}

/// The table lines `migrate-state` prints: name and rows.
fn table_counts(output: &str) -> Vec<(String, u64)> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let table = words.next()?.to_owned();
            let rows = words.next()?.parse().ok()?;
            (words.next() == Some("rows")).then_some((table, rows))
        })
        .collect()
}

/// Every article's identity, file and content hash, in order.
async fn articles(url: &str) -> Vec<(String, String, String, String)> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("open a state");
    let rows =
        sqlx::query_as("SELECT source, key, path, content_hash FROM articles ORDER BY source, key")
            .fetch_all(&pool)
            .await
            .expect("articles");
    pool.close().await;
    rows
}

/// How many articles `condition` holds for.
async fn count_where(url: &str, condition: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("open a state");
    let sql = format!("SELECT count(*) FROM articles WHERE {condition}");
    let count = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    count
}

#[tokio::test]
async fn a_state_moves_to_postgresql_and_back_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let sources = demo_sources(dir);
    let sqlite = format!(
        "sqlite://{}",
        dir.join("state/gazette.db").to_str().expect("utf-8")
    );
    write_config_with_state(dir, &sqlite, &sources);
    let fetch = gazette(dir, &["fetch"]).await;
    assert!(fetch.status.success(), "{}", stderr(&fetch));
    let feed = std::fs::read(dir.join("public/atom.xml")).expect("feed");
    let before = articles(&sqlite).await;
    assert!(
        before.len() > 10,
        "the demo feeds archive their entries: {}",
        before.len()
    );

    let postgres = common::postgres::fresh_database();
    let moved = gazette(dir, &["migrate-state", "--to", &postgres]).await;
    assert!(moved.status.success(), "{}", stderr(&moved));
    let counts = table_counts(&stdout(&moved));
    assert!(
        counts.contains(&("articles".to_owned(), before.len() as u64)),
        "{}",
        stdout(&moved)
    );
    assert!(
        counts.iter().any(|(t, n)| t == "sources" && *n > 5),
        "{counts:?}"
    );
    assert_eq!(articles(&postgres).await, before);
    // SQLite keeps every fetched entry packed; PostgreSQL, which compresses on its own, takes
    // them as their JSON text.
    let entries = count_where(&sqlite, "entry IS NOT NULL").await;
    assert_eq!(
        entries,
        before.len() as i64,
        "every article keeps its entry"
    );
    assert_eq!(
        count_where(&sqlite, "typeof(entry) = 'blob'").await,
        entries
    );
    assert_eq!(count_where(&postgres, "entry LIKE '{%}'").await, entries);
    // So with the sections, whose count both keep beside them.
    assert_eq!(
        count_where(&sqlite, "typeof(sections) = 'blob' AND section_count = 1").await,
        entries
    );
    assert_eq!(
        count_where(&postgres, "sections LIKE '[%]' AND section_count = 1").await,
        entries
    );

    // A target that already holds state is refused, and keeps what it holds.
    let again = gazette(dir, &["migrate-state", "--to", &postgres]).await;
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("empty database only"),
        "{}",
        stderr(&again)
    );
    assert_eq!(articles(&postgres).await, before);

    // On the moved state the archive agrees, the feed builds the same, and nothing is new.
    write_config_with_state(dir, &postgres, &sources);
    let verify = gazette(dir, &["verify"]).await;
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    std::fs::remove_file(dir.join("public/atom.xml")).expect("remove the feed");
    let build = gazette(dir, &["build"]).await;
    assert!(build.status.success(), "{}", stderr(&build));
    assert_eq!(
        std::fs::read(dir.join("public/atom.xml")).expect("feed"),
        feed,
        "the feed built from the moved state"
    );
    let refetch = gazette(dir, &["fetch", "--force"]).await;
    assert!(refetch.status.success(), "{}", stderr(&refetch));
    assert!(
        stdout(&refetch).contains(" 0 new") || stderr(&refetch).contains(" 0 new"),
        "{}{}",
        stdout(&refetch),
        stderr(&refetch)
    );

    // And back into a new SQLite file: the same rows.
    let back = format!(
        "sqlite://{}",
        dir.join("back/state.db").to_str().expect("utf-8")
    );
    let returned = gazette(dir, &["migrate-state", "--to", &back]).await;
    assert!(returned.status.success(), "{}", stderr(&returned));
    assert_eq!(table_counts(&stdout(&returned)), counts);
    assert_eq!(articles(&back).await, before);
    assert_eq!(count_where(&back, "entry LIKE '{%}'").await, entries);
}
