//! A PostgreSQL server for the tests: the one `GAZETTE_TEST_POSTGRES_URL` names when it is set
//! and answers, else a private one started for this test process (Debian's `postgresql`
//! package: `initdb` into a temporary folder, `pg_ctl` on a free 127.0.0.1 port, as the
//! unprivileged `postgres` user when run as root, since PostgreSQL refuses root) and stopped
//! when the process exits. Each test gets a database of its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether this test run keeps state on PostgreSQL (`GAZETTE_TEST_STATE=postgres`); the same
/// tests run on SQLite otherwise.
pub fn selected() -> bool {
    std::env::var("GAZETTE_TEST_STATE").is_ok_and(|v| v == "postgres")
}

/// The URL of a new, empty database on the test server.
pub fn fresh_database() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = server();
    let name = format!(
        "gazette_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    psql(&server.admin_url, &format!("CREATE DATABASE {name}"));
    server.database_url(&name)
}

/// Runs one SQL statement with `psql`; panics with its output when it fails.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs (Debian package postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

struct Server {
    /// The maintenance database, where test databases are created.
    admin_url: String,
}

impl Server {
    fn database_url(&self, name: &str) -> String {
        let mut url = url::Url::parse(&self.admin_url).expect("server URL");
        url.set_path(&format!("/{name}"));
        url.to_string()
    }
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("GAZETTE_TEST_POSTGRES_URL") {
            let answers = Command::new("psql")
                .args([url.as_str(), "-X", "-q", "-c", "SELECT 1"])
                .output()
                .is_ok_and(|o| o.status.success());
            if answers {
                return Server { admin_url: url };
            }
            eprintln!("GAZETTE_TEST_POSTGRES_URL does not answer; starting a private server");
        }
        start_private()
    })
}

/// The folder of the newest installed PostgreSQL's programs.
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             run `bash scripts/test-deps.sh`, or set GAZETTE_TEST_POSTGRES_URL"
        )
    })
}

/// A PostgreSQL program to run, as `postgres` when this process is root (PostgreSQL refuses
/// root).
fn owner_command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Runs a PostgreSQL program as its owner; panics with its output when it fails.
fn run_as_owner(program: &Path, args: &[&str]) {
    let out = owner_command(program)
        .args(args)
        .output()
        .expect("PostgreSQL program runs");
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    // The owner of /proc/self is this process's user.
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.local_addr().expect("address").port()
}

fn start_private() -> Server {
    let bin = bin_dir();
    let dir = tempfile::Builder::new()
        .prefix("gazette-pg-")
        .tempdir()
        .expect("tempdir")
        .keep();
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:", dir.to_str().expect("utf-8 temp dir")])
            .status()
            .expect("chown");
        assert!(status.success(), "chown the PostgreSQL folder to postgres");
    }
    let data = dir.join("data");
    let data_s = data.to_str().expect("utf-8 temp dir").to_owned();
    run_as_owner(
        &bin.join("initdb"),
        &[
            "-D",
            &data_s,
            "-A",
            "trust",
            "-U",
            "gazette",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
    );
    let port = free_port();
    // Durability is not under test here: the server's own fsyncs only slow the tests.
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=300",
        dir.display()
    );
    let log = dir.join("server.log");
    run_as_owner(
        &bin.join("pg_ctl"),
        &[
            "-D",
            &data_s,
            "-o",
            &options,
            "-l",
            log.to_str().expect("utf-8 temp dir"),
            "-w",
            "start",
        ],
    );
    STOP.set((bin.join("pg_ctl"), data, dir)).ok();
    // SAFETY: `stop_at_exit` is a plain `extern "C" fn` that lives as long as the process.
    unsafe {
        libc::atexit(stop_at_exit);
    }
    Server {
        admin_url: format!("postgres://gazette@127.0.0.1:{port}/postgres"),
    }
}

static STOP: OnceLock<(PathBuf, PathBuf, PathBuf)> = OnceLock::new();

/// Stops the private server; never panics (it runs while the process exits).
extern "C" fn stop_at_exit() {
    if let Some((pg_ctl, data, dir)) = STOP.get() {
        let _ = owner_command(pg_ctl)
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(dir);
    }
}
