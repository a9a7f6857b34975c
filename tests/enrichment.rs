//! Enrichment end to end: the reference article, served as an Atom feed from 127.0.0.1 and
//! enriched by a local OpenAI-compatible server (or a local command), must come out as the
//! bilingual reference file; a misbehaving server must never lose or duplicate an article.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use common::reference;
use common::{
    FeedServer, assert_valid_atom, gazette_with_env, source, stderr, stdout, write_config,
};
use serde_json::{Value, json};

const KEY_ENV: &str = "GAZETTE_TEST_LLM_KEY";
const KEY: &str = "sk-test-5f1d0c7a9e-do-not-leak";
const REFERENCE_PATH: &str =
    "archive/ft/2024/05/13/us-and-china-to-hold-first-talks-to-reduce-risk-of-ai-miscalculation.md";

fn reference_answer() -> Value {
    json!({"sections": [
        {"language": "zh", "title": reference::ZH_TITLE, "body": reference::ZH_BODY},
        {"language": "en", "title": reference::EN_TITLE, "body": reference::EN_BODY},
    ]})
}

/// How the fake model answers its next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Good,
    InvalidJson,
    MissingLanguage,
    TooMany,
    Broken,
    Hang,
}

#[derive(Debug)]
struct Llm {
    mode: Mode,
    requests: Vec<(HeaderMap, Value)>,
}

type Shared = Arc<Mutex<Llm>>;

fn lock(llm: &Shared) -> std::sync::MutexGuard<'_, Llm> {
    llm.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn completions(
    State(llm): State<Shared>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> Response {
    let mode = {
        let mut llm = lock(&llm);
        llm.requests.push((headers, body.0.clone()));
        llm.mode
    };
    let content = match mode {
        Mode::Good => reference_answer().to_string(),
        Mode::InvalidJson => "Sure! Here is the translation: {not json".to_owned(),
        Mode::MissingLanguage => {
            json!({"sections": [reference_answer()["sections"][1].clone()]}).to_string()
        }
        Mode::TooMany => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "3600")],
                "slow down",
            )
                .into_response();
        }
        Mode::Broken => return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            reference_answer().to_string()
        }
    };
    axum::Json(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 800, "total_tokens": 2000},
    }))
    .into_response()
}

async fn start_llm(mode: Mode) -> (String, Shared) {
    let llm = Arc::new(Mutex::new(Llm {
        mode,
        requests: Vec::new(),
    }));
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(Arc::clone(&llm));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("llm server") });
    (base, llm)
}

/// An `[enrich]` table for the fake model at `llm_url`, plus `extra` lines.
fn openai_enrich(llm_url: &str, extra: &str) -> String {
    format!(
        "[enrich]\nprovider = \"openai\"\nlanguages = [\"zh\"]\nbase_url = \"{llm_url}\"\napi_key_env = \"{KEY_ENV}\"\n{extra}"
    )
}

/// The one-entry reference feed served over HTTP, and a config around it.
async fn setup(tmp: &Path, enrich: &str) -> FeedServer {
    let served = tmp.join("served");
    std::fs::create_dir_all(&served).expect("dir");
    std::fs::copy(
        common::repo().join("tests/fixtures/reference-entry.atom"),
        served.join("ft.atom"),
    )
    .expect("feed");
    let server = FeedServer::start(&served).await;
    let ft = source(
        "ft",
        &server.url("/feeds/ft.atom"),
        "tags = [\"world\"]\nlanguage = \"en\"\ncategory_tags = false",
    );
    write_config(tmp, &format!("{enrich}\n{ft}"));
    server
}

async fn run(tmp: &Path, args: &[&str], log: &mut String) -> std::process::Output {
    let output = gazette_with_env(tmp, args, &[(KEY_ENV, KEY)]).await;
    log.push_str(&stdout(&output));
    log.push_str(&stderr(&output));
    output
}

fn read(tmp: &Path, rel: &str) -> String {
    std::fs::read_to_string(tmp.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        common::repo()
            .join("tests/fixtures/archive-format")
            .join(name),
    )
    .expect("fixture")
}

async fn status(tmp: &Path, log: &mut String) -> Value {
    let output = run(tmp, &["status", "--json"], log).await;
    serde_json::from_slice(&output.stdout).expect("status JSON")
}

fn entry_updated(tmp: &Path) -> String {
    let feed = read(tmp, "public/atom.xml");
    let entry = &feed[feed.find("<entry>").expect("entry")..];
    let start = entry.find("<updated>").expect("updated") + "<updated>".len();
    entry[start..start + 29].to_owned()
}

