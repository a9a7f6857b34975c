//! What an operator meets around the work itself: the log under cron and at a terminal, error
//! messages, output into a closed pipe. Everything runs the real binary.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{gazette, gazette_with_env, source, stderr, write_config};

/// A config whose one source is a missing file: every fetch logs a failure.
fn failing_config(dir: &Path) {
    write_config(
        dir,
        &source("gone", &dir.join("missing.xml").display().to_string(), ""),
    );
}

/// Whether `text` holds an SGR sequence (`ESC [ ... m`): colour or another text style. The
/// progress bar's line erasing (`ESC [ 2K`) is not colour.
fn coloured(text: &str) -> bool {
    text.split("\u{1b}[").skip(1).any(|rest| {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(rest.len());
        rest[end..].starts_with('m')
    })
}

/// Runs `gazette -v fetch --force` under a pseudo-terminal (util-linux `script`), as a person
/// at a terminal would; returns what the terminal showed.
fn at_a_terminal(dir: &Path, env: &[(&str, &str)]) -> String {
    let bin = env!("CARGO_BIN_EXE_gazette");
    let mut command = Command::new("script");
    command
        .args([
            "-q",
            "-e",
            "-c",
            &format!("{bin} -v fetch --force"),
            "/dev/null",
        ])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let output = match command.output() {
        Ok(output) => output,
        Err(e) => {
            panic!("util-linux `script` is needed for this test (apt-get install bsdutils): {e}")
        }
    };
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn the_log_has_colour_only_at_a_terminal_and_never_with_no_color() {
    let tmp = tempfile::tempdir().expect("tempdir");
    failing_config(tmp.path());

    // Cron, journald, a log file: stderr is not a terminal. `-v` logs each source's failure.
    let piped = gazette(tmp.path(), &["-v", "fetch", "--force"]).await;
    let log = stderr(&piped);
    assert!(log.contains("missing.xml"), "{log}");
    assert!(!coloured(&log), "colour codes in a piped log: {log:?}");

    let shown = at_a_terminal(tmp.path(), &[]);
    assert!(shown.contains("missing.xml"), "{shown}");
    assert!(coloured(&shown), "no colour at a terminal: {shown:?}");

    let shown = at_a_terminal(tmp.path(), &[("NO_COLOR", "1")]);
    assert!(shown.contains("missing.xml"), "{shown}");
    assert!(!coloured(&shown), "colour despite NO_COLOR: {shown:?}");
}

#[tokio::test]
async fn a_fatal_error_names_its_cause_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    failing_config(tmp.path());
    // The feed's folder is a file: writing the feed fails with "Not a directory".
    std::fs::write(tmp.path().join("public"), "a file, not a folder").expect("block the folder");
    let run = gazette_with_env(tmp.path(), &["fetch"], &[]).await;
    assert_eq!(run.status.code(), Some(1));
    let log = stderr(&run);
    let last = log.lines().last().unwrap_or_default();
    assert!(last.starts_with("gazette: "), "{log}");
    assert!(
        last.contains("atom.xml"),
        "the message names no path: {last}"
    );
    assert_eq!(
        last.matches("os error").count(),
        1,
        "the cause is said more than once: {last}"
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Enough sources that the listing outgrows the pipe's buffer (64 KiB): the writer is still
    // writing when the reader goes away.
    let sources: String = (0..5000)
        .map(|n| {
            source(
                &format!("s{n}"),
                &tmp.path().join(format!("f{n}.xml")).display().to_string(),
                "",
            )
        })
        .collect();
    write_config(tmp.path(), &sources);
    let mut child = Command::new(env!("CARGO_BIN_EXE_gazette"))
        .args(["fetch", "--due"])
        .current_dir(tmp.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gazette");
    // What `gazette fetch --due | head -0` does: the reader closes before reading.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait for gazette");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {log}", output.status);
    assert!(!log.contains("Broken pipe"), "{log}");
}

#[tokio::test]
async fn messages_say_the_way_forward() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();

    // No config yet: how to make one.
    let missing = gazette(dir, &["fetch"]).await;
    assert_eq!(missing.status.code(), Some(1));
    let log = stderr(&missing);
    assert!(log.contains("no config file at"), "{log}");
    assert!(
        log.contains("[[sources]]") && log.contains("--config"),
        "{log}"
    );

    // A source that is a web page, not a feed: `gazette add` finds the feed it announces.
    std::fs::write(
        dir.join("page.html"),
        "<!doctype html><html><head><title>News</title></head><body><p>Hello</p></body></html>",
    )
    .expect("page");
    write_config(dir, &source("page", "../page.html", ""));
    let run = gazette(dir, &["fetch"]).await;
    let out = common::stdout(&run);
    let line = out
        .lines()
        .find(|l| l.starts_with("page: failed:"))
        .unwrap_or_else(|| panic!("no failure line: {out}"));
    assert!(
        line.contains("HTML page") && line.contains("`gazette add URL`"),
        "{line}"
    );
}

#[tokio::test]
async fn a_source_failing_for_long_is_reported_while_it_backs_off() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_config(
        dir,
        &format!(
            "[fetch]\nalert_after = \"1d\"\n{}",
            source("dead", &dir.join("gone.xml").display().to_string(), "")
        ),
    );
    let first = gazette(dir, &["fetch"]).await;
    assert_eq!(first.status.code(), Some(3));
    // Backing off: not fetched, and not failing for a day yet.
    let quiet = gazette(dir, &["fetch"]).await;
    assert_eq!(quiet.status.code(), Some(0), "{}", common::stdout(&quiet));
    assert!(!common::stdout(&quiet).contains("failing"));

    // Three days of failures, as state would have them.
    let pool = common::state_pool(dir).await;
    let three_days_ago = chrono::Utc::now().timestamp_millis() - 3 * 24 * 3600 * 1000;
    sqlx::query("UPDATE sources SET failing_since = $1 WHERE id = 'dead'")
        .bind(three_days_ago)
        .execute(&pool)
        .await
        .expect("age the failure");
    pool.close().await;

    let alert = gazette(dir, &["fetch"]).await;
    let out = common::stdout(&alert);
    assert_eq!(alert.status.code(), Some(3), "{out}");
    // (The tests print every source's line: `dead: not due until ...` comes first.)
    let failing: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("dead: failing since "))
        .collect();
    assert_eq!(failing.len(), 1, "{out}");
    assert!(failing[0].contains("gone.xml"), "{out}");
    let summary = out.lines().last().unwrap_or_default();
    assert!(
        summary.contains(", 0 failed, 1 failing for more than 1day;"),
        "{out}"
    );
}

