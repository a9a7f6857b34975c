//! De-duplication across sources, filters, max_age, max_per_run, rewrites, and hostile markup in
//! feed content.

mod common;

use std::path::Path;

use common::{FeedServer, assert_valid_atom, gazette, source, stderr, stdout, write_config};

fn item(guid: &str, title: &str, link: &str, date: &str, extra: &str) -> String {
    let link = link.replace('&', "&amp;");
    format!(
        "<item><guid>{guid}</guid><title>{title}</title><link>{link}</link><pubDate>{date}</pubDate>{extra}</item>"
    )
}

fn rss(items: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\">\
         <channel><title>T</title><link>https://news.example.org/</link>{}</channel></rss>",
        items.concat()
    )
}

fn archive(dir: &Path) -> Vec<String> {
    common::files_with_mtimes(&dir.join("archive"))
        .into_iter()
        .map(|(p, _)| std::fs::read_to_string(p).expect("file"))
        .collect()
}

async fn serve(dir: &Path, feeds: &[(&str, String)]) -> FeedServer {
    let served = dir.join("served");
    std::fs::create_dir_all(&served).expect("dir");
    for (name, body) in feeds {
        std::fs::write(served.join(name), body).expect("feed");
    }
    FeedServer::start(&served).await
}

/// Two sources, `first` reading `a` and `second` reading `b`, served and configured.
async fn first_and_second(dir: &Path, a: String, b: String) -> FeedServer {
    let server = serve(dir, &[("a.xml", a), ("b.xml", b)]).await;
    let sources = [
        source("first", &server.url("/feeds/a.xml"), ""),
        source("second", &server.url("/feeds/b.xml"), ""),
    ]
    .concat();
    write_config(dir, &sources);
    server
}

/// One story in two feeds, under links that differ only in tracking parameters.
fn one_story_twice() -> (String, String) {
    let story = |guid: &str, link: &str| rss(&[item(guid, "Harbour deal agreed", link, DATE, "")]);
    (
        story("a1", "https://news.example.org/story?utm_source=rss"),
        story("b1", "https://news.example.org/story?fbclid=1"),
    )
}

const DATE: &str = "Mon, 13 May 2024 09:00:00 GMT";

#[tokio::test]
async fn the_same_story_in_two_sources_is_archived_once_with_merged_tags() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = rss(&[item(
        "a1",
        "Harbour deal agreed",
        "https://News.Example.org/story?utm_source=rss&id=7#top",
        DATE,
        "",
    )]);
    let b = rss(&[
        item(
            "b1",
            "Harbour deal agreed (updated)",
            "https://news.example.org/story?id=7&fbclid=xyz&utm_medium=social",
            DATE,
            "",
        ),
        item(
            "b2",
            "Something else",
            "https://news.example.org/other",
            DATE,
            "",
        ),
    ]);
    let server = serve(tmp.path(), &[("a.xml", a), ("b.xml", b)]).await;
    let sources = [
        source("first", &server.url("/feeds/a.xml"), "tags = [\"world\"]"),
        source(
            "second",
            &server.url("/feeds/b.xml"),
            "tags = [\"politics\", \"world\"]",
        ),
    ]
    .concat();
    write_config(tmp.path(), &sources);
    // Fetch the first source first, so it wins.
    let first = gazette(tmp.path(), &["fetch", "--source", "first"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let second = gazette(tmp.path(), &["fetch", "--source", "second"]).await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).contains("second: 1 new, 0 updated, 0 unchanged, 1 skipped"),
        "{}",
        stdout(&second)
    );
    let files = archive(tmp.path());
    assert_eq!(files.len(), 2, "one story, once, plus the other one");
    let story = files
        .iter()
        .find(|f| f.contains("Harbour deal agreed"))
        .expect("story");
    assert!(
        story.contains("title: Harbour deal agreed\n"),
        "the first source wins: {story}"
    );
    assert!(
        story.contains("tags: \n- world\n- politics\n"),
        "tags merged: {story}"
    );
    assert_valid_atom(&tmp.path().join("public/atom.xml"));

    let again = gazette(tmp.path(), &["fetch", "--force"]).await;
    assert!(
        stdout(&again).contains("second: unchanged"),
        "{}",
        stdout(&again)
    );
    assert_eq!(archive(tmp.path()).len(), 2);

    // The first source updates its article: the merged tags stay.
    let updated = rss(&[item(
        "a1",
        "Harbour deal agreed at last",
        "https://news.example.org/story?id=7",
        DATE,
        "",
    )]);
    std::fs::write(server.dir.join("a.xml"), updated).expect("update");
    let third = gazette(tmp.path(), &["fetch", "--force", "--source", "first"]).await;
    assert!(
        stdout(&third).contains("first: 0 new, 1 updated"),
        "{}",
        stdout(&third)
    );
    let files = archive(tmp.path());
    let story = files
        .iter()
        .find(|f| f.contains("Harbour deal agreed at last"))
        .expect("updated story");
    assert!(
        story.contains("tags: \n- world\n- politics\n"),
        "tags kept: {story}"
    );
}

