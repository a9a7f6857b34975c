//! What a feed carries reaches the archive and the outputs: every format and version, entries
//! without a title or link, odd elements that must not cost the feed, dates in the forms real
//! servers write, bylines, enclosures, and article pages in legacy encodings. Each test names
//! a way feeds were lost or mangled before.

mod common;

use common::daemon::{Daemon, client, get_text};
use common::{FeedServer, assert_valid_atom, gazette, source, stderr, stdout, write_config};
use serde_json::Value;
use std::path::Path;

/// `gazette preview` of `body` saved as `name`: the articles, or the failed run's stderr.
async fn preview(dir: &Path, name: &str, body: &[u8]) -> Result<Vec<Value>, String> {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write feed");
    let base = format!("http://127.0.0.1/fidelity/{name}");
    let run = gazette(
        dir,
        &[
            "preview",
            path.to_str().expect("utf-8 path"),
            "--base",
            &base,
        ],
    )
    .await;
    if !run.status.success() {
        return Err(stderr(&run));
    }
    Ok(stdout(&run)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect())
}

async fn articles(dir: &Path, name: &str, body: &str) -> Vec<Value> {
    preview(dir, name, body.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn titles(articles: &[Value]) -> Vec<&str> {
    articles
        .iter()
        .map(|a| a["title"].as_str().expect("title"))
        .collect()
}

#[tokio::test]
async fn atom_0_3_in_its_namespace_is_read_with_its_dates() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let feed = r#"<?xml version="1.0"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#">
  <title>Old blog</title>
  <link rel="alternate" type="text/html" href="https://blog.example.org/"/>
  <author><name>Feed Author</name></author>
  <entry>
    <title>Issued and modified</title>
    <link rel="alternate" type="text/html" href="https://blog.example.org/1"/>
    <id>tag:blog.example.org,2004:1</id>
    <issued>2004-01-02T10:00:00+01:00</issued>
    <modified>2004-01-03T10:00:00Z</modified>
    <content type="text/html" mode="escaped">&lt;p&gt;Escaped &lt;b&gt;HTML&lt;/b&gt;&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Only created</title>
    <link rel="alternate" type="text/html" href="https://blog.example.org/2"/>
    <id>tag:blog.example.org,2004:2</id>
    <created>2004-02-01T00:00:00Z</created>
    <content type="text/plain" mode="base64">UGxhaW4gdGV4dCBpbiBiYXNlNjQ=</content>
  </entry>
  <entry>
    <title>Inline XHTML</title>
    <id>tag:blog.example.org,2004:3</id>
    <modified>2004-03-01T00:00:00Z</modified>
    <content type="application/xhtml+xml" mode="xml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Inline <em>markup</em></p></div></content>
  </entry>
</feed>"#;
    let out = articles(tmp.path(), "atom03.xml", feed).await;
    assert_eq!(
        titles(&out),
        ["Issued and modified", "Only created", "Inline XHTML"]
    );
    assert_eq!(out[0]["date"], "2004-01-02T09:00:00.000Z");
    assert_eq!(out[0]["updated"], "2004-01-03T10:00:00.000Z");
    assert_eq!(out[0]["body"], "Escaped **HTML**");
    assert_eq!(out[0]["authors"][0]["name"], "Feed Author");
    assert_eq!(out[1]["date"], "2004-02-01T00:00:00.000Z");
    assert_eq!(out[1]["body"], "Plain text in base64");
    assert_eq!(out[2]["date"], "2004-03-01T00:00:00.000Z");
    assert_eq!(out[2]["body"], "Inline *markup*");
}

#[tokio::test]
async fn every_rss_version_and_namespace_is_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rss090 = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://my.netscape.com/rdf/simple/0.9/">
  <channel><title>Mozilla Dot Org</title><link>http://www.mozilla.org</link><description>d</description></channel>
  <item><title>New Status Updates</title><link>http://www.mozilla.org/status/</link></item>
  <item><title>Bugzilla Reorganized</title><link>http://www.mozilla.org/bugs/</link></item>
</rdf:RDF>"#;
    let out = articles(tmp.path(), "rss090.xml", rss090).await;
    assert_eq!(titles(&out), ["New Status Updates", "Bugzilla Reorganized"]);
    assert_eq!(out[0]["link"], "http://www.mozilla.org/status/");

    let userland = r#"<rss version="2.0" xmlns="http://backend.userland.com/rss2"><channel><title>t</title>
      <item><title>Namespaced item</title><link>https://example.org/n</link><pubDate>Sat, 07 Sep 2002 00:00:01 GMT</pubDate></item>
    </channel></rss>"#;
    let out = articles(tmp.path(), "userland.xml", userland).await;
    assert_eq!(titles(&out), ["Namespaced item"]);
    assert_eq!(out[0]["date"], "2002-09-07T00:00:01.000Z");

    let unversioned = r#"<rss><channel><title>t</title>
      <item><title>No version</title><link>https://example.org/v</link></item></channel></rss>"#;
    assert_eq!(
        titles(&articles(tmp.path(), "unversioned.xml", unversioned).await),
        ["No version"]
    );

    for version in ["0.91", "0.92", "0.93", "0.94"] {
        let doc = format!(
            r#"<rss version="{version}"><channel><title>t</title><item><title>Item of {version}</title><link>https://example.org/{version}</link></item></channel></rss>"#
        );
        let out = articles(tmp.path(), "rss09x.xml", &doc).await;
        assert_eq!(
            titles(&out),
            [format!("Item of {version}").as_str()],
            "{version}"
        );
    }
}

