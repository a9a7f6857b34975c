//! Helpers shared by the integration tests: a feed server on 127.0.0.1, the demo files, and the
//! `gazette` binary run as a subprocess.

#![allow(dead_code)]

pub mod daemon;
pub mod postgres;
pub mod reference;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A feed server on 127.0.0.1 serving the files of a folder under `/feeds/NAME`, plus
/// `/broken.xml` (malformed XML). Anything else is 404.
pub struct FeedServer {
    pub addr: SocketAddr,
    pub dir: PathBuf,
}

impl FeedServer {
    pub async fn start(dir: &Path) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .route("/feeds/{name}", get(serve_file))
            .route(
                "/broken.xml",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "application/rss+xml")],
                        "<rss version=\"2.0\"><channel><item><title>cut",
                    )
                }),
            )
            .with_state(dir.to_path_buf());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("feed server");
        });
        Self {
            addr,
            dir: dir.to_path_buf(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn serve_file(State(dir): State<PathBuf>, UrlPath(name): UrlPath<String>) -> Response {
    if name.contains("..") || name.contains('/') {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match tokio::fs::read(dir.join(&name)).await {
        Ok(body) => {
            let kind = if name.ends_with(".json") {
                "application/feed+json"
            } else {
                "application/xml"
            };
            ([(header::CONTENT_TYPE, kind)], body).into_response()
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A 127.0.0.1 port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Copies the demo feeds into `dir`.
pub fn copy_demo_feeds(dir: &Path) {
    std::fs::create_dir_all(dir).expect("feeds dir");
    for entry in std::fs::read_dir(repo().join("feeds")).expect("feeds/") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy feed");
    }
}

/// Runs the binary with `args`, from `cwd`, without inheriting GAZETTE_CONFIG.
pub async fn gazette(cwd: &Path, args: &[&str]) -> Output {
    gazette_with_env(cwd, args, &[]).await
}

/// Runs the binary with `args` and extra environment variables.
pub async fn gazette_with_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gazette"));
    command.args(args);
    clean_env(&mut command);
    command.envs(env.iter().copied());
    command
        .current_dir(cwd)
        .output()
        .await
        .expect("run gazette")
}

/// Runs the binary with `args`, from `cwd`, under the file mode mask `umask`.
pub async fn gazette_with_umask(cwd: &Path, args: &[&str], umask: u32) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gazette"));
    command.args(args).current_dir(cwd);
    clean_env(&mut command);
    // SAFETY: umask(2) only sets the child's mask; it allocates nothing and cannot fail.
    unsafe {
        command.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
    command.output().await.expect("run gazette")
}

fn clean_env(command: &mut tokio::process::Command) {
    // The tests read every source's line, which cron runs (no terminal) leave out.
    command.env("GAZETTE_PER_SOURCE", "1");
    command
        .env_remove("GAZETTE_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        // Tests talk to 127.0.0.1 directly; a proxy from the environment must not intercept them.
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Validates an Atom file against RFC 4287's RELAX NG schema with jing.
pub fn assert_valid_atom(path: &Path) {
    let schema = [
        repo().join("../shared/schemas/atom.rnc"),
        repo().join("tests/fixtures/atom.rnc"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .expect("the Atom schema");
    let output = std::process::Command::new("jing")
        .arg("-c")
        .arg(&schema)
        .arg(path)
        .output()
        .expect("jing must be installed (apt-get install jing; .ci/run does it)");
    assert!(
        output.status.success(),
        "{} is not valid Atom:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every file below `dir` (hidden ones included), sorted; folders that vanish or cannot be read
/// meanwhile are passed over, so a run that is writing may be watched.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Every file below `dir`, with its modification time.
pub fn files_with_mtimes(dir: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    all_files(dir)
        .into_iter()
        .map(|path| {
            let mtime = std::fs::metadata(&path)
                .expect("metadata")
                .modified()
                .expect("mtime");
            (path, mtime)
        })
        .collect()
}

/// Writes `config/gazette.toml` below `dir`: archive, feed and state next to `config/`, then
/// `rest` (a `[fetch]` table, `[[sources]]`).
pub fn write_config(dir: &Path, rest: &str) {
    write_config_with_state(dir, &state_url(dir), rest);
}

/// [`write_config`] with the state at `state_url`.
pub fn write_config_with_state(dir: &Path, state_url: &str, rest: &str) {
    let config = format!(
        "[archive]\ndir = \"../archive\"\n[feed]\npath = \"../public/atom.xml\"\ntitle = \"Test\"\n\
         id = \"urn:uuid:5a0c1bde-3f4e-4c1a-9d7e-0a1b2c3d4e5f\"\nself_url = \"http://127.0.0.1/atom.xml\"\n\
         [state]\nurl = \"{state_url}\"\n{rest}"
    );
    std::fs::create_dir_all(dir.join("config")).expect("config dir");
    std::fs::write(dir.join("config/gazette.toml"), config).expect("write config");
}

/// The state URL the config below `dir` names: the SQLite file `state/gazette.db` beside
/// `config/`, or, when the tests run on PostgreSQL (`GAZETTE_TEST_STATE=postgres`), a database
/// of this folder's own on the test server.
pub fn state_url(dir: &Path) -> String {
    if !postgres::selected() {
        return "sqlite://../state/gazette.db".to_owned();
    }
    static DATABASES: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let mut known = DATABASES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, url)) = known.iter().find(|(d, _)| d == dir) {
        return url.clone();
    }
    let url = postgres::fresh_database();
    known.push((dir.to_path_buf(), url.clone()));
    url
}

/// [`state_url`] as a process started elsewhere opens it (a SQLite path made absolute).
pub fn state_url_from(dir: &Path) -> String {
    if postgres::selected() {
        state_url(dir)
    } else {
        format!(
            "sqlite://{}",
            dir.join("state/gazette.db").to_str().expect("utf-8 path")
        )
    }
}

/// A pool on the state the config below `dir` names, for a test to look into or change it.
pub async fn state_pool(dir: &Path) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&state_url_from(dir))
        .await
        .expect("open the state database")
}

/// Whether the tests keep state in SQLite: checks of SQLite's own (its pages, its file) only
/// apply there.
pub fn on_sqlite() -> bool {
    !postgres::selected()
}

/// Loses the whole state, as a deleted state folder or a dropped database would: the SQLite
/// folder, or every table of the PostgreSQL database.
pub fn lose_state(dir: &Path) {
    if postgres::selected() {
        postgres::psql(
            &state_url(dir),
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
        );
    } else {
        std::fs::remove_dir_all(dir.join("state")).expect("lose the state");
    }
}

/// A `[[sources]]` table.
pub fn source(id: &str, url: &str, extra: &str) -> String {
    format!("[[sources]]\nid = \"{id}\"\nurl = \"{url}\"\n{extra}\n")
}

/// Whether `program` is an executable on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The page at `url` as headless Chromium leaves its DOM; `None` (said on stderr) when Chromium
/// is missing, which fails the test under `CI`.
pub async fn browser_dom(url: &str) -> Option<String> {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| on_path(b))
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium must be installed in CI (scripts/test-deps.sh installs it)"
        );
        eprintln!("chromium is not installed; the browser checks are skipped");
        return None;
    };
    let profile = tempfile::tempdir().expect("profile");
    let output = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .await
        .expect("run chromium");
    assert!(output.status.success(), "chromium: {output:?}");
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}
