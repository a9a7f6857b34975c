//! A lost or damaged state database next to its archive: `rebuild` recovers the state from the
//! files, `verify [--repair]` reports (and mends) every disagreement, and while the state is
//! missing no command publishes less, rewrites a file or pays the LLM again. Every test runs the
//! real binary against feeds and a fake OpenAI-compatible model served on 127.0.0.1, with a real
//! SQLite file in its own temporary folder.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use common::{FeedServer, assert_valid_atom, files_with_mtimes, gazette_with_env, stderr, stdout};
use serde_json::{Value, json};

const KEY_ENV: &str = "GAZETTE_TEST_LLM_KEY";
const KEY: &str = "sk-test-state-recovery-do-not-leak";

/// An RSS 2.0 source: a guid that is a URL, guids that are not, and an item without a guid
/// (keyed by its link). Each item has its own date so that the feed order is fixed by dates.
const WIRE_RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
<channel>
<title>The Wire</title>
<link>http://127.0.0.1/wire/</link>
<description>News from the wire</description>
<item>
  <title>Harbour reopens after the storm</title>
  <link>http://127.0.0.1/wire/harbour-reopens</link>
  <guid isPermaLink="true">http://127.0.0.1/wire/harbour-reopens</guid>
  <pubDate>Mon, 13 May 2024 09:00:00 +0000</pubDate>
  <category>Ports</category>
  <category>Weather</category>
  <description>&lt;p&gt;The harbour reopened on Monday after three days of storm.&lt;/p&gt;</description>
</item>
<item>
  <title>Council passes the budget</title>
  <link>http://127.0.0.1/wire/council-budget</link>
  <guid isPermaLink="false">wire-0002</guid>
  <pubDate>Sun, 12 May 2024 14:30:00 +0000</pubDate>
  <category>Politics</category>
  <description>&lt;p&gt;The council passed next year's budget by one vote.&lt;/p&gt;</description>
</item>
<item>
  <title>Market report: fish prices fall</title>
  <link>http://127.0.0.1/wire/market-report</link>
  <pubDate>Sat, 11 May 2024 07:15:00 +0000</pubDate>
  <category>Ports</category>
  <category>Economy</category>
  <description>&lt;p&gt;Fish prices fell for the &lt;b&gt;third&lt;/b&gt; week running.&lt;/p&gt;</description>
</item>
<item>
  <title>Ferry timetable changes</title>
  <link>http://127.0.0.1/wire/ferry-timetable</link>
  <guid isPermaLink="false">4417</guid>
  <pubDate>Fri, 10 May 2024 18:00:00 +0000</pubDate>
  <description>&lt;p&gt;The summer timetable starts in June.&lt;/p&gt;</description>
</item>
</channel>
</rss>
"#;

/// An Atom source: a `urn:` id, a URL id and an id that is no IRI; bylines from the feed and
/// from one entry.
const NOTES_ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Field notes</title>
  <id>urn:uuid:6f1c1d7e-2a59-4b0e-9d1e-3f7a3c2b1a00</id>
  <link rel="alternate" href="http://127.0.0.1/notes/"/>
  <updated>2024-05-09T08:00:00Z</updated>
  <author><name>Ann Lee</name></author>
  <entry>
    <title>First light at the observatory</title>
    <id>urn:uuid:0b7c2f4e-5d6a-4c8b-9e1f-2a3b4c5d6e7f</id>
    <link rel="alternate" href="http://127.0.0.1/notes/first-light"/>
    <published>2024-05-09T08:00:00Z</published>
    <updated>2024-05-09T08:00:00Z</updated>
    <category term="Science"/>
    <category term="Space"/>
    <content type="html">&lt;p&gt;The new telescope saw &lt;em&gt;first light&lt;/em&gt; last night.&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Counting swifts</title>
    <id>http://127.0.0.1/notes/2</id>
    <link rel="alternate" href="http://127.0.0.1/notes/counting-swifts"/>
    <published>2024-05-08T06:45:00Z</published>
    <updated>2024-05-08T06:45:00Z</updated>
    <author><name>Bo Chen</name></author>
    <category term="Science"/>
    <content type="html">&lt;p&gt;Forty swifts came back to the tower this spring.&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Notes on the tide tables</title>
    <id>note-three</id>
    <link rel="alternate" href="http://127.0.0.1/notes/tide-tables"/>
    <published>2024-05-07T12:00:00Z</published>
    <updated>2024-05-07T12:00:00Z</updated>
    <category term="Ports"/>
    <content type="html">&lt;p&gt;Spring tides are two metres higher.&lt;/p&gt;</content>
  </entry>