#[tokio::test]
async fn entries_without_a_title_or_link_are_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let feed = r#"<rss version="2.0"><channel><title>t</title><link>https://example.org/</link>
      <item><description>Only a description: the quarterly report is out, and it says what everyone feared about the numbers.</description><guid isPermaLink="false">d1</guid></item>
      <item><title>Permalink guid</title><guid>https://example.org/posts/7</guid></item>
      <item><title>Guid that says true</title><guid isPermaLink="true">https://example.org/posts/8</guid></item>
      <item><title>Not a permalink</title><guid isPermaLink="false">urn:x:9</guid></item>
      <item><category>nothing else</category></item>
    </channel></rss>"#;
    let out = articles(tmp.path(), "titleless.xml", feed).await;
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(
        out[0]["title"],
        "Only a description: the quarterly report is out, and it says what everyone…"
    );
    assert_eq!(out[0]["link"], "");
    assert_eq!(out[1]["link"], "https://example.org/posts/7");
    assert_eq!(out[2]["link"], "https://example.org/posts/8");
    assert_eq!(out[3]["link"], "");
    assert_eq!(out[3]["key"], "urn:x:9");
}

#[tokio::test]
async fn one_odd_element_costs_only_its_value() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:f</id><updated>2024-01-01T00:00:00Z</updated>
      <entry><id>urn:1</id><title type="">Empty type</title><updated>2024-01-01T00:00:00Z</updated><link href="https://example.org/1"/></entry>
      <entry><id>urn:2</id><title type="application/x-custom">Custom type</title><updated>2024-01-02T00:00:00Z</updated>
        <content type="image/png">iVBORw0KGgo=</content><summary>The summary stands in</summary></entry>
      <entry><id>urn:3</id><title>Bad date</title><updated>not a date at all</updated></entry>
    </feed>"#;
    let out = articles(tmp.path(), "odd.atom", atom).await;
    assert_eq!(titles(&out), ["Empty type", "Custom type", "Bad date"]);
    assert_eq!(out[1]["body"], "The summary stands in");
    assert_eq!(out[2]["updated"], Value::Null);

    let json = r#"{"version": "https://jsonfeed.org/version/1.1", "title": "j",
      "items": [
        {"id": 42, "title": "Numeric id", "url": "https://example.org/42", "date_published": 1700000000},
        {"id": "m", "title": "Milliseconds", "content_text": "x", "date_published": 1700000000000, "tags": "single"},
        {"id": "w", "title": ["not", "a", "string"], "content_html": "<p>Wrong title type</p>", "date_modified": true},
        "not an object"
      ]}"#;
    let out = articles(tmp.path(), "odd.json", json).await;
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0]["key"], "42");
    assert_eq!(out[0]["date"], "2023-11-14T22:13:20.000Z");
    assert_eq!(out[1]["date"], "2023-11-14T22:13:20.000Z");
    assert_eq!(out[1]["tags"], serde_json::json!(["single"]));
    assert_eq!(out[2]["title"], "Wrong title type");

    // The whole document still has to be a feed.
    let err = preview(
        tmp.path(),
        "page.html",
        b"<!DOCTYPE html><html><body>hi</body></html>",
    )
    .await
    .expect_err("an HTML page is no feed");
    assert!(
        err.contains("page.html") && err.contains("HTML page"),
        "{err}"
    );
}

