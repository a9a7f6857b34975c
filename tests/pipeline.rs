//! The pipeline through the library API, on real files and a real database (SQLite, or
//! PostgreSQL with `GAZETTE_TEST_STATE=postgres`).

mod common;

use std::path::Path;
use std::sync::Arc;

use gazette::config::Settings;
use gazette::fetch::Fetcher;
use gazette::pipeline::{Counts, Pipeline, Refresh, RunOptions};
use gazette::store::Store;

async fn pipeline(dir: &Path, sources: &str) -> Pipeline {
    let url = if common::on_sqlite() {
        "sqlite://state/g.db".to_owned()
    } else {
        common::state_url(dir)
    };
    let text = format!("[state]\nurl = \"{url}\"\n{sources}");
    let settings = Settings::from_toml(&text, &dir.join("gazette.toml")).expect("config");
    let store = Store::open(&settings.state_url).await.expect("state");
    let fetcher = Fetcher::new(&settings.fetch).expect("client");
    Pipeline::new(Arc::new(settings), store, fetcher).expect("pipeline")
}

fn rss(items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(guid, title)| {
            format!(
                "<item><guid>{guid}</guid><title>{title}</title><link>https://example.org/{guid}</link>\
                 <pubDate>Mon, 13 May 2024 09:00:00 +0000</pubDate><description>About {title}</description></item>"
            )
        })
        .collect();
    format!(
        "<rss version=\"2.0\"><channel><title>T</title><link>https://example.org/</link>{items}</channel></rss>"
    )
}

async fn refresh(p: &Pipeline) -> Counts {
    let sources = p.settings().sources.clone();
    let options = RunOptions {
        force: true,
        ..RunOptions::default()
    };
    let mut reports = p.refresh_all(&sources, options).await;
    assert_eq!(reports.len(), 1);
    match reports.remove(0).outcome.expect("refresh") {
        Refresh::Archived(counts) => counts,
        other => panic!("expected the body to be archived, got {other:?}"),
    }
}

#[tokio::test]
async fn clashing_slugs_get_numeric_suffixes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("a.xml"),
        rss(&[
            ("1", "Same title"),
            ("2", "Same title"),
            ("3", "Same title"),
        ]),
    )
    .expect("feed");
    let p = pipeline(dir.path(), "[[sources]]\nid = \"a\"\nurl = \"a.xml\"\n").await;
    assert_eq!(refresh(&p).await.new, 3);
    let day = dir.path().join("archive/a/2024/05/13");
    for name in ["same-title.md", "same-title-2.md", "same-title-3.md"] {
        assert!(day.join(name).is_file(), "{name} missing");
    }
    let links: Vec<String> = ["same-title.md", "same-title-2.md", "same-title-3.md"]
        .iter()
        .map(|n| std::fs::read_to_string(day.join(n)).expect("file"))
        .map(|t| {
            t.lines()
                .rev()
                .find(|l| l.starts_with("[Source Link]"))
                .expect("link")
                .to_owned()
        })
        .collect();
    assert_eq!(links.len(), 3);
    assert!(links[0] != links[1] && links[1] != links[2], "{links:?}");
}

#[tokio::test]
async fn a_file_left_by_an_interrupted_run_is_taken_over_not_duplicated() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.xml"), rss(&[("1", "Kept title")])).expect("feed");
    let p = pipeline(dir.path(), "[[sources]]\nid = \"a\"\nurl = \"a.xml\"\n").await;
    assert_eq!(refresh(&p).await.new, 1);
    // Lose the state but keep the archive, as if the run died before its commit.
    let archive = dir.path().join("archive");
    let files_before = std::fs::read_dir(archive.join("a/2024/05/13"))
        .expect("day")
        .count();
    p.store().clone().close().await;
    common::lose_state(dir.path());
    let p = pipeline(dir.path(), "[[sources]]\nid = \"a\"\nurl = \"a.xml\"\n").await;
    assert_eq!(refresh(&p).await.new, 1);
    let files_after = std::fs::read_dir(archive.join("a/2024/05/13"))
        .expect("day")
        .count();
    assert_eq!(files_after, files_before);
    assert!(archive.join("a/2024/05/13/kept-title.md").is_file());
}