/// `text` with what changes from run to run (times, the temp folder) replaced.
fn redacted(text: &str, dir: &Path) -> String {
    let dates = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").expect("regex");
    let text = text.replace(&dir.display().to_string(), "[DIR]");
    dates.replace_all(&text, "[TIME]").into_owned()
}

#[tokio::test]
async fn status_is_one_line_per_configured_source() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    common::copy_demo_feeds(&dir.join("feeds"));
    let sources = [
        source("ft", "../feeds/ft-world.atom", "language = \"en\""),
        source("tech", "../feeds/tech-rss2.xml", ""),
        source("broken", "../feeds/missing.xml", ""),
    ]
    .concat();
    write_config(dir, &sources);
    let fetch = gazette(dir, &["fetch"]).await;
    assert_eq!(fetch.status.code(), Some(3));
    // A source added since, never fetched, and one taken out of the config by hand.
    let sources = [
        source("ft", "../feeds/ft-world.atom", "language = \"en\""),
        source("broken", "../feeds/missing.xml", ""),
        source("later", "../feeds/science-rss1.rdf", ""),
    ]
    .concat();
    write_config(dir, &sources);

    let status = gazette(dir, &["status"]).await;
    assert!(status.status.success(), "{}", stderr(&status));
    insta::assert_snapshot!("status_one_line", redacted(&common::stdout(&status), dir));
    let failed = gazette(dir, &["status", "--failed"]).await;
    insta::assert_snapshot!("status_failed", redacted(&common::stdout(&failed), dir));
    let long = common::stdout(&gazette(dir, &["status", "--long"]).await);
    assert!(long.contains("  failures       1 in a row"), "{long}");
    assert!(!long.contains("tech"), "{long}");
}

