//! Feed-reader habits: OPML from a real feed reader (newsboat), export and import, discovery.

mod common;

use std::path::Path;

use common::{FeedServer, copy_demo_feeds, gazette, source, stderr, stdout, write_config};

fn config_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("config/gazette.toml")).expect("config")
}

fn sources(dir: &Path) -> Vec<(String, String, Vec<String>)> {
    let settings =
        gazette::config::Settings::load(&dir.join("config/gazette.toml")).expect("valid config");
    settings
        .sources
        .into_iter()
        .map(|s| (s.id, s.location.to_string(), s.tags))
        .collect()
}

#[tokio::test]
async fn an_opml_export_of_newsboat_imports() {
    let Some(newsboat) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("newsboat"))
            .find(|p| p.is_file())
    }) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "newsboat must be installed in CI (.ci/run installs it)"
        );
        eprintln!("newsboat is not installed; the test is skipped");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    copy_demo_feeds(&served);
    let server = FeedServer::start(&served).await;
    let urls = tmp.path().join("urls");
    let (a, b) = (
        server.url("/feeds/tech-rss2.xml"),
        server.url("/feeds/ft-world.atom"),
    );
    std::fs::write(&urls, format!("{a} \"tech\"\n{b}\n")).expect("urls");
    let export = tokio::process::Command::new(newsboat)
        .arg("-e")
        .arg("-u")
        .arg(&urls)
        .arg("-c")
        .arg(tmp.path().join("cache.db"))
        .arg("-C")
        .arg("/dev/null")
        .env("HOME", tmp.path())
        .output()
        .await
        .expect("run newsboat");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let opml = tmp.path().join("newsboat.opml");
    std::fs::write(&opml, &export.stdout).expect("opml");

    write_config(tmp.path(), "# Sources below were imported.\n");
    let import = gazette(tmp.path(), &["import", opml.to_str().expect("utf-8")]).await;
    assert!(
        import.status.success(),
        "{}{}",
        stdout(&import),
        stderr(&import)
    );
    assert!(
        stdout(&import).contains("2 sources added"),
        "{}",
        stdout(&import)
    );
    let imported = sources(tmp.path());
    let urls: Vec<&str> = imported.iter().map(|(_, url, _)| url.as_str()).collect();
    assert_eq!(urls, vec![a.as_str(), b.as_str()]);
    assert!(
        config_text(tmp.path()).contains("# Sources below were imported."),
        "the user's comment was lost"
    );
    let fetch = gazette(tmp.path(), &["fetch"]).await;
    assert!(fetch.status.success(), "{}", stdout(&fetch));

    // Importing the same file again adds nothing.
    let again = gazette(tmp.path(), &["import", opml.to_str().expect("utf-8")]).await;
    assert!(
        stdout(&again).contains("0 sources added")
            && stdout(&again).contains("2 already configured"),
        "{}",
        stdout(&again)
    );
}

#[tokio::test]
async fn export_then_import_gives_the_same_sources() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let original = tmp.path().join("original");
    let sources_text = [
        source(
            "world",
            "https://news.example.org/world.xml",
            "tags = [\"world\", \"politics\"]",
        ),
        source("tech-ledger", "https://tech.example.org/feed.atom", ""),
    ]
    .concat();
    write_config(&original, &sources_text);
    let export = gazette(&original, &["export"]).await;
    assert!(export.status.success(), "{}", stderr(&export));
    imports_as_the_same_sources(tmp.path(), &original, &export.stdout).await;
}