/// A file that is not this article's, where its path would be: the article takes the next
/// name, and the file is left as it was.
#[tokio::test]
async fn a_file_that_is_not_the_article_keeps_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.xml"), rss(&[("1", "Kept title")])).expect("feed");
    let day = dir.path().join("archive/a/2024/05/13");
    std::fs::create_dir_all(&day).expect("day");
    std::fs::write(day.join("kept-title.md"), "my own notes\n").expect("notes");
    let p = pipeline(dir.path(), "[[sources]]\nid = \"a\"\nurl = \"a.xml\"\n").await;
    assert_eq!(refresh(&p).await.new, 1);
    assert_eq!(
        std::fs::read_to_string(day.join("kept-title.md")).expect("notes"),
        "my own notes\n"
    );
    let archived = std::fs::read_to_string(day.join("kept-title-2.md")).expect("article");
    assert!(
        archived.starts_with("---\ntitle: Kept title\n"),
        "{archived}"
    );
}

#[tokio::test]
async fn a_repeated_guid_in_one_feed_is_archived_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("a.xml"),
        rss(&[("1", "First"), ("1", "Second copy")]),
    )
    .expect("feed");
    let p = pipeline(dir.path(), "[[sources]]\nid = \"a\"\nurl = \"a.xml\"\n").await;
    let counts = refresh(&p).await;
    assert_eq!((counts.new, counts.skipped), (1, 1));
    assert_eq!(
        std::fs::read_dir(dir.path().join("archive/a/2024/05/13"))
            .expect("day")
            .count(),
        1
    );
}

#[tokio::test]
async fn the_feed_keeps_the_newest_max_entries_by_date() {
    let dir = tempfile::tempdir().expect("tempdir");
    let items: Vec<String> = (1..=9).map(|d| {
        format!("<item><guid>{d}</guid><title>Day {d}</title><link>https://example.org/{d}</link><pubDate>0{d} May 2024 09:00:00 +0000</pubDate></item>")
    }).collect();
    std::fs::write(
        dir.path().join("a.xml"),
        format!(
            "<rss version=\"2.0\"><channel><title>T</title>{}</channel></rss>",
            items.concat()
        ),
    )
    .expect("feed");
    let text = "[feed]\nmax_entries = 3\n[[sources]]\nid = \"a\"\nurl = \"a.xml\"\n";
    let p = pipeline(dir.path(), text).await;
    assert_eq!(refresh(&p).await.new, 9);
    assert!(p.publish_feed().await.expect("feed"));
    assert!(
        !p.publish_feed().await.expect("same feed"),
        "an unchanged feed is not rewritten"
    );
    let feed = std::fs::read_to_string(dir.path().join("public/atom.xml")).expect("feed");
    let titles: Vec<&str> = feed
        .match_indices("<title>Day ")
        .map(|(i, _)| &feed[i + 7..i + 12])
        .collect();
    assert_eq!(titles, vec!["Day 9", "Day 8", "Day 7"]);
}

