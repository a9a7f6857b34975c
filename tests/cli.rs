//! End to end: the `gazette` binary against feeds served on 127.0.0.1, into a temporary folder.

mod common;

use std::path::Path;

use common::{
    FeedServer, assert_valid_atom, closed_port, copy_demo_feeds, files_with_mtimes, gazette,
    source, stderr, stdout, write_config,
};

const REFERENCE_PATH: &str =
    "archive/ft/2024/05/13/us-and-china-to-hold-first-talks-to-reduce-risk-of-ai-miscalculation.md";

fn reference_file() -> String {
    std::fs::read_to_string(common::repo().join("tests/fixtures/archive-format/monolingual-en.md"))
        .expect("reference")
}

fn archive_files(dir: &Path) -> Vec<std::path::PathBuf> {
    files_with_mtimes(&dir.join("archive"))
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

/// A folder laid out like the repository's demo: its feeds, and its config in `config/`.
fn demo_folder() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_demo_feeds(&tmp.path().join("feeds"));
    std::fs::create_dir_all(tmp.path().join("config")).expect("config dir");
    std::fs::copy(
        common::repo().join("config/gazette.toml"),
        tmp.path().join("config/gazette.toml"),
    )
    .expect("demo config");
    tmp
}

#[tokio::test]
async fn every_format_is_archived_and_a_second_run_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    copy_demo_feeds(&served);
    let server = FeedServer::start(&served).await;
    let mut sources = source(
        "ft",
        &server.url("/feeds/ft-world.atom"),
        "tags = [\"world\"]\nlanguage = \"en\"\ncategory_tags = false",
    );
    for (id, file) in [
        ("tech", "tech-rss2.xml"),
        ("science", "science-rss1.rdf"),
        ("retro091", "retro-rss091.xml"),
        ("retro092", "retro-rss092.xml"),
        ("blog", "blog-atom03.xml"),
        ("notes", "notes.json"),
    ] {
        sources.push_str(&source(id, &server.url(&format!("/feeds/{file}")), ""));
    }
    write_config(tmp.path(), &sources);
    // Run from another folder: paths in the config resolve against the config's folder.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("cwd");
    let config = tmp.path().join("config/gazette.toml");
    let config = config.to_str().expect("utf-8 path");

    let first = gazette(&elsewhere, &["--config", config, "fetch"]).await;
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    let out = stdout(&first);
    for line in [
        "ft: 3 new",
        "tech: 4 new",
        "science: 3 new",
        "retro091: 2 new",
        "retro092: 2 new, 0 updated, 0 unchanged, 0 skipped",
        "blog: 2 new",
        "notes: 3 new",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert_eq!(archive_files(tmp.path()).len(), 19);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join(REFERENCE_PATH)).expect("reference article"),
        reference_file()
    );
    let feed = tmp.path().join("public/atom.xml");
    assert_valid_atom(&feed);
    let feed_text = std::fs::read_to_string(&feed).expect("feed");
    assert_eq!(feed_text.matches("<entry>").count(), 19);
    assert!(
        !elsewhere.join("archive").exists(),
        "nothing is written relative to the working directory"
    );

    let before = files_with_mtimes(tmp.path());
    let not_due = gazette(&elsewhere, &["--config", config, "fetch"]).await;
    assert!(not_due.status.success(), "{}", stderr(&not_due));
    assert_eq!(
        stdout(&not_due).matches(": not due until ").count(),
        7,
        "{}",
        stdout(&not_due)
    );
    let second = gazette(&elsewhere, &["--config", config, "fetch", "--force"]).await;
    assert!(
        second.status.success(),
        "{}{}",
        stdout(&second),
        stderr(&second)
    );
    assert!(
        stdout(&second).contains("ft: unchanged (same body as last time)"),
        "{}",
        stdout(&second)
    );
    assert!(stdout(&second).contains("feed") && stdout(&second).contains("unchanged"));
    let after = files_with_mtimes(tmp.path());
    let written = |files: &[(std::path::PathBuf, std::time::SystemTime)]| {
        files
            .iter()
            .filter(|(p, _)| !p.starts_with(tmp.path().join("state")))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        written(&after),
        written(&before),
        "the second run created or rewrote files"
    );

    // The same entry with changed content is re-rendered into the same file.
    let atom = served.join("ft-world.atom");
    let text = std::fs::read_to_string(&atom).expect("served feed");
    let changed = text.replacen("risk of AI", "risk of artificial intelligence", 1);
    assert_ne!(changed, text);
    std::fs::write(&atom, changed).expect("change feed");
    let third = gazette(&elsewhere, &["--config", config, "fetch", "--force"]).await;
    assert!(
        third.status.success(),
        "{}{}",
        stdout(&third),
        stderr(&third)
    );
    assert!(
        stdout(&third).contains("ft: 0 new, 1 updated, 2 unchanged"),
        "{}",
        stdout(&third)
    );
    assert_eq!(
        archive_files(tmp.path()).len(),
        19,
        "an update never duplicates a file"
    );
    let updated = std::fs::read_to_string(tmp.path().join(REFERENCE_PATH)).expect("same path");
    assert!(
        updated.contains(
            "title: US and China to hold first talks to reduce risk of artificial intelligence"
        ),
        "{updated}"
    );
    assert_valid_atom(&feed);
}