#[tokio::test]
async fn dates_are_read_in_every_form_and_the_future_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "<dcterms:modified>2004-01-01T19:48:21Z</dcterms:modified>",
            "2004-01-01T19:48:21.000Z",
        ),
        (
            "<dcterms:created>2004-01-02T00:00:00Z</dcterms:created>",
            "2004-01-02T00:00:00.000Z",
        ),
        (
            "<dcterms:issued>2004-01-03</dcterms:issued>",
            "2004-01-03T00:00:00.000Z",
        ),
        ("<dc:date>2004</dc:date>", "2004-01-01T00:00:00.000Z"),
        ("<dc:date>2004-02</dc:date>", "2004-02-01T00:00:00.000Z"),
        (
            "<dc:date>2004-01-01T19:48Z</dc:date>",
            "2004-01-01T19:48:00.000Z",
        ),
        (
            "<dc:date>2004-01-01 19:48:21+01:00</dc:date>",
            "2004-01-01T18:48:21.000Z",
        ),
        (
            "<dc:date>2004-01-01T19:48:21</dc:date>",
            "2004-01-01T19:48:21.000Z",
        ),
        (
            "<dc:date>20040101T194821Z</dc:date>",
            "2004-01-01T19:48:21.000Z",
        ),
        (
            "<pubDate>Sat, Dec 16 2023 02:02:33 PM</pubDate>",
            "2023-12-16T14:02:33.000Z",
        ),
        (
            "<pubDate>Tue, 10 Jun 03 09:41:01 GMT</pubDate>",
            "2003-06-10T09:41:01.000Z",
        ),
        (
            "<pubDate>Tue, 10 Jun 2003 09:41 GMT</pubDate>",
            "2003-06-10T09:41:00.000Z",
        ),
        (
            "<pubDate>Tue, 10 Jun 2003 09:41:01 UT</pubDate>",
            "2003-06-10T09:41:01.000Z",
        ),
        (
            "<pubDate>Tue, 10 Jun 2003 09:41:01 EST</pubDate>",
            "2003-06-10T14:41:01.000Z",
        ),
        (
            "<pubDate>Tue, 10 Jun 2003 09:41:01 Z</pubDate>",
            "2003-06-10T09:41:01.000Z",
        ),
        (
            "<pubDate>Tue, 10 Jun 2003 09:41:01 +00:0</pubDate>",
            "2003-06-10T09:41:01.000Z",
        ),
    ];
    let items: String = cases
        .iter()
        .enumerate()
        .map(|(i, (element, _))| {
            format!("<item><guid>g{i}</guid><title>Case {i}</title>{element}</item>")
        })
        .collect();
    let feed = format!(
        r#"<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"><channel><title>t</title>{items}
        <item><guid>future</guid><title>From the future</title><pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate></item>
        <item><guid>fallback</guid><title>Bad pubDate, good dc:date</title><pubDate>next Tuesday</pubDate><dc:date>2010-05-05T05:05:05Z</dc:date></item>
        </channel></rss>"#
    );
    let started = chrono::Utc::now();
    let out = articles(tmp.path(), "dates.xml", &feed).await;
    for (i, (element, expected)) in cases.iter().enumerate() {
        assert_eq!(out[i]["date"], *expected, "{element}");
    }
    let future = &out[cases.len()];
    assert_eq!(future["published"], Value::Null);
    let filed: chrono::DateTime<chrono::Utc> = future["date"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("date");
    assert!(
        filed >= started - chrono::TimeDelta::seconds(1)
            && filed < started + chrono::TimeDelta::hours(1),
        "a date far in the future is taken as absent, so the entry is filed when first seen: {filed}"
    );
    assert_eq!(out[cases.len() + 1]["date"], "2010-05-05T05:05:05.000Z");
}