</feed>
"#;

/// Articles in the two feeds.
const ARTICLES: usize = 7;

/// The fake model: it counts the requests it answers, and answers each with sections made from
/// the article's own title, so that every bilingual file differs from the others.
async fn completions(
    State(count): State<Arc<AtomicUsize>>,
    body: axum::Json<Value>,
) -> axum::Json<Value> {
    count.fetch_add(1, Ordering::SeqCst);
    let user = body.0["messages"][1]["content"]
        .as_str()
        .unwrap_or_default();
    // The user message ends with the request as JSON (the built-in prompt).
    let request: Value = user
        .split_once("The article, as JSON:\n")
        .and_then(|(_, request)| serde_json::from_str(request).ok())
        .unwrap_or(Value::Null);
    let title = request["title"].as_str().unwrap_or("untitled");
    let answer = json!({"sections": [
        {"language": "zh", "title": format!("译文：{title}"), "body": format!("这是《{title}》的译文。\n\n第二段。")},
        {"language": "en", "title": title, "body": format!("A summary of **{title}**.\n\nIt was reported here first.")},
    ]});
    axum::Json(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
    }))
}

/// Starts the fake model; returns its base URL and its request count.
async fn start_llm() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(Arc::clone(&count));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("llm server") });
    (base, count)
}

/// What a test set up: the servers (kept alive with it) and the `on_publish` marker file.
struct Site {
    _feeds: FeedServer,
    llm: Arc<AtomicUsize>,
    marker: PathBuf,
}

impl Site {
    fn llm_requests(&self) -> usize {
        self.llm.load(Ordering::SeqCst)
    }
}

/// A TOML string.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a JSON string is a TOML string")
}

/// Serves the two feeds and the fake model, and writes `config/gazette.toml` below `dir`: the
/// archive, feed and state next to `config/`, enrichment into Chinese, an `on_publish` command
/// that creates a marker file, and `archive_extra` / `feed_extra` lines in those tables.
async fn setup(dir: &Path, archive_extra: &str, feed_extra: &str) -> Site {
    let served = dir.join("served");
    std::fs::create_dir_all(&served).expect("served dir");
    std::fs::write(served.join("wire.xml"), WIRE_RSS).expect("wire feed");
    std::fs::write(served.join("notes.atom"), NOTES_ATOM).expect("notes feed");
    let feeds = FeedServer::start(&served).await;
    let (llm_url, llm) = start_llm().await;
    let marker = dir.join("published.marker");
    let marker_arg = toml_string(marker.to_str().expect("utf-8 temp path"));
    let config = format!(
        "[archive]\ndir = \"../archive\"\n{archive_extra}\n\
         [feed]\npath = \"../public/atom.xml\"\ntitle = \"Test\"\n\
         id = \"urn:uuid:5a0c1bde-3f4e-4c1a-9d7e-0a1b2c3d4e5f\"\n\
         self_url = \"http://127.0.0.1/atom.xml\"\non_publish = [\"touch\", {marker_arg}]\n{feed_extra}\n\
         [state]\nurl = {state}\n\
         [enrich]\nprovider = \"openai\"\nlanguages = [\"zh\"]\nbase_url = {llm}\n\
         api_key_env = \"{KEY_ENV}\"\nmodel = \"test-model\"\nrequests_per_minute = 60000\n\
         [[sources]]\nid = \"wire\"\nurl = {wire}\nauthor = \"desk\"\ntags = [\"news\"]\nlanguage = \"en\"\n\
         [[sources]]\nid = \"notes\"\nurl = {notes}\nlanguage = \"en\"\n",
        llm = toml_string(&llm_url),
        wire = toml_string(&feeds.url("/feeds/wire.xml")),
        notes = toml_string(&feeds.url("/feeds/notes.atom")),
        state = toml_string(&common::state_url(dir)),
    );
    std::fs::create_dir_all(dir.join("config")).expect("config dir");
    std::fs::write(dir.join("config/gazette.toml"), config).expect("write config");
    Site {
        _feeds: feeds,
        llm,
        marker,
    }
}