#[tokio::test]
async fn a_duplicate_leaves_no_trace_in_the_archive() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = one_story_twice();
    let _server = first_and_second(tmp.path(), a, b).await;
    let first = gazette(tmp.path(), &["fetch", "--source", "first"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    // The second source's copy was readied as a file (and a folder for it) before its turn
    // found it a duplicate: neither is left behind.
    let second = gazette(tmp.path(), &["fetch", "--source", "second"]).await;
    assert!(
        stdout(&second).contains("second: 0 new, 0 updated, 0 unchanged, 1 skipped"),
        "{}",
        stdout(&second)
    );
    assert_eq!(archive(tmp.path()).len(), 1);
    let mut folders = vec![tmp.path().join("archive")];
    while let Some(folder) = folders.pop() {
        let mut entries = std::fs::read_dir(&folder).expect("folder").peekable();
        assert!(entries.peek().is_some(), "{} is empty", folder.display());
        for entry in entries {
            let entry = entry.expect("entry");
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if entry.file_type().expect("type").is_dir() && !hidden {
                folders.push(entry.path());
            }
        }
    }
    assert!(!tmp.path().join("archive/second").exists());
    let temp = std::fs::read_dir(tmp.path().join("archive/.tmp")).expect("temp folder");
    assert_eq!(temp.count(), 0, "a staged copy is left");
}

#[tokio::test]
async fn entries_without_links_are_never_merged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = rss(&["<item><guid>a1</guid><title>Alpha story</title></item>".to_owned()]);
    let b = rss(&["<item><guid>b1</guid><title>Beta, a different story</title></item>".to_owned()]);
    let _server = first_and_second(tmp.path(), a, b).await;
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(archive(tmp.path()).len(), 2, "{}", stdout(&run));
}

#[tokio::test]
async fn with_dedupe_off_both_copies_are_archived() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = one_story_twice();
    let _server = first_and_second(tmp.path(), a, b).await;
    let path = tmp.path().join("config/gazette.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        text.replace("[archive]\n", "[archive]\ndedupe = false\n"),
    )
    .expect("config");
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(archive(tmp.path()).len(), 2);
}