fn files(tmp: &Path) -> usize {
    common::files_with_mtimes(&tmp.join("archive")).len()
}

#[tokio::test]
async fn the_openai_provider_writes_the_bilingual_reference_file() {
    let (llm_url, llm) = start_llm(Mode::Good).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let enrich = openai_enrich(&llm_url, "model = \"test-model\"");
    let _feeds = setup(tmp.path(), &enrich).await;
    let mut log = String::new();
    let fetch = run(tmp.path(), &["-vv", "fetch"], &mut log).await;
    assert!(fetch.status.success(), "{log}");
    assert_eq!(
        read(tmp.path(), REFERENCE_PATH),
        fixture("bilingual-zh-en.md")
    );
    assert_valid_atom(&tmp.path().join("public/atom.xml"));
    {
        let llm = lock(&llm);
        assert_eq!(llm.requests.len(), 1);
        let (headers, body) = &llm.requests[0];
        assert_eq!(
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(body["model"], "test-model");
        assert_eq!(body["response_format"]["type"], "json_object");
        let user = body["messages"][1]["content"]
            .as_str()
            .expect("user message");
        assert!(
            user.contains("\"targets\":[\"zh\"]")
                && user.contains("\"key\":\"https://ft.com/content/e10b034d"),
            "{user}"
        );
    }
    let totals = &status(tmp.path(), &mut log).await["enrichment"];
    assert_eq!(
        (
            totals["enriched"].as_i64(),
            totals["prompt_tokens"].as_i64()
        ),
        (Some(1), Some(1200))
    );

    // A forced re-fetch, a rebuild and another enrichment pass cost no request.
    run(tmp.path(), &["fetch", "--force"], &mut log).await;
    run(tmp.path(), &["build"], &mut log).await;
    run(tmp.path(), &["enrich", "--retry-failed"], &mut log).await;
    assert_eq!(lock(&llm).requests.len(), 1);
    assert_eq!(
        read(tmp.path(), REFERENCE_PATH),
        fixture("bilingual-zh-en.md")
    );
    assert_no_key_anywhere(tmp.path(), &log);
}

#[tokio::test]
async fn the_command_provider_writes_the_bilingual_reference_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let answer = tmp.path().join("config/answer.json");
    std::fs::create_dir_all(tmp.path().join("config")).expect("dir");
    std::fs::write(&answer, reference_answer().to_string()).expect("answer");
    let script = tmp.path().join("config/translate.py");
    std::fs::write(
        &script,
        "import json, sys, pathlib\n\
         request = json.load(sys.stdin)\n\
         assert request['targets'] == ['zh'] and request['language'] == 'en', request\n\
         pathlib.Path(sys.argv[1]).with_name('seen.json').write_text(json.dumps(request))\n\
         print(pathlib.Path(sys.argv[1]).read_text())\n",
    )
    .expect("script");
    let enrich = format!(
        "[enrich]\nprovider = \"command\"\nlanguages = [\"zh\"]\ncommand = [\"python3\", \"{}\", \"{}\"]",
        script.display(),
        answer.display()
    );
    let _feeds = setup(tmp.path(), &enrich).await;
    let mut log = String::new();
    let fetch = run(tmp.path(), &["fetch"], &mut log).await;
    assert!(fetch.status.success(), "{log}");
    assert_eq!(
        read(tmp.path(), REFERENCE_PATH),
        fixture("bilingual-zh-en.md")
    );
    let seen: Value = serde_json::from_str(&read(tmp.path(), "config/seen.json")).expect("request");
    let keys: Vec<&str> = seen
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "body",
            "description",
            "key",
            "language",
            "link",
            "source",
            "targets",
            "title"
        ]
    );
    assert_eq!(seen["body"], reference::EN_BODY);
}

