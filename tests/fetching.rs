//! Fetching against servers on 127.0.0.1 that behave well, politely, badly and hostilely. The
//! servers count what they receive, so the tests can tell what Gazette actually sent.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{gazette, gazette_with_env, source, stderr, stdout, write_config};

/// What the test server saw and what it serves.
#[derive(Default)]
struct Server {
    /// Requests per path.
    hits: HashMap<String, usize>,
    /// Whether each request to a path carried `If-None-Match` or `If-Modified-Since`.
    conditional: HashMap<String, Vec<bool>>,
    /// Feed bodies by name, changeable between runs.
    feeds: HashMap<String, String>,
    /// Responses the flaky route gives before it recovers.
    flaky_failures_left: usize,
}

type Shared = Arc<Mutex<Server>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, Server> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn rss(title_prefix: &str, guids: &[&str]) -> String {
    let items: String = guids
        .iter()
        .map(|g| {
            format!(
                "<item><guid>{g}</guid><title>{title_prefix} {g}</title><link>https://example.org/{g}</link>\
                 <pubDate>Mon, 13 May 2024 09:00:00 +0000</pubDate></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{title_prefix}</title>{items}</channel></rss>"
    )
}

fn etag_of(body: &str) -> String {
    format!(
        "\"{:x}\"",
        body.len() * 31 + body.bytes().map(usize::from).sum::<usize>()
    )
}

async fn feed_route(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let mut server = lock(&state);
    *server.hits.entry(name.clone()).or_default() += 1;
    let conditional = headers.contains_key(header::IF_NONE_MATCH)
        || headers.contains_key(header::IF_MODIFIED_SINCE);
    server
        .conditional
        .entry(name.clone())
        .or_default()
        .push(conditional);
    let Some(body) = server.feeds.get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = etag_of(&body);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::ETAG, etag),
            (
                header::LAST_MODIFIED,
                "Mon, 13 May 2024 09:00:00 GMT".to_owned(),
            ),
        ],
        body,
    )
        .into_response()
}

/// The same body with a new ETag every time, as some CDNs do.
async fn fickle_etag(State(state): State<Shared>) -> Response {
    let mut server = lock(&state);
    let hits = server.hits.entry("fickle".to_owned()).or_default();
    *hits += 1;
    let etag = format!("\"v{hits}\"");
    ([(header::ETAG, etag)], rss("Fickle", &["f1"])).into_response()
}

async fn count(state: &Shared, name: &str) {
    *lock(state).hits.entry(name.to_owned()).or_default() += 1;
}

async fn busy_429(State(state): State<Shared>) -> Response {
    count(&state, "busy429").await;
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, "7200")],
    )
        .into_response()
}

async fn busy_503(State(state): State<Shared>) -> Response {
    count(&state, "busy503").await;
    let at = (chrono::Utc::now() + chrono::Duration::hours(3))
        .to_rfc2822()
        .replace("+0000", "GMT");
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, at)]).into_response()
}

async fn gone(State(state): State<Shared>) -> Response {
    count(&state, "gone").await;
    StatusCode::GONE.into_response()
}