/// A feed of three stories, each as (guid, link, title).
fn stories(items: &[(&str, &str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(guid, link, title)| {
            format!(
                "<item><guid isPermaLink=\"false\">{guid}</guid><title>{title}</title><link>{link}</link>\
                 <pubDate>Mon, 13 May 2024 09:00:00 +0000</pubDate>\
                 <description>The whole story of {title}.</description></item>"
            )
        })
        .collect();
    format!(
        "<rss version=\"2.0\"><channel><title>T</title><link>http://127.0.0.1/</link>{items}</channel></rss>"
    )
}

/// The Markdown files of the archive under `dir`.
fn markdown_files(dir: &Path) -> Vec<std::path::PathBuf> {
    common::all_files(&dir.join("archive"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect()
}

fn archived(dir: &Path) -> usize {
    markdown_files(dir).len()
}

/// Fetches the feed as `first`, then as `second`, under `identity`; returns the new articles
/// of the second fetch and the files archived after it.
async fn refetched(identity: &str, first: &str, second: &str) -> (usize, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed = dir.path().join("a.xml");
    std::fs::write(&feed, first).expect("feed");
    let config = format!("[[sources]]\nid = \"a\"\nurl = \"a.xml\"\nidentity = \"{identity}\"\n");
    let p = pipeline(dir.path(), &config).await;
    assert_eq!(refresh(&p).await.new, 3);
    std::fs::write(&feed, second).expect("feed");
    let new = refresh(&p).await.new;
    p.store().clone().close().await;
    (new, archived(dir.path()))
}

/// `identity = "link"`: a feed that changes every guid and adds tracking parameters to its
/// links archives nothing twice; `identity = "content"`: neither does one that changes its
/// links and guids but not its text. Under `auto`, the first makes duplicates (the guid is the
/// identity), which is why the choice exists.
#[tokio::test]
async fn identity_policies_keep_reissued_entries_single() {
    let first = stories(&[
        ("g1", "http://127.0.0.1/news/one", "One"),
        ("g2", "http://127.0.0.1/news/two", "Two"),
        ("g3", "http://127.0.0.1/news/three", "Three"),
    ]);
    let new_guids_tracked_links = stories(&[
        (
            "x1",
            "http://127.0.0.1/news/one?utm_source=rss&utm_medium=feed",
            "One",
        ),
        ("x2", "HTTP://127.0.0.1:80/news/two/#top", "Two"),
        ("x3", "http://127.0.0.1/news/three?fbclid=abc", "Three"),
    ]);
    assert_eq!(
        refetched("link", &first, &new_guids_tracked_links).await,
        (0, 3)
    );
    assert_eq!(
        refetched("auto", &first, &new_guids_tracked_links).await,
        (3, 6),
        "under auto, new guids are new entries"
    );

    let new_links_and_guids = stories(&[
        ("y1", "http://127.0.0.1/2024/one-story", "One"),
        ("y2", "http://127.0.0.1/2024/two-story", "Two"),
        ("y3", "http://127.0.0.1/2024/three-story", "Three"),
    ]);
    assert_eq!(
        refetched("content", &first, &new_links_and_guids).await,
        (0, 3)
    );
    assert_eq!(
        refetched("link", &first, &new_links_and_guids).await,
        (3, 6)
    );
}

/// A source archived under one identity policy and switched to another has its articles
/// re-keyed from the entries state keeps: the feed's reissued entries update the files they
/// were archived as, in place, instead of being archived again; and switching back is as safe.
#[tokio::test]
async fn a_changed_identity_policy_rekeys_what_was_archived() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed = dir.path().join("a.xml");
    std::fs::write(
        &feed,
        stories(&[
            ("g1", "http://127.0.0.1/news/one", "One"),
            ("g2", "http://127.0.0.1/news/two", "Two"),
            ("g3", "http://127.0.0.1/news/three", "Three"),
        ]),
    )
    .expect("feed");
    let p = pipeline(dir.path(), "[[sources]]\nid = \"a\"\nurl = \"a.xml\"\n").await;
    assert_eq!(refresh(&p).await.new, 3);
    p.store().clone().close().await;
    let paths = common::all_files(&dir.path().join("archive"));
    assert_eq!(paths.len(), 3);

    // The feed reissues every guid and tracks its links; the source now goes by link, and one
    // story's text was corrected meanwhile.
    std::fs::write(
        &feed,
        stories(&[
            ("x1", "http://127.0.0.1/news/one?utm_source=rss", "One"),
            ("x2", "http://127.0.0.1/news/two#comments", "Two"),
            ("x3", "http://127.0.0.1/news/three", "Three"),
        ])
        .replace("The whole story of Three.", "The corrected story of Three."),
    )
    .expect("feed");
    let by_link = "[[sources]]\nid = \"a\"\nurl = \"a.xml\"\nidentity = \"link\"\n";
    let p = pipeline(dir.path(), by_link).await;
    let counts = refresh(&p).await;
    // Each file is updated where it is: two links and one text changed.
    assert_eq!((counts.new, counts.updated), (0, 3), "{counts:?}");
    assert_eq!(common::all_files(&dir.path().join("archive")), paths);
    let three = paths
        .iter()
        .find(|p| p.to_string_lossy().contains("three"))
        .expect("the third story's file");
    let text = std::fs::read_to_string(three).expect("read");
    assert!(text.contains("The corrected story of Three."), "{text}");
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM articles WHERE source = 'a' ORDER BY key")
            .fetch_all(p.store().pool())
            .await
            .expect("keys");
    assert_eq!(
        keys,
        [
            "link:http://127.0.0.1/news/one",
            "link:http://127.0.0.1/news/three",
            "link:http://127.0.0.1/news/two"
        ]
    );
    // A second run under the same policy moves nothing: the same body is not even read.
    let sources = p.settings().sources.clone();
    let force = RunOptions {
        force: true,
        ..RunOptions::default()
    };
    let again = p.refresh_all(&sources, force).await;
    assert!(
        matches!(again[0].outcome, Ok(Refresh::SameBody)),
        "{again:?}"
    );
    p.store().clone().close().await;

    // Back to `auto`: the keys become the guids the feed has now.
    let p = pipeline(dir.path(), "[[sources]]\nid = \"a\"\nurl = \"a.xml\"\n").await;
    let counts = refresh(&p).await;
    assert_eq!(counts.new, 0, "{counts:?}");
    assert_eq!(common::all_files(&dir.path().join("archive")), paths);
    p.store().clone().close().await;
}

/// A source whose feed moved (its URL changed in the config) keeps its articles: the same
/// entries at the new address are the ones already archived.
#[tokio::test]
async fn a_source_whose_url_moved_keeps_its_articles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed = stories(&[
        ("g1", "http://127.0.0.1/news/one", "One"),
        ("g2", "http://127.0.0.1/news/two", "Two"),
        ("g3", "http://127.0.0.1/news/three", "Three"),
    ]);
    std::fs::write(dir.path().join("old.xml"), &feed).expect("feed");
    std::fs::write(dir.path().join("new.xml"), &feed).expect("feed");
    let p = pipeline(dir.path(), "[[sources]]\nid = \"a\"\nurl = \"old.xml\"\n").await;
    assert_eq!(refresh(&p).await.new, 3);
    p.store().clone().close().await;
    let p = pipeline(dir.path(), "[[sources]]\nid = \"a\"\nurl = \"new.xml\"\n").await;
    let counts = refresh(&p).await;
    assert_eq!((counts.new, counts.unchanged), (0, 3));
    assert_eq!(archived(dir.path()), 3);
    p.store().clone().close().await;
}

/// Sources longer than the bound on prepared articles waiting for the write turn (800) each
/// wait for the whole of it, one at a time, and are all archived: the bound slows long feeds
/// down, it never stalls them.
#[tokio::test]
async fn sources_longer_than_the_write_backlog_are_all_archived() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = String::from("[fetch]\nconcurrency = 3\n");
    for source in ["a", "b", "c"] {
        let guids: Vec<String> = (0..850).map(|i| format!("{source}{i}")).collect();
        let items: Vec<(&str, &str)> = guids.iter().map(|g| (g.as_str(), g.as_str())).collect();
        std::fs::write(dir.path().join(format!("{source}.xml")), rss(&items)).expect("feed");
        config.push_str(&format!(
            "[[sources]]\nid = \"{source}\"\nurl = \"{source}.xml\"\n"
        ));
    }
    let p = pipeline(dir.path(), &config).await;
    let sources = p.settings().sources.clone();
    let options = RunOptions {
        force: true,
        ..RunOptions::default()
    };
    // A stall would hang the run: it fails the test instead.
    let reports = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        p.refresh_all(&sources, options),
    )
    .await
    .expect("the run stalled");
    let new: usize = reports
        .into_iter()
        .map(|r| match r.outcome.expect("refresh") {
            Refresh::Archived(counts) => counts.new,
            other => panic!(
                "{}: expected the body to be archived, got {other:?}",
                r.source
            ),
        })
        .sum();
    assert_eq!(new, 3 * 850);
    p.store().clone().close().await;
    assert_eq!(archived(dir.path()), 3 * 850);
}