#[tokio::test]
async fn a_misbehaving_model_never_loses_or_duplicates_an_article() {
    let (llm_url, llm) = start_llm(Mode::InvalidJson).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let enrich = openai_enrich(
        &llm_url,
        "timeout = \"1s\"\nbackoff = \"0s\"\nmax_attempts = 10",
    );
    let _feeds = setup(tmp.path(), &enrich).await;
    let mut log = String::new();
    let requests = |llm: &Shared| lock(llm).requests.len();

    // Invalid JSON, twice (the answer is sent back once with what is wrong): archived as is.
    let fetch = run(tmp.path(), &["fetch"], &mut log).await;
    assert!(fetch.status.success(), "{log}");
    assert_eq!(
        read(tmp.path(), REFERENCE_PATH),
        fixture("monolingual-en.md")
    );
    assert_eq!(requests(&llm), 2);
    let second_try = lock(&llm).requests[1].1.clone();
    let messages = second_try["messages"].as_array().expect("messages");
    assert_eq!(
        messages.len(),
        4,
        "the retry carries the invalid answer and the problem"
    );
    assert!(
        messages[3]["content"]
            .as_str()
            .is_some_and(|m| m.contains("not the answer JSON"))
    );
    let before = entry_updated(tmp.path());
    assert_eq!(
        status(tmp.path(), &mut log).await["enrichment"]["pending"],
        1
    );

    lock(&llm).mode = Mode::MissingLanguage;
    let missing = run(tmp.path(), &["enrich"], &mut log).await;
    assert_eq!(missing.status.code(), Some(3), "{log}");
    assert_eq!(requests(&llm), 4);

    // 429 with Retry-After: the next run leaves the server alone.
    lock(&llm).mode = Mode::TooMany;
    run(tmp.path(), &["enrich"], &mut log).await;
    assert_eq!(requests(&llm), 5);
    let waiting = status(tmp.path(), &mut log).await;
    let next = waiting["enrichment_errors"][0]["next_attempt_at"]
        .as_str()
        .expect("next attempt")
        .to_owned();
    let next = chrono::DateTime::parse_from_rfc3339(&next).expect("date");
    assert!(
        (next.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() >= 59,
        "Retry-After ignored: {next}"
    );
    run(tmp.path(), &["enrich"], &mut log).await;
    assert_eq!(requests(&llm), 5, "asked again before Retry-After");

    lock(&llm).mode = Mode::Broken;
    run(tmp.path(), &["enrich", "--retry-failed"], &mut log).await;
    assert_eq!(requests(&llm), 6);
    lock(&llm).mode = Mode::Hang;
    let hang = run(tmp.path(), &["enrich", "--retry-failed"], &mut log).await;
    assert!(stdout(&hang).contains("1 failed"), "{log}");
    assert!(
        status(tmp.path(), &mut log).await["enrichment_errors"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not answer within 1s"))
    );
    assert_eq!(
        read(tmp.path(), REFERENCE_PATH),
        fixture("monolingual-en.md"),
        "the file survived every failure"
    );

    // The server behaves: the same file is upgraded in place, and its feed entry is updated.
    lock(&llm).mode = Mode::Good;
    let good = run(tmp.path(), &["enrich", "--retry-failed"], &mut log).await;
    assert!(good.status.success(), "{log}");
    assert_eq!(
        read(tmp.path(), REFERENCE_PATH),
        fixture("bilingual-zh-en.md")
    );
    assert_eq!(files(tmp.path()), 1, "no duplicate file");
    assert_ne!(
        entry_updated(tmp.path()),
        before,
        "the feed entry's updated did not move"
    );
    let feed = read(tmp.path(), "public/atom.xml");
    assert!(
        feed.contains(&format!("<title>{}</title>", reference::ZH_TITLE)),
        "{feed}"
    );
    let after = requests(&llm);
    run(tmp.path(), &["fetch", "--force"], &mut log).await;
    run(tmp.path(), &["enrich", "--retry-failed"], &mut log).await;
    assert_eq!(
        requests(&llm),
        after,
        "an enriched article was asked about again"
    );
    assert_eq!(
        status(tmp.path(), &mut log).await["enrichment"]["pending"],
        0
    );
    assert_no_key_anywhere(tmp.path(), &log);
}

#[tokio::test]
async fn dry_run_prints_requests_without_the_key_and_changes_nothing() {
    let (llm_url, llm) = start_llm(Mode::Good).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let enrich = openai_enrich(&llm_url, "");
    let _feeds = setup(tmp.path(), &enrich).await;
    let mut log = String::new();
    run(tmp.path(), &["fetch", "--no-enrich"], &mut log).await;
    assert_eq!(
        read(tmp.path(), REFERENCE_PATH),
        fixture("monolingual-en.md")
    );
    let dry = run(tmp.path(), &["enrich", "--dry-run"], &mut log).await;
    assert!(dry.status.success(), "{log}");
    let lines: Vec<Value> = stdout(&dry)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["url"], format!("{llm_url}/chat/completions"));
    assert_eq!(lines[0]["body"]["messages"][0]["role"], "system");
    assert_eq!(lock(&llm).requests.len(), 0);
    assert_eq!(
        read(tmp.path(), REFERENCE_PATH),
        fixture("monolingual-en.md")
    );
    assert_no_key_anywhere(tmp.path(), &log);
}

#[tokio::test]
async fn a_source_can_opt_out() {
    let (llm_url, llm) = start_llm(Mode::Good).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).expect("dir");
    std::fs::copy(
        common::repo().join("tests/fixtures/reference-entry.atom"),
        served.join("ft.atom"),
    )
    .expect("feed");
    let server = FeedServer::start(&served).await;
    let config = format!(
        "{}{}",
        openai_enrich(&llm_url, ""),
        source(
            "ft",
            &server.url("/feeds/ft.atom"),
            "tags = [\"world\"]\nlanguage = \"en\"\nenrich = false"
        )
    );
    write_config(tmp.path(), &config);
    let mut log = String::new();
    let fetch = run(tmp.path(), &["fetch"], &mut log).await;
    assert!(fetch.status.success(), "{log}");
    assert_eq!(
        read(tmp.path(), REFERENCE_PATH),
        fixture("monolingual-en.md")
    );
    assert_eq!(lock(&llm).requests.len(), 0);
}