async fn flaky(State(state): State<Shared>) -> Response {
    let mut server = lock(&state);
    *server.hits.entry("flaky".to_owned()).or_default() += 1;
    if server.flaky_failures_left > 0 {
        server.flaky_failures_left -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    rss("Flaky", &["k1"]).into_response()
}

async fn redirect(State(state): State<Shared>, UrlPath(kind): UrlPath<String>) -> Response {
    count(&state, &format!("redirect-{kind}")).await;
    let (status, to) = match kind.as_str() {
        "permanent" => (StatusCode::MOVED_PERMANENTLY, "/feeds/moved"),
        "temporary" => (StatusCode::FOUND, "/feeds/temp-target"),
        "loop-a" => (StatusCode::FOUND, "/redirect/loop-b"),
        "loop-b" => (StatusCode::FOUND, "/redirect/loop-a"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (status, [(header::LOCATION, to)]).into_response()
}

/// `/chain/N` redirects to `/chain/N+1`, forever.
async fn chain(UrlPath(n): UrlPath<u32>) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/chain/{}", n + 1))],
    )
        .into_response()
}

/// One byte a second, for a minute.
async fn trickle() -> Response {
    let stream = futures::stream::unfold(0u32, |n| async move {
        if n >= 60 {
            return None;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some((Ok::<_, Infallible>(Bytes::from_static(b" ")), n + 1))
    });
    (
        [(header::CONTENT_TYPE, "application/rss+xml")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Bytes without end, as fast as they are taken.
async fn endless() -> Response {
    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
    let stream = futures::stream::repeat_with(move || Ok::<_, Infallible>(chunk.clone()));
    Body::from_stream(stream).into_response()
}

/// 100 MB of zeros gzipped to about 100 KB; made once, before any request, so that making it
/// (slow in a debug build) never counts against the fetch deadline under test.
static GZIP_BOMB: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..100 {
        encoder.write_all(&zeros).expect("gzip");
    }
    encoder.finish().expect("gzip")
});

async fn gzip_bomb() -> Response {
    (
        [
            (header::CONTENT_ENCODING, "gzip"),
            (header::CONTENT_TYPE, "application/rss+xml"),
        ],
        GZIP_BOMB.clone(),
    )
        .into_response()
}

/// Declares a body of 10000 bytes, sends 100, then resets the connection.
async fn spawn_resetting_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 10000\r\n\r\n";
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&[b'<'; 100]).await;
                // A zero linger turns the close into a reset (RST), which is the point here.
                #[allow(deprecated)]
                let _ = socket.set_linger(Some(Duration::ZERO));
                drop(socket);
            });
        }
    });
    addr
}

/// Anti-bot walls as their services answer: a challenge announced by a header, a captcha
/// page behind a 403, a challenge page served as 200; and a plain 403 for contrast.
async fn wall(UrlPath(kind): UrlPath<String>) -> Response {
    match kind.as_str() {
        "header" => (
            StatusCode::FORBIDDEN,
            [("cf-mitigated", "challenge"), ("retry-after", "600")],
            "<html><body>Checking your browser</body></html>",
        )
            .into_response(),
        "captcha" => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><head><script src=\"https://ct.captcha-delivery.com/c.js\"></script></head></html>",
        )
            .into_response(),
        "page" => (
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><html><head><title>Just a moment...</title></head>\
             <body><script src=\"/cdn-cgi/challenge-platform/h/b/orchestrate/jsch/v1\"></script></body></html>",
        )
            .into_response(),
        "blog" => (
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><html><head><title>A blog</title></head><body>Hello</body></html>",
        )
            .into_response(),
        _ => (StatusCode::FORBIDDEN, "no").into_response(),
    }
}

async fn start(state: Shared) -> String {
    std::sync::LazyLock::force(&GZIP_BOMB);
    let app = Router::new()
        .route("/feeds/{name}", get(feed_route))
        .route("/fickle", get(fickle_etag))
        .route("/busy429", get(busy_429))
        .route("/busy503", get(busy_503))
        .route("/gone", get(gone))
        .route("/flaky", get(flaky))
        .route("/redirect/{kind}", get(redirect))
        .route("/chain/{n}", get(chain))
        .route("/trickle", get(trickle))
        .route("/endless", get(endless))
        .route("/bomb", get(gzip_bomb))
        .route("/wall/{kind}", get(wall))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });
    format!("http://{addr}")
}

fn status_json(output: &std::process::Output) -> HashMap<String, serde_json::Value> {
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("status JSON");
    let rows = status["sources"].as_array().cloned().expect("sources");
    rows.into_iter()
        .map(|r| (r["id"].as_str().expect("id").to_owned(), r))
        .collect()
}

fn line<'a>(out: &'a str, id: &str) -> &'a str {
    let prefix = format!("{id}: ");
    out.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line for {id} in:\n{out}"))
}

fn hits(state: &Shared, name: &str) -> usize {
    lock(state).hits.get(name).copied().unwrap_or_default()
}

fn archive_count(dir: &Path) -> usize {
    common::files_with_mtimes(&dir.join("archive")).len()
}