/// A source that fails while its work is written (here an updated article's file has become
/// a folder) is rolled back alone: none of its records, new or updated, nor what its fetch
/// learnt, reach state, and no new file of its stays; the sources written with it keep theirs.
#[tokio::test]
async fn a_source_failing_in_the_write_turn_leaves_the_others_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = String::from("[fetch]\nconcurrency = 3\n");
    let feed = |source: &str, title: &str, new: bool| {
        let mut items = vec![
            (format!("{source}1"), format!("{source} one {title}")),
            (format!("{source}2"), format!("{source} two {title}")),
        ];
        if new {
            items.push((format!("{source}3"), format!("{source} three")));
        }
        let items: Vec<(&str, &str)> = items
            .iter()
            .map(|(g, t)| (g.as_str(), t.as_str()))
            .collect();
        rss(&items)
    };
    for source in ["a", "b", "c"] {
        std::fs::write(
            dir.path().join(format!("{source}.xml")),
            feed(source, "first", false),
        )
        .expect("feed");
        config.push_str(&format!(
            "[[sources]]\nid = \"{source}\"\nurl = \"{source}.xml\"\n"
        ));
    }
    let p = pipeline(dir.path(), &config).await;
    let sources = p.settings().sources.clone();
    let options = || RunOptions {
        force: true,
        ..RunOptions::default()
    };
    for report in p.refresh_all(&sources, options()).await {
        report.outcome.expect("the first fetch");
    }
    assert_eq!(archived(dir.path()), 6);
    // One of b's files becomes a folder, which its update cannot replace.
    let archive = dir.path().join("archive");
    let blocked = common::all_files(&archive.join("b"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains("b-one"))
        .expect("b's first article");
    std::fs::remove_file(&blocked).expect("remove");
    std::fs::create_dir_all(blocked.join("inside")).expect("a folder in its place");
    for source in ["a", "b", "c"] {
        std::fs::write(
            dir.path().join(format!("{source}.xml")),
            feed(source, "second", true),
        )
        .expect("feed");
    }

    for report in p.refresh_all(&sources, options()).await {
        match (report.source.as_str(), report.outcome) {
            ("b", Err(e)) => assert!(
                e.to_string().contains("b-one"),
                "the error names the file: {e}"
            ),
            ("b", other) => panic!("b's write must fail, got {other:?}"),
            (source, Ok(Refresh::Archived(counts))) => {
                assert_eq!((counts.new, counts.updated), (1, 2), "{source}")
            }
            (source, other) => panic!("{source}: {other:?}"),
        }
    }
    let mut conn = p.store().pool().acquire().await.expect("connection");
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT source, title FROM articles ORDER BY source, key")
            .fetch_all(&mut *conn)
            .await
            .expect("titles");
    let of = |source: &str| -> Vec<&str> {
        rows.iter()
            .filter(|(s, _)| s == source)
            .map(|(_, t)| t.as_str())
            .collect()
    };
    assert_eq!(of("a"), ["a one second", "a two second", "a three"]);
    assert_eq!(of("b"), ["b one first", "b two first"], "b as before");
    assert_eq!(of("c"), ["c one second", "c two second", "c three"]);
    let b_state: (String, Option<String>) =
        sqlx::query_as("SELECT COALESCE(last_status, ''), last_error FROM sources WHERE id = 'b'")
            .fetch_one(&mut *conn)
            .await
            .expect("b's state");
    assert!(
        b_state.1.as_deref().is_some_and(|e| e.contains("b-one")),
        "b's failure is recorded: {b_state:?}"
    );
    drop(conn);
    p.store().clone().close().await;
    // a and c gained their third article (b's first is the folder now); b's was not left
    // behind.
    assert_eq!(archived(dir.path()), 6 - 1 + 2);
    assert!(
        !common::all_files(&archive.join("b"))
            .iter()
            .any(|p| p.to_string_lossy().contains("b-three")),
        "b's new file is removed with its record"
    );
}