#[tokio::test]
async fn bylines_are_read_in_every_format() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rss = r#"<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>
      <item><guid>1</guid><title>a</title><author>jo@example.org (Jo Doe)</author></item>
      <item><guid>2</guid><title>b</title><dc:creator>Ann Lee</dc:creator><dc:creator>Bo Chen</dc:creator></item>
    </channel></rss>"#;
    let out = articles(tmp.path(), "bylines.xml", rss).await;
    assert_eq!(
        out[0]["authors"],
        serde_json::json!([{"name": "Jo Doe", "email": "jo@example.org", "uri": null}])
    );
    assert_eq!(out[1]["authors"][1]["name"], "Bo Chen");
    assert_eq!(
        out[0]["author"], "preview",
        "the archive's author key is the source's"
    );

    let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:f</id><updated>2024-01-01T00:00:00Z</updated>
      <author><name>Feed Author</name></author>
      <entry><id>urn:1</id><title>own</title><updated>2024-01-01T00:00:00Z</updated>
        <author><name>Entry Author</name><email>e@example.org</email><uri>/people/e</uri></author></entry>
      <entry><id>urn:2</id><title>inherited</title><updated>2024-01-01T00:00:00Z</updated></entry>
    </feed>"#;
    let out = articles(tmp.path(), "bylines.atom", atom).await;
    assert_eq!(
        out[0]["authors"],
        serde_json::json!([{"name": "Entry Author", "email": "e@example.org", "uri": "http://127.0.0.1/people/e"}])
    );
    assert_eq!(out[1]["authors"][0]["name"], "Feed Author");

    let json = r#"{"version": "https://jsonfeed.org/version/1", "title": "j", "author": {"name": "Old Style"},
      "items": [{"id": "1", "title": "x", "content_text": "y"},
                {"id": "2", "title": "z", "content_text": "y", "authors": [{"name": "New Style", "url": "https://example.org/n"}]}]}"#;
    let out = articles(tmp.path(), "bylines.json", json).await;
    assert_eq!(out[0]["authors"][0]["name"], "Old Style");
    assert_eq!(out[1]["authors"][0]["uri"], "https://example.org/n");
}

#[tokio::test]
async fn enclosures_are_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rss = r#"<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title><link>https://pod.example.org/</link>
      <item><guid>1</guid><title>Episode 1</title>
        <enclosure url="https://pod.example.org/media/ep1.mp3" length="12345" type="audio/mpeg"/>
        <media:content url="https://pod.example.org/media/ep1.mp3" fileSize="12345" type="audio/mpeg"/>
        <media:content url="https://pod.example.org/media/cover.jpg" type="image/jpeg"/></item>
    </channel></rss>"#;
    let out = articles(tmp.path(), "enclosures.xml", rss).await;
    assert_eq!(
        out[0]["enclosures"],
        serde_json::json!([
            {"url": "https://pod.example.org/media/ep1.mp3", "type": "audio/mpeg", "length": 12345},
            {"url": "https://pod.example.org/media/cover.jpg", "type": "image/jpeg", "length": null}
        ])
    );
    let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:f</id><updated>2024-01-01T00:00:00Z</updated>
      <entry><id>urn:1</id><title>a</title><updated>2024-01-01T00:00:00Z</updated>
        <link rel="enclosure" href="https://example.org/a.ogg" type="audio/ogg" length="99"/>
        <link rel="alternate" href="https://example.org/a"/></entry></feed>"#;
    let out = articles(tmp.path(), "enclosures.atom", atom).await;
    assert_eq!(out[0]["link"], "https://example.org/a");
    assert_eq!(out[0]["enclosures"][0]["url"], "https://example.org/a.ogg");
    assert_eq!(out[0]["enclosures"][0]["length"], 99);
}