/// Runs the binary in `dir` with the model's key in the environment.
async fn run(dir: &Path, args: &[&str]) -> Output {
    gazette_with_env(dir, args, &[(KEY_ENV, KEY)]).await
}

/// Everything a run said, for assertion messages.
fn log(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    )
}

/// A first `fetch` that must archive and enrich every article.
async fn first_fetch(dir: &Path, site: &Site) {
    let fetch = run(dir, &["fetch"]).await;
    assert!(fetch.status.success(), "{}", log(&fetch));
    let files = archive_files(dir);
    assert_eq!(files.len(), ARTICLES, "{files:?}\n{}", log(&fetch));
    // Bilingual files are what a lost state must not cost again: each has an LLM section.
    for file in &files {
        let text = read_text(&dir.join("archive").join(file));
        assert!(
            text.contains("\n[原文链接]("),
            "{file} is not bilingual:\n{text}"
        );
    }
    assert_eq!(site.llm_requests(), ARTICLES, "one request per article");
}

/// Archive files relative to the archive folder, sorted.
fn archive_files(dir: &Path) -> Vec<String> {
    let archive = dir.join("archive");
    files_with_mtimes(&archive)
        .into_iter()
        .map(|(path, _)| {
            path.strip_prefix(&archive)
                .expect("below the archive")
                .to_str()
                .expect("utf-8 path")
                .to_owned()
        })
        .collect()
}

/// The archive file whose path contains `part` (exactly one must).
fn file_named(dir: &Path, part: &str) -> String {
    let matching: Vec<String> = archive_files(dir)
        .into_iter()
        .filter(|f| f.contains(part))
        .collect();
    assert_eq!(matching.len(), 1, "files named *{part}*: {matching:?}");
    matching[0].clone()
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One file as found: path, modification time and bytes.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    path: PathBuf,
    modified: SystemTime,
    bytes: Vec<u8>,
}

/// Every file below `dir`, with its time and bytes: equal snapshots mean nothing was created,
/// removed or rewritten (a rewrite with the same bytes still moves the time).
fn snapshot(dir: &Path) -> Vec<Snapshot> {
    files_with_mtimes(dir)
        .into_iter()
        .map(|(path, modified)| Snapshot {
            bytes: read_bytes(&path),
            path,
            modified,
        })
        .collect()
}

/// The paths of the files whose snapshots differ, for a readable message.
fn differences(before: &[Snapshot], after: &[Snapshot]) -> Vec<String> {
    let old: BTreeSet<&Path> = before.iter().map(|s| s.path.as_path()).collect();
    let mut out = Vec::new();
    for snap in before {
        match after.iter().find(|s| s.path == snap.path) {
            None => out.push(format!("removed {}", snap.path.display())),
            Some(s) if s.bytes != snap.bytes => out.push(format!("rewritten {}", s.path.display())),
            Some(s) if s.modified != snap.modified => {
                out.push(format!("touched {}", s.path.display()));
            }
            Some(_) => {}
        }
    }
    out.extend(
        after
            .iter()
            .filter(|s| !old.contains(s.path.as_path()))
            .map(|s| format!("created {}", s.path.display())),
    );
    out
}

/// The feed without its `<updated>` elements: what a recovered state may legitimately change
/// (it knows when a file last changed only from the file's time).
fn without_updated(feed: &str) -> String {
    let mut out = String::with_capacity(feed.len());
    let mut rest = feed;
    while let Some(start) = rest.find("<updated>") {
        let end = rest[start..]
            .find("</updated>")
            .map(|i| start + i + "</updated>".len())
            .expect("a closed <updated>");
        out.push_str(rest[..start].trim_end_matches([' ', '\t']));
        rest = rest[end..].strip_prefix('\n').unwrap_or(&rest[end..]);
    }
    out.push_str(rest);
    out
}

/// What the tests compare of one feed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FeedEntry {
    id: String,
    title: String,
    link: String,
    tags: BTreeSet<String>,
}

fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    node.children()
        .find(|c| c.has_tag_name(("http://www.w3.org/2005/Atom", name)))
        .and_then(|c| c.text())
        .unwrap_or_default()
        .to_owned()
}