#[tokio::test]
async fn failing_sources_are_reported_and_do_not_stop_the_others() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    copy_demo_feeds(&served);
    let server = FeedServer::start(&served).await;
    let refused = format!("http://127.0.0.1:{}/feed.xml", closed_port());
    let sources = [
        source("good", &server.url("/feeds/ft-world.atom"), ""),
        source("missing", &server.url("/feeds/nope.xml"), ""),
        source("broken", &server.url("/broken.xml"), ""),
        source("refused", &refused, ""),
        source("nofile", "../feeds/absent.xml", ""),
    ]
    .concat();
    write_config(tmp.path(), &sources);

    let run = gazette(tmp.path(), &["fetch"]).await;
    assert_eq!(
        run.status.code(),
        Some(3),
        "{}{}",
        stdout(&run),
        stderr(&run)
    );
    let out = stdout(&run);
    assert!(out.contains("good: 3 new"), "{out}");
    let line = |id: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{id}: failed:")))
            .unwrap_or_else(|| panic!("no failure line for {id} in:\n{out}"))
            .to_owned()
    };
    assert!(line("missing").contains("HTTP 404"), "{out}");
    assert!(line("broken").contains("not a readable feed"), "{out}");
    assert!(line("refused").contains("could not connect"), "{out}");
    assert!(line("nofile").contains("absent.xml"), "{out}");
    assert!(
        out.contains(", 4 failed;") && out.contains("\n5 sources, "),
        "{out}"
    );
    assert_valid_atom(&tmp.path().join("public/atom.xml"));

    let status = gazette(tmp.path(), &["status", "--json"]).await;
    assert!(status.status.success(), "{}", stderr(&status));
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let rows = rows["sources"].as_array().expect("array");
    assert_eq!(rows.len(), 5);
    for row in rows {
        let failed = row["id"] != "good";
        assert_eq!(
            row["consecutive_failures"],
            if failed { 1 } else { 0 },
            "{row}"
        );
        assert_eq!(row["last_error"].is_string(), failed, "{row}");
    }
}

#[tokio::test]
async fn the_demo_config_archives_the_reference_article() {
    let tmp = demo_folder();

    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join(REFERENCE_PATH)).expect("reference article"),
        reference_file()
    );
    assert_valid_atom(&tmp.path().join("public/atom.xml"));

    let build = gazette(tmp.path(), &["build"]).await;
    assert!(build.status.success(), "{}", stderr(&build));
    assert!(stdout(&build).contains("unchanged"), "{}", stdout(&build));
}

/// The archive and the feeds are read by others (a web server running as another user): their
/// files are readable by all whatever the umask of the run that wrote them, and no wider.
#[tokio::test]
async fn written_files_are_readable_by_all_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    for umask in [0o077, 0o022, 0o002] {
        let tmp = demo_folder();

        let run = common::gazette_with_umask(tmp.path(), &["fetch"], umask).await;
        assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
        let files = archive_files(tmp.path());
        assert!(!files.is_empty(), "the demo config archives articles");
        for file in files.iter().chain([&tmp.path().join("public/atom.xml")]) {
            let mode = std::fs::metadata(file)
                .expect("written file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644, "umask {umask:o}: {}", file.display());
        }
    }
}

#[tokio::test]
async fn preview_prints_one_json_object_per_article_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let feed = common::repo().join("feeds/ft-world.atom");
    let run = gazette(tmp.path(), &["preview", feed.to_str().expect("utf-8")]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    let articles: Vec<serde_json::Value> = stdout(&run)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(articles.len(), 3);
    let keys: Vec<&str> = articles[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "source",
        "key",
        "title",
        "link",
        "date",
        "description",
        "tags",
        "author",
        "authors",
        "published",
        "updated",
        "enclosures",
        "language",
        "body",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(articles[0]["title"], common::reference::EN_TITLE);
    assert_eq!(articles[0]["date"], "2024-05-13T09:00:53.911Z");
    assert_eq!(articles[0]["body"], common::reference::EN_BODY);
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("list").count(),
        0,
        "preview wrote files"
    );
}