#[tokio::test]
async fn conditional_get_makes_an_unchanged_run_cost_nothing() {
    let state = Shared::default();
    {
        let mut server = lock(&state);
        server.feeds.insert("a".to_owned(), rss("A", &["a1", "a2"]));
        server.feeds.insert("b".to_owned(), rss("B", &["b1"]));
        server.feeds.insert("always304".to_owned(), String::new());
    }
    let base = start(state.clone()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = [
        source("a", &format!("{base}/feeds/a"), ""),
        source("b", &format!("{base}/feeds/b"), ""),
        source("fickle", &format!("{base}/fickle"), ""),
    ]
    .concat();
    write_config(tmp.path(), &sources);

    let first = gazette(tmp.path(), &["fetch"]).await;
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    assert_eq!(archive_count(tmp.path()), 4);
    let before = common::files_with_mtimes(&tmp.path().join("archive"));

    let second = gazette(tmp.path(), &["fetch", "--force"]).await;
    assert!(
        second.status.success(),
        "{}{}",
        stdout(&second),
        stderr(&second)
    );
    let out = stdout(&second);
    assert_eq!(line(&out, "a"), "a: not modified (HTTP 304)");
    assert_eq!(line(&out, "b"), "b: not modified (HTTP 304)");
    assert_eq!(
        line(&out, "fickle"),
        "fickle: unchanged (same body as last time)"
    );
    {
        let server = lock(&state);
        assert_eq!(
            server.conditional["a"],
            vec![false, true],
            "the second request carries validators"
        );
        assert_eq!(server.conditional["b"], vec![false, true]);
    }
    assert_eq!(
        common::files_with_mtimes(&tmp.path().join("archive")),
        before,
        "nothing was written"
    );
    // The 304s and the unchanged body are recorded, together, by the end of the run.
    let status = gazette(tmp.path(), &["status", "--json"]).await;
    let status: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("status --json prints JSON");
    let last = |id: &str| {
        let entry = status["sources"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["id"] == id))
            .unwrap_or_else(|| panic!("no status for {id}: {status}"));
        (
            entry["last_status"].as_str().unwrap_or_default().to_owned(),
            entry["last_http_status"].as_u64(),
        )
    };
    assert_eq!(last("a"), ("not-modified".to_owned(), Some(304)));
    assert_eq!(last("b"), ("not-modified".to_owned(), Some(304)));
    assert_eq!(last("fickle"), ("same-body".to_owned(), Some(200)));

    lock(&state)
        .feeds
        .insert("a".to_owned(), rss("A", &["a1", "a2", "a3"]));
    let third = gazette(tmp.path(), &["fetch", "--force"]).await;
    assert!(third.status.success(), "{}", stderr(&third));
    assert_eq!(
        line(&stdout(&third), "a"),
        "a: 1 new, 0 updated, 2 unchanged, 0 skipped"
    );
    assert_eq!(archive_count(tmp.path()), 5);
}

#[tokio::test]
async fn a_304_to_an_unconditional_request_is_not_an_error() {
    let state = Shared::default();
    let base = start(state.clone()).await;
    let app = Router::new().route("/", get(|| async { StatusCode::NOT_MODIFIED }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let odd = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });
    let tmp = tempfile::tempdir().expect("tempdir");
    write_config(tmp.path(), &source("odd", &odd, ""));
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert_eq!(line(&stdout(&run), "odd"), "odd: not modified (HTTP 304)");
    drop(base);
}