#[tokio::test]
async fn add_discovers_the_feed_of_a_page() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    copy_demo_feeds(&served);
    std::fs::write(
        served.join("page.html"),
        "<!DOCTYPE html><html><head><title>FT</title>\
         <link rel=\"alternate\" type=\"application/atom+xml\" title=\"FT World\" href=\"/feeds/ft-world.atom\">\
         </head><body><p>News.</p></body></html>",
    )
    .expect("page");
    let server = FeedServer::start(&served).await;
    // The page, not the operator, names the feed's address: loopback is refused by default.
    write_config(tmp.path(), "");
    let refused = gazette(tmp.path(), &["add", &server.url("/feeds/page.html")]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("non-public address 127.0.0.1"),
        "{}",
        stderr(&refused)
    );
    assert!(sources(tmp.path()).is_empty());
    write_config(tmp.path(), "[fetch]\nallow_private = [\"127.0.0.1/32\"]\n");
    let add = gazette(
        tmp.path(),
        &["add", &server.url("/feeds/page.html"), "--tag", "World"],
    )
    .await;
    assert!(add.status.success(), "{}{}", stdout(&add), stderr(&add));
    let out = stdout(&add);
    assert!(
        out.contains("title: FT World") && out.contains("entries: 3"),
        "{out}"
    );
    assert!(
        out.contains("  - US and China to hold first talks"),
        "{out}"
    );
    assert_eq!(
        sources(tmp.path()),
        vec![(
            "ft-world".to_owned(),
            server.url("/feeds/ft-world.atom"),
            vec!["world".to_owned()]
        )]
    );
    let nothing = gazette(tmp.path(), &["add", &server.url("/feeds/nope.html")]).await;
    assert_eq!(nothing.status.code(), Some(1));
    assert!(
        stderr(&nothing).contains("HTTP 404"),
        "{}",
        stderr(&nothing)
    );
}

#[tokio::test]
async fn add_reads_a_page_in_its_own_encoding() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    copy_demo_feeds(&served);
    std::fs::copy(served.join("tech-rss2.xml"), served.join("新闻.xml")).expect("feed");
    // A GBK page naming a feed whose address is Chinese: read as UTF-8, the address is garbage.
    let page = "<!DOCTYPE html><html><head><meta charset=\"gbk\"><title>新闻</title>\
         <link rel=\"alternate\" type=\"application/rss+xml\" title=\"新闻\" href=\"/feeds/新闻.xml\">\
         </head><body><p>新闻。</p></body></html>";
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(page);
    assert!(!unmappable);
    std::fs::write(served.join("gbk.html"), &gbk).expect("page");
    let server = FeedServer::start(&served).await;
    write_config(tmp.path(), "[fetch]\nallow_private = [\"127.0.0.1/32\"]\n");
    let add = gazette(tmp.path(), &["add", &server.url("/feeds/gbk.html")]).await;
    assert!(add.status.success(), "{}{}", stdout(&add), stderr(&add));
    let added = sources(tmp.path());
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(
        added[0].1,
        server.url("/feeds/%E6%96%B0%E9%97%BB.xml"),
        "{added:?}"
    );
}

/// The export names each source by its feed's own title and links its site, as state learnt
/// them from the feed, so that another reader shows names; an import of it keeps the ids.
#[tokio::test]
async fn the_export_names_and_links_each_feed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    copy_demo_feeds(&served);
    let server = FeedServer::start(&served).await;
    let original = tmp.path().join("original");
    write_config(
        &original,
        &source("tech", &server.url("/feeds/tech-rss2.xml"), ""),
    );
    let fetch = gazette(&original, &["fetch"]).await;
    assert!(fetch.status.success(), "{}", stderr(&fetch));
    let export = gazette(&original, &["export"]).await;
    assert!(export.status.success(), "{}", stderr(&export));
    let text = stdout(&export);
    assert!(
        text.contains("text=\"Tech Ledger\" title=\"Tech Ledger\""),
        "{text}"
    );
    assert!(
        text.contains("htmlUrl=\"https://tech.example.org/\""),
        "{text}"
    );
    imports_as_the_same_sources(tmp.path(), &original, &export.stdout).await;
}

/// Imports `opml` (an export of `original`'s config) into a fresh config beside it and checks
/// that it holds the same sources.
async fn imports_as_the_same_sources(tmp: &Path, original: &Path, opml: &[u8]) {
    let file = tmp.join("export.opml");
    std::fs::write(&file, opml).expect("opml");
    let copy = tmp.join("copy");
    write_config(&copy, "");
    let import = gazette(&copy, &["import", file.to_str().expect("utf-8")]).await;
    assert!(import.status.success(), "{}", stderr(&import));
    assert_eq!(sources(&copy), sources(original));
}