#[tokio::test]
async fn every_config_error_names_the_line_and_the_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let one = source("a", "a.xml", "");
    // (the config's extra text, the text on the line the error must name, the key it names)
    let cases: [(String, &str, &str); 10] = [
        (
            format!("{one}{}", source("a", "b.xml", "")),
            "id = \"a\"",
            "sources[1].id",
        ),
        (
            source("Bad Id", "a.xml", ""),
            "id = \"Bad Id\"",
            "sources[0].id",
        ),
        (
            source("a", "http://[::1", ""),
            "http://[::1",
            "sources[0].url",
        ),
        (
            source(
                "a",
                "a.xml",
                "rewrite = { title = [{ pattern = \"(\", replace = \"\" }] }",
            ),
            "rewrite = ",
            "sources[0].rewrite",
        ),
        (
            "[fetch]\nconcurrency = 0\n".to_owned(),
            "concurrency",
            "fetch.concurrency",
        ),
        (
            "[fetch]\ninterval = \"0s\"\n".to_owned(),
            "interval",
            "fetch.interval",
        ),
        (
            "[fetch]\ntimeout = \"0s\"\n".to_owned(),
            "timeout",
            "fetch.timeout",
        ),
        (
            "[fetch]\ntimeout = \"soon\"\n".to_owned(),
            "timeout",
            "fetch.timeout",
        ),
        (
            "[fetch]\nconcurrency = \"8\"\n".to_owned(),
            "concurrency",
            "fetch.concurrency",
        ),
        (
            "[serve]\nlisten = \"not-an-address\"\n".to_owned(),
            "listen",
            "serve.listen",
        ),
    ];
    for (extra, needle, key) in cases {
        write_config(dir, &extra);
        let text = std::fs::read_to_string(dir.join("config/gazette.toml")).expect("config");
        // The last line holding the needle: a duplicate id is the second source's.
        let line = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .map(|(n, _)| n + 1)
            .last()
            .expect("the needle is in the config");
        let run = gazette(dir, &["check"]).await;
        let log = stderr(&run);
        assert_eq!(run.status.code(), Some(1), "{extra}: {log}");
        assert!(
            log.contains("gazette.toml: ")
                && log.contains(&format!("line {line}: "))
                && log.contains(key),
            "{extra}\n-> expected line {line} and {key}: {log}"
        );
    }
    // The state URL, which lies in the part `write_config` writes itself.
    std::fs::write(
        dir.join("config/gazette.toml"),
        "[state]\nurl = \"mysql://db\"\n",
    )
    .expect("config");
    let log = stderr(&gazette(dir, &["check"]).await);
    assert!(log.contains("line 2: state.url: "), "{log}");
}

#[tokio::test]
async fn the_cron_output_is_plain_and_says_each_failure_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    common::copy_demo_feeds(&dir.join("feeds"));
    let sources = [
        source("ft", "../feeds/ft-world.atom", "language = \"en\""),
        source("tech", "../feeds/tech-rss2.xml", ""),
        source("gone", "../feeds/missing.xml", ""),
        source("page", "../page.html", ""),
    ]
    .concat();
    std::fs::write(
        dir.join("page.html"),
        "<!doctype html><html><head><title>News</title></head><body></body></html>",
    )
    .expect("page");
    write_config(dir, &sources);
    // As cron runs it: no terminal, no per-source lines asked for.
    let run = gazette_with_env(dir, &["fetch"], &[("GAZETTE_PER_SOURCE", "false")]).await;
    assert_eq!(run.status.code(), Some(3));
    let mailed = format!("{}{}", common::stdout(&run), stderr(&run));
    assert!(!coloured(&mailed), "{mailed:?}");
    insta::assert_snapshot!("cron_fetch", redacted(&mailed, dir));
}
