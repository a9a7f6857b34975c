//! The daemon two ways: in this process on a manual clock, for its logic (schedule, reload,
//! stop) without waiting for real time; and `gazette run` as a subprocess on a free port, for
//! signals and whole-program behaviour, waiting on its log lines.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gazette::clock::Clock;
use gazette::config::Settings;
use gazette::daemon::{DaemonOptions, Event};
use gazette::lock::WriterLock;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot, watch};

/// How long a test waits for an event before it calls the daemon stuck.
const STUCK: Duration = Duration::from_secs(30);

/// The daemon run in this process on a manual clock. It holds the writer lock as `gazette run`
/// does, so a cron `fetch` beside it meets the lock.
pub struct InProcess {
    pub base: String,
    pub clock: Clock,
    events: mpsc::UnboundedReceiver<Event>,
    reloads: mpsc::Sender<()>,
    stop: Option<oneshot::Sender<()>>,
    task: oneshot::Receiver<gazette::Result<()>>,
    _lock: (Option<WriterLock>, Option<gazette::store::ArchiveLock>),
}

impl InProcess {
    /// Starts on the config in `dir/config/gazette.toml`, the clock at the real now.
    pub async fn start(dir: &Path) -> Self {
        let config_path = dir.join("config/gazette.toml");
        let settings = Settings::load(&config_path).expect("valid config");
        let lock = match &settings.state_file {
            Some(file) => (
                Some(
                    WriterLock::acquire(&WriterLock::path_for(file), STUCK)
                        .await
                        .expect("lock file")
                        .expect("lock free"),
                ),
                None,
            ),
            None => (
                None,
                Some(
                    gazette::store::ArchiveLock::take(&settings.state_url, STUCK)
                        .await
                        .expect("state database")
                        .unwrap_or_else(|_| panic!("lock free")),
                ),
            ),
        };
        // A whole second, as state stores times in milliseconds.
        let clock =
            Clock::manual(DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now"));
        let (events_tx, events) = mpsc::unbounded_channel();
        let (reloads, reload_rx) = mpsc::channel(4);
        let (stop, stopped) = oneshot::channel::<()>();
        let options = DaemonOptions {
            config_path,
            listen: Some("127.0.0.1:0".to_owned()),
            clock: clock.clone(),
        };
        // Its own thread and runtime, as `main` gives it: the test's runtime only waits.
        let (done_tx, task) = oneshot::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let ended = runtime.block_on(gazette::daemon::run(
                settings,
                options,
                async move {
                    let _ = stopped.await;
                },
                reload_rx,
                move |event| {
                    let _ = events_tx.send(event);
                },
            ));
            let _ = done_tx.send(ended);
        });
        let mut daemon = Self {
            base: String::new(),
            clock,
            events,
            reloads,
            stop: Some(stop),
            task,
            _lock: lock,
        };
        match daemon.next_event().await {
            Event::Listening(addr) => daemon.base = format!("http://{addr}"),
            other => panic!("expected the address first, got {other:?}"),
        }
        daemon
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(STUCK, self.events.recv())
            .await
            .expect("the daemon told nothing for 30 s")
            .expect("the daemon stopped")
    }

    /// Waits for the next cycle to end: (sources fetched, failed, new articles).
    pub async fn cycle(&mut self) -> (usize, usize, usize) {
        loop {
            if let Event::Cycle {
                fetched,
                failed,
                new,
            } = self.next_event().await
            {
                return (fetched, failed, new);
            }
        }
    }

    /// Waits until the daemon sleeps; returns until when.
    pub async fn waiting(&mut self) -> DateTime<Utc> {
        loop {
            if let Event::Waiting { until } = self.next_event().await {
                return until;
            }
        }
    }

    /// Waits until the daemon sleeps, then moves its clock to the time it waits for: the next
    /// cycle starts.
    pub async fn skip_to_next_wake(&mut self) -> DateTime<Utc> {
        let until = self.waiting().await;
        let now = self.clock.now();
        self.clock
            .advance((until - now).to_std().unwrap_or_default());
        until
    }

    /// Asks for a reload (as SIGHUP does) and returns what the daemon made of it.
    pub async fn reload(&mut self) -> Event {
        self.reloads.send(()).await.expect("daemon running");
        loop {
            if let event @ (Event::Reloaded { .. } | Event::ReloadRefused(_)) =
                self.next_event().await
            {
                return event;
            }
        }
    }

    /// Stops the daemon and returns how `run` ended.
    pub async fn stop(mut self) -> gazette::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(STUCK, &mut self.task)
            .await
            .expect("stopped within 30 s")
            .expect("the daemon thread panicked")
    }
}

/// A running `gazette run` and the address it serves on; its log (at info level) is kept for
/// [`Daemon::wait_for_log`].
pub struct Daemon {
    pub child: Child,
    pub base: String,
    log: watch::Receiver<Vec<String>>,
}

impl Daemon {
    pub async fn start(dir: &Path) -> Self {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gazette"));
        command
            .args(["run", "-v", "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env_remove("GAZETTE_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start the daemon");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the daemon announced its address in time")
            .expect("read")
            .expect("a line");
        let base = line
            .strip_prefix("listening on ")
            .expect("address line")
            .to_owned();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let stderr = child.stderr.take().expect("stderr");
        let (log_tx, log) = watch::channel(Vec::new());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = without_colours(&line);
                log_tx.send_modify(|log| log.push(line));
            }
        });
        Self { child, base, log }
    }

    /// Waits until the log holds `count` lines containing every one of `parts`; returns the
    /// last of them.
    pub async fn wait_for_log(&self, parts: &[&str], count: usize) -> String {
        let mut log = self.log.clone();
        let matching = |lines: &Vec<String>| {
            lines
                .iter()
                .filter(|line| parts.iter().all(|part| line.contains(part)))
                .cloned()
                .collect::<Vec<_>>()
        };
        let waited =
            tokio::time::timeout(STUCK, log.wait_for(|lines| matching(lines).len() >= count)).await;
        match waited {
            Ok(Ok(lines)) => matching(&lines).pop().unwrap_or_default(),
            _ => panic!(
                "no {count} log lines with {parts:?} within 30 s; the log:\n{}",
                self.log.borrow().join("\n")
            ),
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id().expect("running")).expect("pid")
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A log line without its ANSI colour sequences (`ESC [ ... m`).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An HTTP client that never goes through a proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// The body of a GET to `url`, as text.
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}