/// A podcast feed whose bylines and enclosures must reach the merged Atom feed, the JSON Feed
/// and the article page.
const PODCAST: &str = r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Pod</title><link>https://pod.example.org/</link>
  <item><guid>https://pod.example.org/ep/1</guid><title>Episode one</title><link>https://pod.example.org/ep/1</link>
    <dc:creator>Dana Host</dc:creator><pubDate>Mon, 06 May 2024 08:00:00 GMT</pubDate>
    <description>Show notes.</description>
    <enclosure url="https://pod.example.org/media/ep1.mp3" length="12345" type="audio/mpeg"/></item>
</channel></rss>"#;

#[tokio::test]
async fn bylines_and_enclosures_reach_every_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).expect("dir");
    std::fs::write(served.join("pod.xml"), PODCAST).expect("feed");
    let server = FeedServer::start(&served).await;
    write_config(
        tmp.path(),
        &format!(
            "[serve]\ntick = \"1s\"\nshutdown_grace = \"2s\"\n{}",
            source("pod", &server.url("/feeds/pod.xml"), "interval = \"1h\"")
        ),
    );
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let atom_path = tmp.path().join("public/atom.xml");
    assert_valid_atom(&atom_path);
    let atom = std::fs::read_to_string(&atom_path).expect("feed");
    assert!(atom.contains("<name>Dana Host</name>"), "{atom}");
    assert!(
        atom.contains(r#"<link href="https://pod.example.org/media/ep1.mp3" rel="enclosure" type="audio/mpeg" length="12345"/>"#),
        "{atom}"
    );

    let daemon = Daemon::start(tmp.path()).await;
    let http = client();
    let json: Value = http
        .get(daemon.url("/feed.json"))
        .send()
        .await
        .expect("feed.json")
        .json()
        .await
        .expect("JSON");
    let item = &json["items"][0];
    assert_eq!(item["authors"], serde_json::json!([{"name": "Dana Host"}]));
    assert_eq!(
        item["attachments"],
        serde_json::json!([{"url": "https://pod.example.org/media/ep1.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 12345}])
    );
    let index = get_text(&http, &daemon.url("/")).await;
    let page_link = index
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|href| href.starts_with("/articles/") && href.ends_with(".html"))
        .unwrap_or_else(|| panic!("no article link in {index}"))
        .to_owned();
    let page = get_text(&http, &daemon.url(&page_link)).await;
    assert!(page.contains("Dana Host"), "{page}");
    assert!(
        page.contains("https://pod.example.org/media/ep1.mp3"),
        "{page}"
    );
}

#[tokio::test]
async fn article_pages_in_legacy_encodings_are_decoded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).expect("dir");
    let pages = [
        ("gbk", encoding_rs::GBK, "人工智能改变了新闻编辑室"),
        ("big5", encoding_rs::BIG5, "人工智慧改變了新聞編輯室"),
        (
            "shift_jis",
            encoding_rs::SHIFT_JIS,
            "人工知能がニュース編集室を変えた",
        ),
    ];
    let server = FeedServer::start(&served).await;
    let mut items = String::new();
    for (charset, encoding, text) in pages {
        let html = format!(
            "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset={charset}\"><title>x</title></head>\
             <body><article>{}</article></body></html>",
            format!("<p>{text}。</p>").repeat(8)
        );
        let (bytes, _, unmappable) = encoding.encode(&html);
        assert!(!unmappable, "{charset}");
        std::fs::write(served.join(format!("{charset}.html")), &bytes).expect("page");
        items.push_str(&format!(
            "<item><guid>{charset}</guid><title>{charset}</title><link>{}</link><description>teaser</description></item>",
            server.url(&format!("/feeds/{charset}.html"))
        ));
    }
    std::fs::write(
        served.join("pages.xml"),
        format!("<rss version=\"2.0\"><channel><title>p</title>{items}</channel></rss>"),
    )
    .expect("feed");
    write_config(
        tmp.path(),
        &format!(
            "[fetch]\nallow_private = [\"127.0.0.1/32\"]\n{}",
            source(
                "pages",
                &server.url("/feeds/pages.xml"),
                "extract = { content = \"article\" }"
            )
        ),
    );
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let archived: Vec<String> = common::files_with_mtimes(&tmp.path().join("archive"))
        .into_iter()
        .map(|(path, _)| std::fs::read_to_string(path).expect("file"))
        .collect();
    for (charset, _, text) in pages {
        assert!(
            archived.iter().any(|file| file.contains(text)),
            "{charset}: {text} not in any archived file:\n{}",
            archived.join("\n----\n")
        );
    }
}