fn link_href(node: roxmltree::Node<'_, '_>, rel: &str) -> String {
    node.children()
        .find(|c| {
            c.has_tag_name(("http://www.w3.org/2005/Atom", "link"))
                && c.attribute("rel") == Some(rel)
        })
        .and_then(|c| c.attribute("href"))
        .unwrap_or_default()
        .to_owned()
}

/// A feed's id, its `rel="self"` address and its entries, in order.
fn read_feed(path: &Path) -> (String, String, Vec<FeedEntry>) {
    let text = read_text(path);
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    let feed = doc.root_element();
    let entries = feed
        .children()
        .filter(|c| c.has_tag_name(("http://www.w3.org/2005/Atom", "entry")))
        .map(|entry| FeedEntry {
            id: child_text(entry, "id"),
            title: child_text(entry, "title"),
            link: link_href(entry, "alternate"),
            tags: entry
                .children()
                .filter(|c| c.has_tag_name(("http://www.w3.org/2005/Atom", "category")))
                .filter_map(|c| c.attribute("term"))
                .map(str::to_owned)
                .collect(),
        })
        .collect();
    (child_text(feed, "id"), link_href(feed, "self"), entries)
}

fn entry_ids(path: &Path) -> Vec<String> {
    read_feed(path).2.into_iter().map(|e| e.id).collect()
}

/// Front matter lines of an archive file (between the opening and the closing `---`).
fn front_matter(text: &str) -> Vec<&str> {
    let inner = text.strip_prefix("---\n").expect("opening ---");
    let end = inner.find("\n---\n").expect("closing ---");
    inner[..end].lines().collect()
}

#[tokio::test]
async fn a_lost_state_is_rebuilt_and_a_refetch_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let site = setup(dir, "", "").await;
    first_fetch(dir, &site).await;
    // The hook ran for the first feed; its absence later means the feed was not published.
    assert!(
        site.marker.is_file(),
        "on_publish did not run after the first fetch"
    );
    std::fs::remove_file(&site.marker).expect("remove the marker");
    let feed_path = dir.join("public/atom.xml");
    let archive_before = snapshot(&dir.join("archive"));
    let feed_before = read_text(&feed_path);
    let entries_before = read_feed(&feed_path).2;
    assert_eq!(entries_before.len(), ARTICLES, "{feed_before}");
    let requests = site.llm_requests();

    common::lose_state(dir);

    // An empty state must not replace the published feed with an empty one.
    let build = run(dir, &["build"]).await;
    assert!(!build.status.success(), "{}", log(&build));
    assert!(
        stderr(&build).contains("gazette rebuild"),
        "{}",
        log(&build)
    );
    assert_eq!(
        read_text(&feed_path),
        feed_before,
        "a refused build changed the feed"
    );
    assert!(
        !site.marker.exists(),
        "on_publish ran although nothing was published"
    );

    // Nor may a fetch archive every entry again over the bilingual files.
    let fetch = run(dir, &["fetch"]).await;
    assert!(!fetch.status.success(), "{}", log(&fetch));
    assert!(
        stderr(&fetch).contains("gazette rebuild"),
        "{}",
        log(&fetch)
    );
    assert_eq!(
        differences(&archive_before, &snapshot(&dir.join("archive"))),
        Vec::<String>::new(),
        "a refused fetch touched the archive"
    );
    assert_eq!(read_text(&feed_path), feed_before);
    assert_eq!(site.llm_requests(), requests);

    let rebuild = run(dir, &["rebuild"]).await;
    assert!(rebuild.status.success(), "{}", log(&rebuild));
    assert!(
        stdout(&rebuild).contains(&format!("{ARTICLES} articles recovered")),
        "{}",
        log(&rebuild)
    );

    // The re-fetch recognises every archived article: nothing new, nothing rewritten, nothing
    // asked of the model again.
    let refetch = run(dir, &["fetch", "--force"]).await;
    assert!(refetch.status.success(), "{}", log(&refetch));
    for line in [
        "wire: 0 new, 0 updated, 4 unchanged, 0 skipped",
        "notes: 0 new, 0 updated, 3 unchanged, 0 skipped",
    ] {
        assert!(stdout(&refetch).contains(line), "{line}\n{}", log(&refetch));
    }
    assert_eq!(
        differences(&archive_before, &snapshot(&dir.join("archive"))),
        Vec::<String>::new(),
        "the re-fetch after the rebuild created or rewrote files\n{}",
        log(&refetch)
    );
    assert_eq!(
        site.llm_requests(),
        requests,
        "the re-fetch asked the model again"
    );

    // The feed is the one published before the loss: same entries (ids, titles, links, order)
    // and the same content; only the `updated` times may move.
    assert_valid_atom(&feed_path);
    assert_eq!(read_feed(&feed_path).2, entries_before);
    assert_eq!(
        without_updated(&read_text(&feed_path)),
        without_updated(&feed_before)
    );

    let verify = run(dir, &["verify"]).await;
    assert!(verify.status.success(), "{}", log(&verify));
}