#[tokio::test]
async fn a_bad_config_is_fatal_and_names_file_line_and_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(tmp.path().join("config")).expect("dir");
    std::fs::write(
        tmp.path().join("config/gazette.toml"),
        "[feed]\ntitle = \"x\"\nmax_entires = 5\n",
    )
    .expect("write");
    for args in [&["check"][..], &["fetch"][..]] {
        let run = gazette(tmp.path(), args).await;
        assert_eq!(run.status.code(), Some(1), "{args:?}");
        let err = stderr(&run);
        assert!(
            err.contains("config/gazette.toml: line 3") && err.contains("max_entires"),
            "{err}"
        );
    }
    let missing = gazette(tmp.path(), &["--config", "nope.toml", "check"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("nope.toml"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn check_prints_what_a_fetch_would_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_config(
        tmp.path(),
        &source("ft", "../feeds/ft-world.atom", "tags = [\"world\"]"),
    );
    let run = gazette(tmp.path(), &["check"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    let out = stdout(&run);
    assert!(out.contains("sources  1"), "{out}");
    assert!(
        out.contains("ft") && out.contains("feeds/ft-world.atom") && out.contains("tags=[world]"),
        "{out}"
    );
    assert!(!tmp.path().join("state").exists(), "check writes nothing");
}

#[tokio::test]
async fn under_cron_only_failures_and_the_summary_are_printed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let feeds = tmp.path().join("feeds");
    copy_demo_feeds(&feeds);
    let sources = [
        source("ft", "../feeds/ft-world.atom", ""),
        source("broken", "../feeds/missing.xml", ""),
    ]
    .concat();
    write_config(tmp.path(), &sources);
    let run =
        common::gazette_with_env(tmp.path(), &["fetch"], &[("GAZETTE_PER_SOURCE", "false")]).await;
    assert_eq!(run.status.code(), Some(3));
    let out = stdout(&run);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("broken: failed:"), "{out}");
    // Each failure once in all that cron mails (stdout and the log), its id once per line.
    let mailed = format!("{out}{}", stderr(&run));
    assert_eq!(mailed.matches("missing.xml").count(), 1, "{mailed}");
    assert!(!lines[0].contains("source broken"), "{out}");
    assert!(
        lines[1].starts_with("2 sources, 3 new, 0 updated, 1 failed;"),
        "{out}"
    );
}

#[tokio::test]
async fn a_changed_feed_pings_hubs_and_runs_on_publish() {
    use axum::routing::post;
    let pings: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
    let record = std::sync::Arc::clone(&pings);
    let hub = axum::Router::new().route(
        "/hub",
        post(move |body: String| {
            let record = std::sync::Arc::clone(&record);
            async move {
                record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(body);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hub_url = format!("http://{}/hub", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, hub).await.expect("hub") });

    let tmp = tempfile::tempdir().expect("tempdir");
    copy_demo_feeds(&tmp.path().join("feeds"));
    let marker = tmp.path().join("published.txt");
    write_config(tmp.path(), &source("ft", "../feeds/ft-world.atom", ""));
    let path = tmp.path().join("config/gazette.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let feed_extra = format!(
        "hubs = [\"{hub_url}\"]\non_publish = [\"sh\", \"-c\", \"echo published >> {}\"]\n",
        marker.display()
    );
    std::fs::write(
        &path,
        text.replacen(
            "title = \"Test\"\n",
            &format!("title = \"Test\"\n{feed_extra}"),
            1,
        ),
    )
    .expect("config");

    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let feed = std::fs::read_to_string(tmp.path().join("public/atom.xml")).expect("feed");
    assert!(
        feed.contains(&format!("<link href=\"{hub_url}\" rel=\"hub\"/>")),
        "{feed}"
    );
    assert_valid_atom(&tmp.path().join("public/atom.xml"));
    let sent = pings
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert_eq!(
        sent,
        vec!["hub.mode=publish&hub.url=http%3A%2F%2F127.0.0.1%2Fatom.xml".to_owned()]
    );
    assert_eq!(
        std::fs::read_to_string(&marker).expect("on_publish ran"),
        "published\n"
    );

    // Nothing changed: no ping, no command.
    let again = gazette(tmp.path(), &["fetch", "--force"]).await;
    assert!(again.status.success());
    assert_eq!(
        pings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len(),
        1
    );
    assert_eq!(
        std::fs::read_to_string(&marker).expect("marker"),
        "published\n"
    );
}

#[tokio::test]
async fn logs_can_be_json_lines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_demo_feeds(&tmp.path().join("feeds"));
    write_config(tmp.path(), &source("ft", "../feeds/ft-world.atom", ""));
    let run = gazette(tmp.path(), &["-v", "--log-format", "json", "fetch"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    let logs = stderr(&run);
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "refreshed"),
        "{logs}"
    );
}

/// The configuration reference in the README is a config that loads.
#[test]
fn the_readme_config_reference_is_valid() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).expect("README");
    let block = readme
        .split("```toml")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml block in the README");
    let settings =
        gazette::config::Settings::from_toml(block, &common::repo().join("config/readme.toml"))
            .unwrap_or_else(|e| panic!("the README's config does not load: {e}"));
    assert_eq!(settings.sources.len(), 1);
    assert!(settings.sources[0].extract.is_some());
}
