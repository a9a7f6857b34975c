//! What Gazette generates, kept as reviewed snapshots (`insta`): an archive file, the merged
//! Atom feed and the JSON Feed made from the demo feeds. A change to any of them shows as a
//! diff to accept with `cargo insta review`, not as a silent drift.

mod common;

use std::path::Path;

use common::{copy_demo_feeds, gazette, source, stderr, write_config};

/// The demo feeds read from files, with JSON Feed output on: no clock, no network, so every
/// byte is the same on every run.
async fn generate(tmp: &Path) {
    let feeds = tmp.join("feeds");
    copy_demo_feeds(&feeds);
    let sources = [
        source(
            "ft",
            &feeds.join("ft-world.atom").display().to_string(),
            "tags = [\"world\"]\nlanguage = \"en\"\ncategory_tags = false",
        ),
        source(
            "tech",
            &feeds.join("tech-rss2.xml").display().to_string(),
            "tags = [\"tech\"]",
        ),
        source("notes", &feeds.join("notes.json").display().to_string(), ""),
    ]
    .concat();
    write_config(tmp, &sources);
    let path = tmp.join("config/gazette.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, text.replace("[feed]\n", "[feed]\njson = true\n")).expect("config");
    let run = gazette(tmp, &["fetch"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
}

/// The days the run may have seen: today and, for a run that crossed midnight, yesterday.
fn run_days() -> [chrono::NaiveDate; 2] {
    let today = chrono::Utc::now().date_naive();
    [today, today - chrono::Days::new(1)]
}

/// `text` with the times of this run (entries without a date are dated when first seen; the
/// feed is updated now) written as `[run time]`, and the day folders of such entries as
/// `[run day]`. Dates from the feeds stay.
fn redact(text: &str) -> String {
    let mut text = text.to_owned();
    for day in run_days() {
        let stamp = day.format("%Y-%m-%d");
        let run_time = regex::Regex::new(&format!(r"{stamp}T[0-9:.]+(Z|\+00:00)")).expect("regex");
        text = run_time.replace_all(&text, "[run time]").into_owned();
        text = text.replace(&day.format("/%Y/%m/%d/").to_string(), "/[run day]/");
    }
    text
}

fn read(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    redact(&text)
}

#[tokio::test]
async fn generated_markdown_atom_and_json_feed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    generate(tmp.path()).await;
    let archive = tmp.path().join("archive");
    let files = gazette::format::list_files(&archive).expect("archive");
    assert_eq!(files.len(), 10, "{files:?}");
    let first_ft = files
        .iter()
        .find(|f| f.starts_with("ft/"))
        .expect("an ft article");
    insta::assert_snapshot!("archive_file", read(&archive.join(first_ft)));
    insta::assert_snapshot!("archive_paths", redact(&files.join("\n")));
    insta::assert_snapshot!("atom", read(&tmp.path().join("public/atom.xml")));
    insta::assert_snapshot!("json_feed", read(&tmp.path().join("public/feed.json")));
}