#[tokio::test]
async fn identity_keys_make_the_rebuild_exact() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let site = setup(dir, "identity_keys = true", "").await;
    first_fetch(dir, &site).await;
    // Every file names its identity right after `author:`: the entry's guid when it has one,
    // then its link.
    for file in archive_files(dir) {
        let text = read_text(&dir.join("archive").join(&file));
        let lines = front_matter(&text);
        let author = lines
            .iter()
            .position(|l| l.starts_with("author: "))
            .unwrap_or_else(|| panic!("{file}: no author line:\n{text}"));
        let guid = lines
            .get(author + 1)
            .is_some_and(|l| l.starts_with("guid: "));
        let link = lines
            .get(author + 1 + usize::from(guid))
            .is_some_and(|l| l.starts_with("link: "));
        assert!(link, "{file}: no link line after author:\n{text}");
        // Only the market report has no guid of its own.
        assert_eq!(
            guid,
            !file.contains("market-report"),
            "{file}: a guid line where the entry has none, or none where it has one:\n{text}"
        );
    }
    let budget = read_text(&dir.join("archive").join(file_named(dir, "council-passes")));
    assert!(
        budget.contains("\nguid: wire-0002\nlink: http://127.0.0.1/wire/council-budget\n"),
        "{budget}"
    );
    let feed_path = dir.join("public/atom.xml");
    let ids_before = entry_ids(&feed_path);
    assert_eq!(ids_before.len(), ARTICLES);
    let archive_before = snapshot(&dir.join("archive"));
    let requests = site.llm_requests();

    common::lose_state(dir);
    let rebuild = run(dir, &["rebuild"]).await;
    assert!(rebuild.status.success(), "{}", log(&rebuild));
    assert!(
        stdout(&rebuild).contains(&format!("{ARTICLES} articles recovered")),
        "{}",
        log(&rebuild)
    );

    // Before any fetch, the feed written from the rebuilt state already has every entry's id.
    let build = run(dir, &["build"]).await;
    assert!(build.status.success(), "{}", log(&build));
    assert_valid_atom(&feed_path);
    assert_eq!(
        entry_ids(&feed_path),
        ids_before,
        "the rebuilt state does not give the entries their ids"
    );

    let refetch = run(dir, &["fetch", "--force"]).await;
    assert!(refetch.status.success(), "{}", log(&refetch));
    assert_eq!(
        differences(&archive_before, &snapshot(&dir.join("archive"))),
        Vec::<String>::new(),
        "the re-fetch after the rebuild created or rewrote files\n{}",
        log(&refetch)
    );
    assert_eq!(site.llm_requests(), requests);
    assert_eq!(entry_ids(&feed_path), ids_before);
}