/// The key may reach the model server's Authorization header and nothing else.
fn assert_no_key_anywhere(tmp: &Path, log: &str) {
    assert!(!log.contains(KEY), "the API key appeared in the output");
    for (path, _) in common::files_with_mtimes(tmp) {
        let bytes = std::fs::read(&path).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(KEY),
            "the API key appeared in {}",
            path.display()
        );
    }
}

#[tokio::test]
async fn hold_waits_for_the_sections_before_the_first_write() {
    let (llm_url, llm) = start_llm(Mode::Good).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let enrich = openai_enrich(&llm_url, "hold = \"10s\"");
    let _feeds = setup(tmp.path(), &enrich).await;
    let mut log = String::new();
    let fetch = run(tmp.path(), &["fetch", "--no-enrich"], &mut log).await;
    assert!(fetch.status.success(), "{log}");
    assert_eq!(
        lock(&llm).requests.len(),
        0,
        "--no-enrich does not hold either"
    );
    std::fs::remove_dir_all(tmp.path().join("archive")).expect("clean archive");
    common::lose_state(tmp.path());

    let held = run(tmp.path(), &["fetch"], &mut log).await;
    assert!(held.status.success(), "{log}");
    assert_eq!(
        read(tmp.path(), REFERENCE_PATH),
        fixture("bilingual-zh-en.md")
    );
    assert_eq!(lock(&llm).requests.len(), 1);
    let totals = status(tmp.path(), &mut log).await;
    assert_eq!(totals["enrichment"]["enriched"], 1);
    assert_eq!(totals["enrichment"]["completion_tokens"], 800);
}