#[tokio::test]
async fn filters_and_max_age_keep_an_old_feed_from_flooding() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut items: Vec<String> = (0..500)
        .map(|i| {
            item(
                &format!("old{i}"),
                &format!("Old story {i}"),
                &format!("https://news.example.org/old/{i}"),
                "Mon, 06 Jan 2020 09:00:00 GMT",
                "",
            )
        })
        .collect();
    let recent = chrono::Utc::now().to_rfc2822();
    for i in 0..12 {
        items.push(item(
            &format!("new{i}"),
            &format!("Fresh story {i}"),
            &format!("https://news.example.org/new/{i}"),
            &recent,
            "",
        ));
    }
    items.push(item(
        "ad",
        "SPONSORED: the best mattress",
        "https://news.example.org/ad",
        &recent,
        "",
    ));
    let server = serve(tmp.path(), &[("flood.xml", rss(&items))]).await;
    let config = format!(
        "[filters]\nexclude_title = [\"(?i)^sponsored\"]\n{}",
        source(
            "flood",
            &server.url("/feeds/flood.xml"),
            "filters = { max_age = \"30days\", max_per_run = 5 }"
        )
    );
    write_config(tmp.path(), &config);
    let first = gazette(tmp.path(), &["fetch"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(
        stdout(&first).lines().next(),
        Some("flood: 5 new, 0 updated, 0 unchanged, 508 skipped"),
        "{}",
        stdout(&first)
    );
    assert_eq!(archive(tmp.path()).len(), 5);
    let second = gazette(tmp.path(), &["fetch", "--force"]).await;
    assert!(
        stdout(&second).starts_with("flood: 5 new"),
        "{}",
        stdout(&second)
    );
    let third = gazette(tmp.path(), &["fetch", "--force"]).await;
    assert!(
        stdout(&third).starts_with("flood: 2 new"),
        "{}",
        stdout(&third)
    );
    let files = archive(tmp.path());
    assert_eq!(files.len(), 12);
    assert!(
        files
            .iter()
            .all(|f| f.contains("Fresh story") && !f.contains("SPONSORED"))
    );
}

#[tokio::test]
async fn rewrites_apply_to_link_and_title() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let feed = rss(&[item(
        "r1",
        "Markets rally on rate hopes | The Daily Example",
        "https://www.example.org/markets/1",
        DATE,
        "",
    )]);
    let server = serve(tmp.path(), &[("r.xml", feed)]).await;
    let rules = "rewrite = { links = [{ pattern = \"^https://www\\\\.example\\\\.org/\", replace = \"https://example.org/\" }], \
                 title = [{ pattern = \"\\\\s*\\\\|[^|]*$\", replace = \"\" }] }";
    write_config(
        tmp.path(),
        &source("rw", &server.url("/feeds/r.xml"), rules),
    );
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let files = archive(tmp.path());
    assert_eq!(files.len(), 1);
    assert!(
        files[0].contains("title: Markets rally on rate hopes\n"),
        "{}",
        files[0]
    );
    assert!(
        files[0].contains("[Source Link](https://example.org/markets/1)"),
        "{}",
        files[0]
    );
}

#[tokio::test]
async fn hostile_feed_content_reaches_neither_the_archive_nor_the_feed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let payload = "<![CDATA[<p>Real text of the article, long enough to keep.</p>\
        <script>alert(1)</script><img src=\"x\" onerror=\"alert(2)\"><a href=\"javascript:alert(3)\">js</a>\
        <a href=\"data:text/html;base64,PHNjcmlwdD4=\">data</a><svg onload=\"alert(4)\"><script>alert(5)</script></svg>\
        <div style=\"background:url(javascript:alert(6))\">styled</div><iframe src=\"https://evil.example.com/\"></iframe>\
        <img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"inline\"><style>body{display:none}</style>]]>";
    let feed = rss(&[item(
        "x1",
        "Payloads &lt;script&gt;alert(7)&lt;/script&gt;",
        "https://news.example.org/x",
        DATE,
        &format!("<content:encoded>{payload}</content:encoded>"),
    )]);
    let server = serve(tmp.path(), &[("x.xml", feed)]).await;
    write_config(tmp.path(), &source("x", &server.url("/feeds/x.xml"), ""));
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    let mut everything = std::fs::read_to_string(tmp.path().join("public/atom.xml")).expect("feed");
    everything.push_str(&archive(tmp.path()).concat());
    assert!(everything.contains("Real text of the article"));
    for bad in [
        "javascript:",
        "data:",
        "alert(",
        "onerror",
        "onload",
        "<script",
        "<svg",
        "<iframe",
        "display:none",
        "evil.example.com",
    ] {
        assert!(
            !everything.to_lowercase().contains(bad),
            "{bad} survived:\n{everything}"
        );
    }
}