#[tokio::test]
async fn verify_finds_each_disagreement_and_repair_fixes_two() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let site = setup(dir, "", "").await;
    first_fetch(dir, &site).await;
    let clean = run(dir, &["verify"]).await;
    assert!(clean.status.success(), "{}", log(&clean));
    assert!(
        stdout(&clean).contains(&format!("{ARTICLES} articles checked: 0 disagree")),
        "{}",
        log(&clean)
    );

    let archive = dir.join("archive");
    let missing = file_named(dir, "first-light");
    let copied = file_named(dir, "council-passes");
    let edited = file_named(dir, "harbour-reopens");
    let broken = file_named(dir, "ferry-timetable");
    let missing_bytes = read_bytes(&archive.join(&missing));
    std::fs::remove_file(archive.join(&missing)).expect("delete a file");
    // An article of the source from elsewhere (another link), put in by hand: a file state
    // knows nothing of, which --repair adopts.
    let orphan = copied.replace(".md", "-moved-in.md");
    let moved_in = read_text(&archive.join(&copied)).replace(
        "http://127.0.0.1/wire/council-budget",
        "http://127.0.0.1/wire/council-budget-2023",
    );
    std::fs::write(archive.join(&orphan), moved_in).expect("add a file");
    // A plain copy of an archived file: an orphan too, which --repair must not adopt, since
    // the feed would then show the article twice.
    let copy = copied.replace(".md", "-copy.md");
    std::fs::copy(archive.join(&copied), archive.join(&copy)).expect("copy a file");
    // A word changed in the body, the front matter untouched: still an archive file.
    let original = read_text(&archive.join(&edited));
    let hand_edited = original.replacen("reported here first", "reported here at first", 1);
    assert_ne!(hand_edited, original, "the body has the word to change");
    std::fs::write(archive.join(&edited), &hand_edited).expect("edit a file");
    // The front matter's closing line removed: not an archive file any more.
    let text = read_text(&archive.join(&broken));
    let close = text["---\n".len()..]
        .find("\n---\n")
        .map(|i| i + "---\n".len())
        .expect("closing ---");
    let unreadable = format!("{}{}", &text[..close + 1], &text[close + "\n---\n".len()..]);
    std::fs::write(archive.join(&broken), &unreadable).expect("break a file");

    let found = run(dir, &["verify"]).await;
    assert_eq!(found.status.code(), Some(5), "{}", log(&found));
    let out = stdout(&found);
    for line in [
        format!("missing: {missing} "),
        format!("orphan: {orphan} "),
        format!("orphan: {copy} "),
        format!("edited: {edited} "),
        format!("unreadable: {broken}: "),
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(&line)),
            "no line {line:?}\n{}",
            log(&found)
        );
    }

    let repair = run(dir, &["verify", "--repair"]).await;
    assert_eq!(repair.status.code(), Some(5), "{}", log(&repair));
    for line in [
        format!("repaired missing: {missing} "),
        format!("repaired orphan: {orphan} "),
    ] {
        assert!(
            stdout(&repair).lines().any(|l| l.starts_with(&line)),
            "no line {line:?}\n{}",
            log(&repair)
        );
    }
    assert_eq!(
        read_bytes(&archive.join(&missing)),
        missing_bytes,
        "the missing file was not rendered back as it was"
    );
    assert_eq!(
        read_text(&archive.join(&edited)),
        hand_edited,
        "the edited file was overwritten"
    );
    assert_eq!(read_text(&archive.join(&broken)), unreadable);

    // The adopted article is in the feed once, the copy is not.
    let build = run(dir, &["build"]).await;
    assert!(build.status.success(), "{}", log(&build));
    let feed = read_text(&dir.join("public/atom.xml"));
    assert_eq!(
        feed.matches("href=\"http://127.0.0.1/wire/council-budget\"")
            .count(),
        1,
        "{feed}"
    );
    assert_eq!(
        feed.matches("href=\"http://127.0.0.1/wire/council-budget-2023\"")
            .count(),
        1,
        "{feed}"
    );

    // Only what a person must look at is left.
    let after = run(dir, &["verify"]).await;
    assert_eq!(after.status.code(), Some(5), "{}", log(&after));
    let findings: Vec<String> = stdout(&after)
        .lines()
        .filter(|l| !l.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_owned)
        .collect();
    assert_eq!(findings.len(), 3, "{}", log(&after));
    assert!(
        findings
            .iter()
            .any(|l| l.starts_with(&format!("orphan: {copy} "))),
        "{}",
        log(&after)
    );
    assert!(
        findings
            .iter()
            .any(|l| l.starts_with(&format!("edited: {edited} "))),
        "{}",
        log(&after)
    );
    assert!(
        findings
            .iter()
            .any(|l| l.starts_with(&format!("unreadable: {broken}: "))),
        "{}",
        log(&after)
    );
    assert_eq!(read_text(&archive.join(&edited)), hand_edited);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let site = setup(dir, "", "").await;
    first_fetch(dir, &site).await;
    let archive_before = snapshot(&dir.join("archive"));
    let feed_before = snapshot(&dir.join("public"));

    // A migration this build does not know, as a newer Gazette would have recorded it.
    let pool = common::state_pool(dir).await;
    sqlx::query(if common::on_sqlite() {
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', 1, x'00', 0)"
    } else {
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', true, '\\x00', 0)"
    })
    .execute(&pool)
    .await
    .expect("record a future migration");
    pool.close().await;

    let fetch = run(dir, &["fetch", "--force"]).await;
    assert_eq!(fetch.status.code(), Some(1), "{}", log(&fetch));
    assert!(
        stderr(&fetch).contains("written by a newer Gazette"),
        "{}",
        log(&fetch)
    );
    assert_eq!(
        differences(&archive_before, &snapshot(&dir.join("archive"))),
        Vec::<String>::new()
    );
    assert_eq!(
        differences(&feed_before, &snapshot(&dir.join("public"))),
        Vec::<String>::new()
    );
    assert_eq!(site.llm_requests(), ARTICLES);
}