/// A day's work bigger than `daily_token_budget`: what the fake model counts as spent never
/// passes the budget, whatever runs at once (each request's largest cost is reserved before it
/// starts); the rest stays pending, and goes on the next UTC day (on a clock the test moves).
#[tokio::test]
async fn a_token_budget_is_never_passed_and_the_rest_waits_for_the_next_day() {
    use gazette::pipeline::{EnrichOptions, Pipeline, RunOptions};

    let (llm_url, llm) = start_llm(Mode::Good).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let items: String = (0..12)
        .map(|i| {
            format!(
                "<item><guid>story-{i}</guid><title>Story {i}</title>\
                 <link>http://127.0.0.1/story/{i}</link>\
                 <pubDate>Mon, 13 May 2024 {i:02}:00:00 +0000</pubDate>\
                 <description>The text of story {i}.</description></item>"
            )
        })
        .collect();
    std::fs::write(
        dir.path().join("feed.xml"),
        format!("<rss version=\"2.0\"><channel><title>T</title>{items}</channel></rss>"),
    )
    .expect("feed");
    // Each answer reports 2,000 tokens; a request may cost up to about 7,000 (its prompt
    // twice and three answers of 1,000), so 16,000 a day lets some through, never all.
    const BUDGET: u64 = 16_000;
    let config = format!(
        "{}\n[[sources]]\nid = \"a\"\nurl = \"feed.xml\"\n",
        openai_enrich(
            &llm_url,
            &format!(
                "requests_per_minute = 100000\nmax_tokens = 1000\ndaily_token_budget = {BUDGET}\n"
            )
        )
    );
    let settings = gazette::config::Settings::from_toml(&config, &dir.path().join("gazette.toml"))
        .expect("config");
    let store = gazette::store::Store::open(&settings.state_url)
        .await
        .expect("state");
    let fetcher = gazette::fetch::Fetcher::new(&settings.fetch).expect("client");
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
        .expect("date")
        .with_timezone(&chrono::Utc);
    let clock = gazette::clock::Clock::manual(start);
    let pipeline = Pipeline::new(Arc::new(settings), store.clone(), fetcher)
        .expect("pipeline")
        .with_clock(clock.clone());
    let sources = pipeline.settings().sources.clone();
    let run = RunOptions {
        force: true,
        no_enrich: true,
        ..RunOptions::default()
    };
    pipeline.refresh_all(&sources, run).await;
    let spent = || lock(&llm).requests.len() as u64 * 2_000;

    let first = pipeline
        .enrich_pending(&EnrichOptions::default())
        .await
        .expect("first day");
    assert!(first.enriched > 0, "{first:?}");
    assert!(
        first.over_budget > 0,
        "the budget left some pending: {first:?}"
    );
    assert!(spent() <= BUDGET, "spent {} of {BUDGET}", spent());
    // Asked again the same day, more goes while its largest cost fits, until none does; the
    // budget holds all along.
    loop {
        let again = pipeline
            .enrich_pending(&EnrichOptions::default())
            .await
            .expect("same day");
        assert!(spent() <= BUDGET, "spent {} of {BUDGET}", spent());
        if again.enriched == 0 {
            assert!(again.over_budget > 0, "some still wait: {again:?}");
            break;
        }
    }
    // Newest first: what the day's budget let through is the latest news.
    let mut stories: Vec<u32> = lock(&llm)
        .requests
        .iter()
        .filter_map(|(_, body)| {
            let prompt = body["messages"][1]["content"].as_str()?;
            let at = prompt.find("\"title\":\"Story ")? + "\"title\":\"Story ".len();
            prompt[at..].split('"').next()?.parse().ok()
        })
        .collect();
    stories.sort_unstable();
    let newest: Vec<u32> = (12 - stories.len() as u32..12).collect();
    assert_eq!(stories, newest, "newest first");
    let day_one = spent();
    let today = store.token_spend(&clock.now()).await.expect("spend");
    assert_eq!(u64::try_from(today.today).expect("n"), day_one);

    // The next UTC day, the rest goes on within a new day's budget.
    clock.advance(Duration::from_secs(24 * 60 * 60));
    let second = pipeline
        .enrich_pending(&EnrichOptions::default())
        .await
        .expect("second day");
    assert!(second.enriched > 0, "{second:?}");
    assert!(spent() - day_one <= BUDGET);
    let tomorrow = store.token_spend(&clock.now()).await.expect("spend");
    assert_eq!(u64::try_from(tomorrow.today).expect("n"), spent() - day_one);
    assert_eq!(
        u64::try_from(tomorrow.this_month).expect("n"),
        spent(),
        "both days are this month"
    );
    store.close().await;
}

/// `mode = "title"`: only the title is sent, and each translation section of the file is its
/// translated heading alone, followed by the original section as the feed gave it.
#[tokio::test]
async fn title_mode_sends_titles_and_writes_heading_only_translations() {
    let (llm_url, llm) = start_llm(Mode::Good).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let enrich = openai_enrich(&llm_url, "mode = \"title\"");
    let _feeds = setup(tmp.path(), &enrich).await;
    let mut log = String::new();
    let fetch = run(tmp.path(), &["fetch"], &mut log).await;
    assert!(fetch.status.success(), "{log}");
    {
        let llm = lock(&llm);
        assert_eq!(llm.requests.len(), 1);
        let user = llm.requests[0].1["messages"][1]["content"]
            .as_str()
            .expect("user message")
            .to_owned();
        assert!(user.contains("\"titles_only\":true"), "{user}");
        assert!(user.contains("\"body\":\"\""), "no body is sent: {user}");
        assert!(user.contains("\"description\":\"\""), "{user}");
    }
    let file = read(tmp.path(), REFERENCE_PATH);
    assert!(
        file.contains(&format!("# {} \n\n---\n\n# ", reference::ZH_TITLE)),
        "a heading-only translation, then the original section:\n{file}"
    );
    assert!(!file.contains(reference::ZH_BODY), "{file}");
    // The original section is the feed's own text, not the model's summary.
    let monolingual = fixture("monolingual-en.md");
    let original = &monolingual[monolingual.find("\n# ").expect("section")..];
    assert!(file.ends_with(original), "{file}\n---\n{original}");
}
