//! The daemon's HTTP server against hostile clients: idle connections by the hundred under a
//! low file limit, a connection that never speaks, a huge request head. Runs `gazette run`
//! under `prlimit` (util-linux), and on one core under `taskset`.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{source, write_config};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Child;

/// `gazette run` with at most `files` open files; returns it and its address.
async fn daemon(dir: &Path, files: u32) -> (Child, String) {
    daemon_on(dir, files, None).await
}

/// `gazette run` with at most `files` open files, on `cores` of the cores this process may use
/// when given (`taskset`, util-linux: the daemon runs an async thread per core it may use).
async fn daemon_on(dir: &Path, files: u32, cores: Option<usize>) -> (Child, String) {
    let limit = format!("--nofile={files}:{files}");
    let mut args = Vec::new();
    if let Some(cores) = cores {
        let allowed = allowed_cores();
        let first = allowed.get(..cores).expect("enough cores to run on");
        let list: Vec<String> = first.iter().map(u32::to_string).collect();
        args.extend(["taskset".to_owned(), "-c".to_owned(), list.join(",")]);
    }
    args.extend(
        [
            "prlimit",
            limit.as_str(),
            env!("CARGO_BIN_EXE_gazette"),
            "run",
        ]
        .map(String::from),
    );
    let mut child = tokio::process::Command::new(&args[0])
        .args(&args[1..])
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} (util-linux) is needed for this test: {e}", args[0]));
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the daemon announced its address")
        .expect("read")
        .expect("a line");
    let base = line
        .strip_prefix("listening on http://")
        .expect("address line")
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

/// The cores this process may run on (`Cpus_allowed_list`: a machine or container may not
/// start at core 0).
fn allowed_cores() -> Vec<u32> {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim();
    let mut cores = Vec::new();
    for range in list.split(',') {
        let (low, high) = range.split_once('-').unwrap_or((range, range));
        let (low, high): (u32, u32) = (
            low.parse().expect("a core number"),
            high.parse().expect("a core number"),
        );
        cores.extend(low..=high);
    }
    cores
}

fn setup(dir: &Path, serve: &str) {
    common::copy_demo_feeds(&dir.join("feeds"));
    write_config(
        dir,
        &format!(
            "{}[serve]\n{serve}",
            source("ft", "../feeds/ft-world.atom", "language = \"en\"")
        ),
    );
}

/// A GET of `path` on a fresh connection; the status code.
async fn get(addr: &str, path: &str) -> u16 {
    let response = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    response.status().as_u16()
}

#[tokio::test]
async fn idle_connections_never_lock_out_a_new_client() {
    idle_connections_leave_room(None).await;
}

/// With one async thread, the connections asked to close close only when the accept loop
/// pauses: each must be another one.
#[tokio::test]
async fn idle_connections_never_lock_out_a_new_client_on_one_core() {
    idle_connections_leave_room(Some(1)).await;
}

async fn idle_connections_leave_room(cores: Option<usize>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path(), "idle_timeout = \"10m\"\n");
    let (_daemon, addr) = daemon_on(tmp.path(), 256, cores).await;
    assert_eq!(get(&addr, "/atom.xml").await, 200);

    // 400 connections that send nothing, more than the daemon has files for (this test's
    // process needs room for them itself).
    gazette::files::raise_open_files_limit();
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(1), get(&addr, "/atom.xml"))
        .await
        .expect("the 401st client was answered within a second");
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(idle);
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(
        tmp.path(),
        "idle_timeout = \"1s\"\nheader_timeout = \"30s\"\n",
    );
    let (_daemon, addr) = daemon(tmp.path(), 1024).await;
    let mut silent = TcpStream::connect(&addr).await.expect("connect");
    let opened = Instant::now();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buffer))
        .await
        .expect("closed within 20 s");
    assert_eq!(read.expect("a clean close"), 0, "the server closed it");
    assert!(opened.elapsed() >= Duration::from_millis(900));

    // Between requests on a kept-alive connection, the same.
    let mut kept = TcpStream::connect(&addr).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut answer = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(20), kept.read_to_end(&mut answer))
        .await
        .expect("closed within 20 s");
    ended.expect("read until closed");
    assert!(answer.starts_with(b"HTTP/1.1 "), "{answer:?}");
}

#[tokio::test]
async fn a_huge_request_head_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    setup(tmp.path(), "max_header_bytes = \"16KiB\"\n");
    let (_daemon, addr) = daemon(tmp.path(), 1024).await;
    let mut client = TcpStream::connect(&addr).await.expect("connect");
    let huge = "x".repeat(100 * 1024);
    let request = format!("GET /atom.xml HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n");
    // The server may stop reading before the whole head is sent.
    let _ = client.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), client.read_to_end(&mut answer))
        .await
        .expect("answered or closed within 20 s");
    let head = String::from_utf8_lossy(&answer);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    // The server goes on serving.
    assert_eq!(get(&addr, "/atom.xml").await, 200);
}

/// Every command, not the daemon alone, raises its soft file limit to the hard one: a run holds
/// each new archive file it stages open until the file is in place, budgeted from that limit.
/// The fetch is caught while its request waits on a server that answers only when told.
#[tokio::test]
async fn a_fetch_raises_its_file_limit_like_the_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/feed.xml", listener.local_addr().expect("addr"));
    write_config(dir.path(), &source("slow", &url, ""));
    let (asked, asked_rx) = tokio::sync::oneshot::channel();
    let (answer, answer_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.expect("request head");
            head.push(byte[0]);
        }
        let _ = asked.send(());
        let _ = answer_rx.await;
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
    });
    let mut child = tokio::process::Command::new("prlimit")
        .args(["--nofile=256:1024", env!("CARGO_BIN_EXE_gazette"), "fetch"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("prlimit (util-linux) is needed for this test: {e}"));
    let pid = child.id().expect("a running fetch");
    tokio::time::timeout(Duration::from_secs(30), asked_rx)
        .await
        .expect("the fetch asked for its feed")
        .expect("the server saw the request");
    // `prlimit` set the limits and became gazette: the same process.
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("the open-file limit");
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["1024", "1024"], "{open_files}");
    let _ = answer.send(());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the fetch ended")
        .expect("wait");
    assert!(
        status.code().is_some(),
        "the fetch ended by itself: {status}"
    );
    server.await.expect("server");
}