#[tokio::test]
async fn build_writes_static_feeds_for_cron() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let site = setup(
        dir,
        "",
        "json = true\ntag_feeds = true\nsource_feeds = true",
    )
    .await;
    first_fetch(dir, &site).await;
    let public = dir.join("public");
    let merged_path = public.join("atom.xml");
    assert_valid_atom(&merged_path);
    let (merged_id, merged_self, merged) = read_feed(&merged_path);
    assert_eq!(merged.len(), ARTICLES);

    // JSON Feed: the merged feed's entries, in the same order.
    let json: Value =
        serde_json::from_slice(&read_bytes(&public.join("feed.json"))).expect("feed.json is JSON");
    let json_ids: Vec<&str> = json["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["id"].as_str())
        .collect();
    let merged_ids: Vec<&str> = merged.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(json_ids, merged_ids);

    // A feed for every tag the articles carry, and for nothing else.
    let tags: BTreeSet<String> = merged.iter().flat_map(|e| e.tags.clone()).collect();
    let expected: BTreeSet<String> = [
        "economy", "news", "politics", "ports", "science", "space", "weather",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(tags, expected);
    let tag_files: BTreeSet<String> = std::fs::read_dir(public.join("tags"))
        .expect("public/tags")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        tag_files,
        tags.iter()
            .map(|t| format!("{t}.xml"))
            .collect::<BTreeSet<_>>()
    );
    for tag in &tags {
        let path = public.join("tags").join(format!("{tag}.xml"));
        assert_valid_atom(&path);
        let got: Vec<String> = read_feed(&path).2.into_iter().map(|e| e.id).collect();
        let carrying: Vec<String> = merged
            .iter()
            .filter(|e| e.tags.contains(tag))
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(got, carrying, "tags/{tag}.xml");
    }

    // A feed per source, holding that source's entries.
    let source_files: BTreeSet<String> = std::fs::read_dir(public.join("sources"))
        .expect("public/sources")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        source_files,
        BTreeSet::from(["notes.xml".to_owned(), "wire.xml".to_owned()])
    );
    for source in ["wire", "notes"] {
        let path = public.join("sources").join(format!("{source}.xml"));
        assert_valid_atom(&path);
        let got: Vec<String> = read_feed(&path).2.into_iter().map(|e| e.id).collect();
        let own: Vec<String> = merged
            .iter()
            .filter(|e| e.link.starts_with(&format!("http://127.0.0.1/{source}/")))
            .map(|e| e.id.clone())
            .collect();
        assert!(!own.is_empty());
        assert_eq!(got, own, "sources/{source}.xml");
    }

    // A reader subscribed to the merged feed and two filtered ones sees three feeds.
    let (tag_id, tag_self, _) = read_feed(&public.join("tags/ports.xml"));
    let (source_id, source_self, _) = read_feed(&public.join("sources/wire.xml"));
    let ids = BTreeSet::from([&merged_id, &tag_id, &source_id]);
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(
        [
            merged_self.as_str(),
            tag_self.as_str(),
            source_self.as_str()
        ],
        [
            "http://127.0.0.1/atom.xml",
            "http://127.0.0.1/tags/ports.xml",
            "http://127.0.0.1/sources/wire.xml"
        ]
    );

    // Cron's `build` writes the same files again from state: nothing changes.
    let before = snapshot(&public);
    let build = run(dir, &["build"]).await;
    assert!(build.status.success(), "{}", log(&build));
    assert_eq!(
        differences(&before, &snapshot(&public)),
        Vec::<String>::new()
    );
}