/// What every record of a source is rendered with (its settings' fingerprint) is recorded by
/// the run that wrote or rendered them: by a first run for every source it archived, and by a
/// run that fetched nothing (no source due) for a source whose settings changed, with its
/// files rendered again. No source is left without one, so the next run looks for nothing.
#[tokio::test]
async fn each_run_records_what_its_sources_files_are_rendered_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |b_tags: &str| {
        let mut config = String::from("[fetch]\nconcurrency = 3\n");
        for source in ["a", "b", "c"] {
            let tags = if source == "b" { b_tags } else { "" };
            config.push_str(&format!(
                "[[sources]]\nid = \"{source}\"\nurl = \"{source}.xml\"\n{tags}"
            ));
        }
        config
    };
    for source in ["a", "b", "c"] {
        let guid = format!("{source}1");
        std::fs::write(
            dir.path().join(format!("{source}.xml")),
            rss(&[(guid.as_str(), "Story")]),
        )
        .expect("feed");
    }
    let fingerprints = |p: Pipeline| async move {
        let mut found = Vec::new();
        for source in ["a", "b", "c"] {
            let state = p.store().source_state(source).await.expect("state");
            found.push(state.and_then(|s| s.fingerprint));
        }
        p.store().clone().close().await;
        found
    };

    let p = pipeline(dir.path(), &config("")).await;
    let sources = p.settings().sources.clone();
    let options = RunOptions {
        force: true,
        ..RunOptions::default()
    };
    for report in p.refresh_all(&sources, options).await {
        report.outcome.expect("refresh");
    }
    let first = fingerprints(p).await;
    assert!(
        first.iter().all(Option::is_some),
        "a source's fingerprint is missing after the first run: {first:?}"
    );

    // Source b gets a tag: its file is rendered again, though no source is due.
    let p = pipeline(dir.path(), &config("tags = [\"extra\"]\n")).await;
    let sources = p.settings().sources.clone();
    for report in p.refresh_all(&sources, RunOptions::default()).await {
        assert!(
            matches!(report.outcome, Ok(Refresh::NotDue(_))),
            "{}: {:?}",
            report.source,
            report.outcome
        );
    }
    let second = fingerprints(p).await;
    assert_eq!((&second[0], &second[2]), (&first[0], &first[2]));
    assert!(
        second[1].is_some() && second[1] != first[1],
        "b's new settings were not recorded: {second:?}"
    );
    let files: Vec<String> = markdown_files(dir.path())
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("file"))
        .filter(|text| text.contains("extra"))
        .collect();
    assert_eq!(files.len(), 1, "b's file was not rendered with its new tag");
}
