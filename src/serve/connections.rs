//! The daemon's HTTP connections, held to limits that `axum::serve` cannot set: a deadline for
//! a request's headers, a cap on their size, an idle timeout, and a cap on open connections
//! below the process's file limit. At the cap the connection idle the longest is closed to make
//! room, so idle clients can never lock out a new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// What the server holds each connection to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request's headers must arrive within this.
    pub header_timeout: Duration,
    /// A connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// Open connections at most (and fewer when the file limit is lower).
    pub max_connections: usize,
    /// The largest request head (request line and headers) read; larger ones get 431.
    pub max_header_bytes: usize,
}

/// Descriptors kept free of connections: the state database, archive and feed files, the
/// fetches' sockets. The staged archive files' own budget is kept free besides.
const RESERVED_FILES: u64 = 64;

/// The connection cap: the configured one, or what the soft file limit leaves.
pub fn connection_cap(configured: usize) -> usize {
    cap_within(
        configured,
        crate::files::open_files_limit().unwrap_or(u64::MAX),
    )
}

/// The connection cap under a soft file limit of `soft`: what the reserve and the staged files'
/// budget (`files::staging_descriptors`) leave.
fn cap_within(configured: usize, soft: u64) -> usize {
    let room = soft
        .saturating_sub(RESERVED_FILES)
        .saturating_sub(crate::files::staging_descriptors(soft));
    configured
        .min(usize::try_from(room).unwrap_or(usize::MAX))
        .max(1)
}

/// One open connection, as the accept loop sees it.
#[derive(Debug)]
struct Open {
    /// When a request last ended (or the connection was accepted).
    last_active: Mutex<Instant>,
    in_flight: AtomicUsize,
    close: Notify,
    /// Asked to close: it goes as soon as its task runs, and the next one asked must be
    /// another. Asked again, the same connection stood for every connection to be closed until
    /// its task ran, which with one async thread was after the accept loop had taken the next
    /// hundred: the idle ones went one per 20 ms pause.
    asked: AtomicBool,
}

impl Open {
    fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| {
            *self
                .last_active
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        })
    }

    fn touch(&self) {
        *self
            .last_active
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }
}

type Registry = Arc<Mutex<HashMap<u64, Arc<Open>>>>;

/// Serves `app` on `listener` within `limits` until `stop` is cancelled, then until the open
/// connections have answered their requests in flight and closed.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, stop: CancellationToken) {
    let cap = connection_cap(limits.max_connections);
    let registry: Registry = Arc::default();
    let ids = AtomicU64::new(0);
    // Connections outlive the accept loop by as long as their requests in flight take.
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (EMFILE) or a connection reset before it was taken:
                // make room and take the next one; never end the server for it.
                tracing::warn!(error = %e, "accepting a connection failed");
                close_oldest_idle(&registry);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if lock(&registry).len() >= cap {
            close_oldest_idle(&registry);
        }
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let open = Arc::new(Open {
            last_active: Mutex::new(Instant::now()),
            in_flight: AtomicUsize::new(0),
            close: Notify::new(),
            asked: AtomicBool::new(false),
        });
        lock(&registry).insert(id, Arc::clone(&open));
        let registry = Arc::clone(&registry);
        let (app, stop) = (app.clone(), stop.clone());
        connections.spawn(async move {
            serve_connection(stream, app, limits, &open, stop).await;
            lock(&registry).remove(&id);
        });
    }
    connections.close();
    connections.wait().await;
}

fn lock(registry: &Registry) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Open>>> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Asks the connection idle the longest, of those not asked yet, to close; none when every one
/// has a request in flight.
fn close_oldest_idle(registry: &Registry) {
    let oldest = lock(registry)
        .values()
        .filter(|open| !open.asked.load(Ordering::Acquire))
        .filter_map(|open| open.idle_since().map(|since| (since, Arc::clone(open))))
        .min_by_key(|(since, _)| *since);
    if let Some((_, open)) = oldest {
        open.asked.store(true, Ordering::Release);
        open.close.notify_one();
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: Limits,
    open: &Arc<Open>,
    stop: CancellationToken,
) {
    let tracked = Arc::clone(open);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (app, tracked) = (app.clone(), Arc::clone(&tracked));
        tracked.in_flight.fetch_add(1, Ordering::AcqRel);
        async move {
            let response = app.oneshot(request.map(axum::body::Body::new)).await;
            tracked.touch();
            tracked.in_flight.fetch_sub(1, Ordering::AcqRel);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        let idle_until = open.idle_since().map(|since| since + limits.idle_timeout);
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended");
                }
                return;
            }
            () = open.close.notified(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = stop.cancelled(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = sleep_until(idle_until), if !closing && idle_until.is_some() => {
                // Idle all along, or a request came and went meanwhile: look again.
                if open.idle_since().is_some_and(|since| since + limits.idle_timeout <= Instant::now()) {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
            // A request in flight: look again when it may have ended.
            () = tokio::time::sleep(limits.idle_timeout), if !closing && idle_until.is_none() => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_for_the_reserve_and_the_staged_files() {
        // 1,024 files: 64 reserved, a quarter (256) for staged archive files, 704 left.
        assert_eq!(cap_within(usize::MAX, 1024), 704);
        assert_eq!(cap_within(100, 1024), 100);
        // A limit that leaves nothing still lets one connection in.
        assert_eq!(cap_within(usize::MAX, 64), 1);
        // No limit: the configured cap.
        assert_eq!(cap_within(5000, u64::MAX), 5000);
    }
}