#[tokio::test]
async fn quirks_of_real_feeds_are_read_as_meant() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // RSS's namespace named after its documentation page; an element left unclosed before the
    // items; a UUID guid marked as a permalink; a link written the Atom way.
    let rss = r#"<rss version="2.0" xmlns="https://cyber.harvard.edu/rss/rss.html" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel>
      <title>t</title><link>https://pod.example.org/</link><itunes:category text="News">
      <item><title>Episode</title><guid isPermaLink="true">a28dfbbd-6a4b-4d1c-9f1e-000000000001</guid></item>
      <item><title>Linked</title><link href="https://pod.example.org/2"/></item>
    </channel></rss>"#;
    let out = articles(tmp.path(), "quirks.xml", rss).await;
    assert_eq!(titles(&out), ["Episode", "Linked"]);
    assert_eq!(out[0]["link"], "", "a UUID is no page");
    assert_eq!(out[1]["link"], "https://pod.example.org/2");

    // A page beats a video alternate; Atom's relative links resolve against the document.
    let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:f</id><updated>2024-01-01T00:00:00Z</updated>
      <link rel="alternate" href="https://www.example.org/"/>
      <entry><id>urn:1</id><title>Trailer</title><updated>2024-01-01T00:00:00Z</updated>
        <link rel="alternate" type="video/mp4" href="https://cdn.example.org/t.mov"/>
        <link rel="alternate" type="text/html" href="https://www.example.org/t"/></entry>
      <entry><id>urn:2</id><title>Relative</title><updated>2024-01-01T00:00:00Z</updated><link href="/posts/2"/></entry>
    </feed>"#;
    let out = articles(tmp.path(), "quirks.atom", atom).await;
    assert_eq!(out[0]["link"], "https://www.example.org/t");
    assert_eq!(out[1]["link"], "http://127.0.0.1/posts/2");

    // PHP warnings printed before the feed; text encoded to UTF-8 twice.
    let php = "<br />\n<b>Warning</b>: Undefined variable in <b>feed.php</b><br />\n\
        <?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>t</title>\
        <item><title>Grupo FÃ³rmula</title><link>https://example.org/f</link></item></channel></rss>";
    let out = articles(tmp.path(), "php.xml", php).await;
    assert_eq!(titles(&out), ["Grupo Fórmula"]);
}

#[tokio::test]
async fn an_archived_articles_date_never_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).expect("dir");
    let feed = |date: &str, text: &str| {
        format!(
            "<rss version=\"2.0\"><channel><title>t</title><item><guid>https://example.org/a</guid>\
             <title>Moving date</title><pubDate>{date}</pubDate><description>{text}</description></item></channel></rss>"
        )
    };
    std::fs::write(
        served.join("f.xml"),
        feed("Mon, 06 May 2024 08:00:00 GMT", "First text."),
    )
    .expect("feed");
    let server = FeedServer::start(&served).await;
    write_config(tmp.path(), &source("f", &server.url("/feeds/f.xml"), ""));
    let first = gazette(tmp.path(), &["fetch"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let files = || common::files_with_mtimes(&tmp.path().join("archive"));
    let before = files();
    assert_eq!(before.len(), 1);

    std::fs::write(
        served.join("f.xml"),
        feed("Sat, 01 Jun 2024 12:00:00 GMT", "Second text."),
    )
    .expect("feed");
    let second = gazette(tmp.path(), &["fetch", "--force"]).await;
    assert!(
        stdout(&second).contains("f: 0 new, 1 updated"),
        "{}",
        stdout(&second)
    );
    let after = files();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, before[0].0, "the file never moves");
    let text = std::fs::read_to_string(&after[0].0).expect("file");
    assert!(text.contains("date: 2024-05-06T08:00:00.000Z"), "{text}");
    assert!(text.contains("Second text."), "{text}");
}