#[tokio::test]
async fn retry_after_back_off_and_gone_are_honoured() {
    let state = Shared::default();
    lock(&state).flaky_failures_left = 2;
    let base = start(state.clone()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = [
        source("busy429", &format!("{base}/busy429"), ""),
        source("busy503", &format!("{base}/busy503"), ""),
        source("gone", &format!("{base}/gone"), ""),
        source("flaky", &format!("{base}/flaky"), "interval = \"10m\""),
    ]
    .concat();
    write_config(tmp.path(), &sources);

    let first = gazette(tmp.path(), &["fetch"]).await;
    assert_eq!(first.status.code(), Some(3), "{}", stdout(&first));
    let out = stdout(&first);
    assert!(line(&out, "busy429").contains("HTTP 429"), "{out}");
    assert!(line(&out, "gone").contains("HTTP 410"), "{out}");
    let now = chrono::Utc::now();
    let status = status_json(&gazette(tmp.path(), &["status", "--json"]).await);
    let due_in = |id: &str| {
        let due = status[id]["next_due_at"].as_str().expect("next due");
        (chrono::DateTime::parse_from_rfc3339(due)
            .expect("date")
            .with_timezone(&chrono::Utc)
            - now)
            .num_seconds()
    };
    assert!(
        (7100..=7300).contains(&due_in("busy429")),
        "Retry-After: 7200 gave {}",
        due_in("busy429")
    );
    assert!(
        (10_700..=10_900).contains(&due_in("busy503")),
        "Retry-After date gave {}",
        due_in("busy503")
    );
    assert!(
        (530..=670).contains(&due_in("flaky")),
        "first back-off {}",
        due_in("flaky")
    );
    assert_eq!(
        status["gone"]["disabled_reason"],
        "gone: the server answered 410"
    );

    // Not due, and disabled: nothing reaches the servers.
    let second = gazette(tmp.path(), &["fetch"]).await;
    assert!(second.status.success(), "{}", stdout(&second));
    assert!(
        line(&stdout(&second), "gone").contains("disabled"),
        "{}",
        stdout(&second)
    );
    assert!(line(&stdout(&second), "busy429").contains("not due until"));
    assert_eq!(
        (
            hits(&state, "busy429"),
            hits(&state, "busy503"),
            hits(&state, "gone")
        ),
        (1, 1, 1)
    );

    // The flaky source fails again with a longer back-off, then recovers and resets.
    let third = gazette(tmp.path(), &["fetch", "--force", "--source", "flaky"]).await;
    assert_eq!(third.status.code(), Some(3));
    let now = chrono::Utc::now();
    let status = status_json(&gazette(tmp.path(), &["status", "--json"]).await);
    let flaky_due =
        chrono::DateTime::parse_from_rfc3339(status["flaky"]["next_due_at"].as_str().expect("due"))
            .expect("date");
    let second_backoff = (flaky_due.with_timezone(&chrono::Utc) - now).num_seconds();
    assert!(
        (1070..=1330).contains(&second_backoff),
        "second back-off {second_backoff}"
    );
    assert_eq!(status["flaky"]["consecutive_failures"], 2);
    let fourth = gazette(tmp.path(), &["fetch", "--force", "--source", "flaky"]).await;
    assert!(fourth.status.success(), "{}", stdout(&fourth));
    let status = status_json(&gazette(tmp.path(), &["status", "--json"]).await);
    assert_eq!(status["flaky"]["consecutive_failures"], 0);
    assert_eq!(status["flaky"]["last_error"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_permanent_redirect_is_recorded_and_used_next_time() {
    let state = Shared::default();
    {
        let mut server = lock(&state);
        server
            .feeds
            .insert("moved".to_owned(), rss("Moved", &["m1"]));
        server
            .feeds
            .insert("temp-target".to_owned(), rss("Temp", &["t1"]));
    }
    let base = start(state.clone()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = [
        source("perm", &format!("{base}/redirect/permanent"), ""),
        source("temp", &format!("{base}/redirect/temporary"), ""),
    ]
    .concat();
    write_config(tmp.path(), &sources);
    for _ in 0..2 {
        let run = gazette(tmp.path(), &["fetch", "--force"]).await;
        assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    }
    assert_eq!(
        hits(&state, "redirect-permanent"),
        1,
        "the second fetch goes to the new URL"
    );
    assert_eq!(hits(&state, "moved"), 2);
    assert_eq!(
        hits(&state, "redirect-temporary"),
        2,
        "a temporary redirect is followed each time"
    );
    let status = status_json(&gazette(tmp.path(), &["status", "--json"]).await);
    assert_eq!(status["perm"]["moved_to"], format!("{base}/feeds/moved"));
    assert_eq!(status["temp"]["moved_to"], serde_json::Value::Null);
    let text = stdout(&gazette(tmp.path(), &["status", "--long"]).await);
    assert!(
        text.contains(&format!("moved to       {base}/feeds/moved")),
        "{text}"
    );
}

#[tokio::test]
async fn hostile_servers_fail_alone_with_clear_errors() {
    let state = Shared::default();
    lock(&state)
        .feeds
        .insert("good".to_owned(), rss("Good", &["g1", "g2"]));
    let base = start(state.clone()).await;
    let reset = spawn_resetting_server().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = [
        "[fetch]\ntimeout = \"3s\"\nmax_body = \"1MiB\"\n".to_owned(),
        source("good", &format!("{base}/feeds/good"), ""),
        source("trickle", &format!("{base}/trickle"), ""),
        source("endless", &format!("{base}/endless"), ""),
        source("bomb", &format!("{base}/bomb"), ""),
        source("chain", &format!("{base}/chain/0"), ""),
        source("loop", &format!("{base}/redirect/loop-a"), ""),
        source("reset", &format!("http://{reset}/feed.xml"), ""),
    ]
    .concat();
    write_config(tmp.path(), &sources);
    let started = std::time::Instant::now();
    let run = gazette(tmp.path(), &["fetch"]).await;
    let out = stdout(&run);
    assert_eq!(run.status.code(), Some(3), "{out}{}", stderr(&run));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a hostile server held the run"
    );
    assert_eq!(
        line(&out, "good"),
        "good: 2 new, 0 updated, 0 unchanged, 0 skipped"
    );
    assert!(line(&out, "trickle").contains("timed out"), "{out}");
    assert!(
        line(&out, "endless").contains("larger than the 1048576 byte limit"),
        "{out}"
    );
    assert!(
        line(&out, "bomb").contains("larger than the 1048576 byte limit"),
        "{out}"
    );
    assert!(
        line(&out, "chain").contains("too many redirects (more than 5)"),
        "{out}"
    );
    assert!(line(&out, "loop").contains("redirect loop"), "{out}");
    assert!(
        line(&out, "reset").starts_with("reset: failed: fetching"),
        "{out}"
    );
    assert!(
        out.contains(", 6 failed;") && out.contains("\n7 sources, "),
        "{out}"
    );
}

fn gbk_feed() -> Vec<u8> {
    let xml = "<?xml version=\"1.0\" encoding=\"GBK\"?><rss version=\"2.0\"><channel><title>新闻</title>\
               <item><guid>g1</guid><title>中国经济增长放缓</title><link>https://example.org/g1</link></item></channel></rss>";
    encoding_rs::GBK.encode(xml).0.into_owned()
}

fn utf16_feed() -> Vec<u8> {
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><rss version=\"2.0\"><channel><title>新闻</title>\
               <item><guid>u1</guid><title>人工智能会谈在日内瓦举行</title><link>https://example.org/u1</link></item></channel></rss>";
    let mut bytes = vec![0xff, 0xfe];
    for unit in xml.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    bytes
}

#[tokio::test]
async fn gbk_and_utf16_feeds_archive_correct_chinese_titles() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).expect("dir");
    std::fs::write(served.join("gbk.xml"), gbk_feed()).expect("gbk");
    std::fs::write(served.join("utf16.xml"), utf16_feed()).expect("utf16");
    let server = common::FeedServer::start(&served).await;
    let sources = [
        source("gbk", &server.url("/feeds/gbk.xml"), ""),
        source("utf16", &server.url("/feeds/utf16.xml"), ""),
    ]
    .concat();
    write_config(tmp.path(), &sources);
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let read = |rel: &str| {
        let files = common::files_with_mtimes(&tmp.path().join("archive").join(rel));
        assert_eq!(files.len(), 1, "{files:?}");
        std::fs::read_to_string(&files[0].0).expect("utf-8 file")
    };
    let gbk = read("gbk");
    assert!(gbk.contains("title: 中国经济增长放缓\n"), "{gbk}");
    let utf16 = read("utf16");
    assert!(
        utf16.contains("title: 人工智能会谈在日内瓦举行\n"),
        "{utf16}"
    );
}

#[tokio::test]
async fn entity_bombs_and_external_entities_do_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let secret = tmp.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-MARKER").expect("secret");
    let mut laughs =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n<!ENTITY lol \"lol\">\n");
    for i in 1..=9 {
        let previous = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        laughs.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&{previous};").repeat(10)
        ));
    }
    laughs.push_str("]>\n<rss version=\"2.0\"><channel><title>Laughs</title><item><guid>l1</guid><title>Laugh &lol9;</title><link>https://example.org/l1</link></item></channel></rss>");
    let xxe = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [ <!ENTITY xxe SYSTEM \"file://{}\"> ]>\n\
         <rss version=\"2.0\"><channel><title>XXE</title><item><guid>x1</guid><title>Leak &xxe;</title>\
         <link>https://example.org/x1</link><description>&xxe;</description></item></channel></rss>",
        secret.display()
    );
    let feeds = tmp.path().join("feeds");
    std::fs::create_dir_all(&feeds).expect("dir");
    std::fs::write(feeds.join("laughs.xml"), laughs).expect("laughs");
    std::fs::write(feeds.join("xxe.xml"), xxe).expect("xxe");
    let sources = [
        source("laughs", "../feeds/laughs.xml", ""),
        source("xxe", "../feeds/xxe.xml", ""),
    ]
    .concat();
    write_config(tmp.path(), &sources);
    let run = gazette(tmp.path(), &["fetch"]).await;
    let out = stdout(&run);
    for id in ["laughs", "xxe"] {
        let result = line(&out, id);
        assert!(
            result.contains("1 new") || result.contains("failed"),
            "{result}"
        );
    }
    let mut everything = out.clone() + &stderr(&run);
    for (path, _) in common::files_with_mtimes(tmp.path()) {
        if path.starts_with(&feeds) || path == secret {
            continue;
        }
        everything.push_str(&String::from_utf8_lossy(
            &std::fs::read(&path).expect("read"),
        ));
    }
    assert!(
        !everything.contains("TOP-SECRET-MARKER"),
        "file content leaked"
    );
    assert!(!everything.contains("lollollol"), "an entity was expanded");
    let archive_bytes: u64 = common::files_with_mtimes(&tmp.path().join("archive"))
        .iter()
        .map(|(p, _)| std::fs::metadata(p).expect("meta").len())
        .sum();
    assert!(
        archive_bytes < 10_000,
        "archive grew to {archive_bytes} bytes"
    );
    // The unknown entity stays literal text, and is escaped again in the XML output.
    assert!(line(&out, "laughs").contains("1 new"), "{out}");
    let feed = std::fs::read_to_string(tmp.path().join("public/atom.xml")).expect("feed");
    assert!(feed.contains("<title>Laugh &amp;lol9;</title>"), "{feed}");
}

#[tokio::test]
async fn per_source_headers_and_user_agent_are_sent() {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let record = Arc::clone(&seen);
    let app = Router::new().route(
        "/feed",
        get(move |headers: HeaderMap| {
            let record = Arc::clone(&record);
            async move {
                record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(headers);
                rss("H", &["h1"])
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/feed", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = [
        source("plain", &url, ""),
        source("custom", &url, "user_agent = \"FriendlyBot/1.0\"\nheaders = { Cookie = \"consent=yes\", Authorization = \"Bearer t0ken\" }"),
    ]
    .concat();
    write_config(tmp.path(), &sources);
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    let seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let agents: Vec<&str> = seen
        .iter()
        .filter_map(|h| h.get(header::USER_AGENT)?.to_str().ok())
        .collect();
    assert!(agents.contains(&"FriendlyBot/1.0"), "{agents:?}");
    assert!(
        agents
            .iter()
            .any(|a| a.starts_with(&format!("Gazette/{}", env!("CARGO_PKG_VERSION")))),
        "{agents:?}"
    );
    assert!(
        seen.iter()
            .any(|h| h.get(header::COOKIE).is_some_and(|c| c == "consent=yes"))
    );
    assert!(seen.iter().any(|h| {
        h.get(header::AUTHORIZATION)
            .is_some_and(|c| c == "Bearer t0ken")
    }));
}

#[tokio::test]
async fn http_proxy_and_no_proxy_are_honoured() {
    let proxied: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&proxied);
    let proxy = Router::new().fallback(move |uri: axum::http::Uri| {
        let record = Arc::clone(&record);
        async move {
            record
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(uri.to_string());
            rss("Proxied", &["p1"])
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, proxy).await.expect("proxy") });
    // The source's own port has nothing listening: only the proxy can answer.
    let target = format!("http://127.0.0.1:{}/feed.xml", common::closed_port());
    let tmp = tempfile::tempdir().expect("tempdir");
    write_config(tmp.path(), &source("viaproxy", &target, ""));

    let run = gazette_with_env(tmp.path(), &["fetch"], &[("HTTP_PROXY", &proxy_url)]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert_eq!(
        *proxied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        vec![target]
    );

    let direct = gazette_with_env(
        tmp.path(),
        &["fetch", "--force"],
        &[("HTTP_PROXY", &proxy_url), ("NO_PROXY", "127.0.0.1")],
    )
    .await;
    assert_eq!(direct.status.code(), Some(3), "{}", stdout(&direct));
    assert!(line(&stdout(&direct), "viaproxy").contains("could not connect"));
    assert_eq!(
        proxied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len(),
        1
    );
}

#[tokio::test]
async fn validators_are_kept_only_after_the_archive_is_written() {
    let state = Shared::default();
    lock(&state)
        .feeds
        .insert("a".to_owned(), rss("A", &["a1", "a2"]));
    let base = start(state.clone()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    write_config(tmp.path(), &source("a", &format!("{base}/feeds/a"), ""));
    // A file where the archive folder should be: writing the articles fails half way.
    std::fs::write(tmp.path().join("archive"), "in the way").expect("blocker");
    let broken = gazette(tmp.path(), &["fetch"]).await;
    assert_eq!(broken.status.code(), Some(3), "{}", stdout(&broken));
    let status = status_json(&gazette(tmp.path(), &["status", "--json"]).await);
    assert_eq!(
        status["a"]["has_validators"], false,
        "validators were stored for unarchived entries"
    );

    std::fs::remove_file(tmp.path().join("archive")).expect("unblock");
    let retry = gazette(tmp.path(), &["fetch", "--force"]).await;
    assert!(
        retry.status.success(),
        "{}{}",
        stdout(&retry),
        stderr(&retry)
    );
    assert_eq!(
        line(&stdout(&retry), "a"),
        "a: 2 new, 0 updated, 0 unchanged, 0 skipped"
    );
    assert_eq!(
        lock(&state).conditional["a"],
        vec![false, false],
        "the retry must be a full fetch"
    );
    assert_eq!(archive_count(tmp.path()), 2);
}

#[tokio::test]
async fn the_run_deadline_stops_waiting_for_slow_sources() {
    let state = Shared::default();
    lock(&state)
        .feeds
        .insert("good".to_owned(), rss("Good", &["g1"]));
    let base = start(state.clone()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = [
        "[fetch]\ntimeout = \"60s\"\nrun_deadline = \"2s\"\n".to_owned(),
        source("good", &format!("{base}/feeds/good"), ""),
        source("slow", &format!("{base}/trickle"), ""),
    ]
    .concat();
    write_config(tmp.path(), &sources);
    let started = std::time::Instant::now();
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the deadline did not end the run"
    );
    let out = stdout(&run);
    assert_eq!(run.status.code(), Some(3), "{out}");
    assert!(line(&out, "good").contains("1 new"), "{out}");
    assert!(
        line(&out, "slow").contains("the run's deadline passed"),
        "{out}"
    );
}

#[tokio::test]
async fn fetch_due_lists_what_would_run() {
    let state = Shared::default();
    lock(&state).feeds.insert("a".to_owned(), rss("A", &["a1"]));
    let base = start(state.clone()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = [
        source("a", &format!("{base}/feeds/a"), "interval = \"2h\""),
        source("b", &format!("{base}/feeds/b"), ""),
    ]
    .concat();
    write_config(tmp.path(), &sources);
    let before = gazette(tmp.path(), &["fetch", "--due"]).await;
    assert!(before.status.success(), "{}", stderr(&before));
    assert!(line(&stdout(&before), "a").contains("due now (never fetched)"));
    assert_eq!(hits(&state, "a"), 0, "--due fetches nothing");
    gazette(tmp.path(), &["fetch", "--source", "a"]).await;
    let after = stdout(&gazette(tmp.path(), &["fetch", "--due"]).await);
    assert!(line(&after, "a").contains("due at "), "{after}");
    assert!(line(&after, "b").contains("due now"), "{after}");
}

#[tokio::test]
async fn requests_to_one_host_are_capped() {
    #[derive(Default)]
    struct Gauge {
        now: usize,
        max: usize,
    }
    let gauge: Arc<Mutex<Gauge>> = Arc::default();
    let tracked = Arc::clone(&gauge);
    let app = Router::new().route(
        "/slow/{n}",
        get(move |UrlPath(n): UrlPath<u32>| {
            let gauge = Arc::clone(&tracked);
            async move {
                {
                    let mut g = gauge
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    g.now += 1;
                    g.max = g.max.max(g.now);
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                gauge
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .now -= 1;
                rss("Slow", &[&format!("s{n}")])
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = "[fetch]\nconcurrency = 16\nper_host = 2\n".to_owned();
    for n in 0..6 {
        config.push_str(&source(&format!("s{n}"), &format!("{base}/slow/{n}"), ""));
    }
    write_config(tmp.path(), &config);
    let run = gazette(tmp.path(), &["fetch"]).await;
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let max = gauge
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .max;
    assert_eq!(max, 2, "requests in flight to one host");
}

#[tokio::test]
async fn the_feeds_ttl_is_honoured_also_when_it_answers_304() {
    let state = Shared::default();
    let with_ttl = rss("T", &["t1"]).replace("<channel>", "<channel><ttl>120</ttl>");
    lock(&state).feeds.insert("ttl".to_owned(), with_ttl);
    let base = start(state.clone()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    write_config(tmp.path(), &source("ttl", &format!("{base}/feeds/ttl"), ""));
    for args in [&["fetch"][..], &["fetch", "--force"][..]] {
        let run = gazette(tmp.path(), args).await;
        assert!(run.status.success(), "{}", stderr(&run));
        let now = chrono::Utc::now();
        let status = status_json(&gazette(tmp.path(), &["status", "--json"]).await);
        let due = status["ttl"]["next_due_at"].as_str().expect("due");
        let due = chrono::DateTime::parse_from_rfc3339(due).expect("date");
        let minutes = (due.with_timezone(&chrono::Utc) - now).num_minutes();
        assert!(
            (118..=120).contains(&minutes),
            "{args:?}: due in {minutes} minutes"
        );
    }
    assert_eq!(
        line(
            &stdout(&gazette(tmp.path(), &["fetch", "--force"]).await),
            "ttl"
        ),
        "ttl: not modified (HTTP 304)"
    );
}

#[tokio::test]
async fn articles_held_back_by_max_per_run_come_in_later_runs_despite_etags() {
    let state = Shared::default();
    lock(&state)
        .feeds
        .insert("many".to_owned(), rss("Many", &["m1", "m2", "m3"]));
    let base = start(state.clone()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    write_config(
        tmp.path(),
        &source(
            "many",
            &format!("{base}/feeds/many"),
            "filters = { max_per_run = 1 }",
        ),
    );
    for expected in ["1 new", "1 new", "1 new", "not modified (HTTP 304)"] {
        let run = gazette(tmp.path(), &["fetch", "--force"]).await;
        assert!(run.status.success(), "{}", stderr(&run));
        let out = stdout(&run);
        assert!(
            line(&out, "many").contains(expected),
            "expected {expected:?}:\n{out}"
        );
    }
    assert_eq!(archive_count(tmp.path()), 3);
}

/// A feed behind an anti-bot wall is reported as such, with what may help, in the run's line
/// and in `status`; a plain 403 stays a 403, and an HTML page without a wall stays "not a feed".
#[tokio::test]
async fn anti_bot_walls_are_named_with_a_hint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let base = start(Shared::default()).await;
    let sources: String = ["header", "captcha", "page", "plain", "blog"]
        .iter()
        .map(|kind| source(kind, &format!("{base}/wall/{kind}"), ""))
        .collect();
    write_config(dir, &sources);
    let run = gazette(dir, &["fetch"]).await;
    let out = stdout(&run);
    assert_eq!(run.status.code(), Some(3), "{out}{}", stderr(&run));
    for (kind, wall) in [
        ("header", "Cloudflare challenge, HTTP 403"),
        ("captcha", "DataDome captcha, HTTP 403"),
        ("page", "Cloudflare challenge)"),
    ] {
        let line = line(&out, kind);
        assert!(line.contains(&format!("anti-bot wall ({wall}")), "{line}");
        assert!(line.contains("User-Agent"), "the hint: {line}");
        assert!(!line.contains("not a feed"), "{line}");
    }
    let plain = line(&out, "plain");
    assert!(
        plain.contains("HTTP 403") && !plain.contains("anti-bot"),
        "{plain}"
    );
    let blog = line(&out, "blog");
    assert!(
        blog.contains("not a feed") && !blog.contains("anti-bot"),
        "{blog}"
    );

    let status = gazette(dir, &["status", "--json"]).await;
    let rows = status_json(&status);
    for kind in ["header", "captcha", "page"] {
        assert_eq!(rows[kind]["last_error_kind"], "anti-bot", "{}", rows[kind]);
        let error = rows[kind]["last_error"].as_str().expect("error");
        assert!(error.contains("anti-bot wall"), "{error}");
    }
    assert_eq!(rows["plain"]["last_error_kind"], "http-403");
    // The challenge's Retry-After is honoured like a 429's: not due for ten minutes.
    let due = rows["header"]["next_due_at"].as_str().expect("next due");
    let due = chrono::DateTime::parse_from_rfc3339(due).expect("a date");
    assert!(
        due > chrono::Utc::now() + chrono::Duration::seconds(500),
        "{due}"
    );
}
