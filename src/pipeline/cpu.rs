//! The pipeline's own threads for CPU-bound work: parsing bodies and normalizing their
//! entries. One thread per core, at a lower scheduling priority than the rest of the process.
//!
//! Why not tokio's blocking pool: it starts a thread per waiting job, so a cold run had as many
//! parsing threads runnable as sources in flight, and the one write turn (SQLite's thread and
//! the task feeding it), which every source waits for, queued behind them for a core. With
//! this pool, parsing takes what the write turn leaves: on a 2-core machine the turn's thread
//! had waited on the run queue almost as long as it ran.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock, mpsc};

type Job = Box<dyn FnOnce() + Send>;

/// How much less the pool's threads get of a busy core than the process's other threads
/// (Linux's `nice` scale: +10 is about a tenth of the weight of 0). Work elsewhere on the
/// machine is ahead of them too, which suits a background fetch.
const NICENESS: i32 = 10;

/// Why a job's result never came.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    /// The job panicked (the panic was reported as it happened).
    #[error("it panicked")]
    Panicked,
    /// The pool could not start a thread, or lost it.
    #[error("no thread to run it")]
    NoThread,
}

/// Runs `work` on the pool and waits for its result without holding an async thread. The
/// work starts when a thread is free; jobs run in the order they were given.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stopped> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        match std::panic::catch_unwind(AssertUnwindSafe(work)) {
            Ok(out) => {
                // The caller may have stopped waiting; the result is then dropped here.
                let _ = done.send(Ok(out));
            }
            Err(_) => {
                let _ = done.send(Err(Stopped::Panicked));
            }
        }
    });
    match pool() {
        Some(jobs) => jobs.send(job).map_err(|_| Stopped::NoThread)?,
        // No thread could be started: tokio's pool still runs it.
        None => {
            tokio::task::spawn_blocking(job);
        }
    }
    result.await.map_err(|_| Stopped::NoThread)?
}

/// The queue of the pool's threads, started on first use; `None` when not one would start.
fn pool() -> Option<&'static mpsc::Sender<Job>> {
    static POOL: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let started = (0..threads)
            .filter(|i| {
                let queue = Arc::clone(&queue);
                std::thread::Builder::new()
                    .name(format!("gazette-cpu-{i}"))
                    .spawn(move || serve(&queue))
                    .map_err(|e| tracing::warn!("could not start a parsing thread: {e}"))
                    .is_ok()
            })
            .count();
        (started > 0).then_some(jobs)
    })
    .as_ref()
}

/// One thread of the pool: takes jobs until the queue is gone.
fn serve(queue: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        // One thread waits on the queue at a time; the others wait for the lock.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(mpsc::RecvError) => return,
        }
    }
}

/// Lowers the calling thread's priority by [`NICENESS`]. On Linux a thread's nice value is its
/// own; elsewhere it would be the whole process's, so it is left alone there.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let current = own_nice();
        // SAFETY: `setpriority` only reads its integer arguments. A failure (not permitted,
        // say) leaves the priority as it was, which is harmless.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, own_id(), current + NICENESS) };
    }
}

/// The calling thread's id, as `setpriority` takes it on Linux.
#[cfg(target_os = "linux")]
fn own_id() -> libc::id_t {
    // SAFETY: `gettid` has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    libc::id_t::try_from(tid).unwrap_or(0)
}

/// The calling thread's nice value.
#[cfg(target_os = "linux")]
fn own_nice() -> i32 {
    // SAFETY: `getpriority` only reads its integer arguments.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, own_id()) }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_lowered_thread_and_a_panic_is_an_error() {
        let base = own_nice();
        let (name, nice) = run(|| {
            let name = std::thread::current().name().map(str::to_owned);
            (name, own_nice())
        })
        .await
        .expect("the job's result");
        assert!(name.is_some_and(|n| n.starts_with("gazette-cpu-")));
        // The pool's threads started from the process's priority, whatever it was.
        assert_eq!(nice, (base + NICENESS).min(19));

        let panicked = run(|| -> u8 { panic!("a job that fails") }).await;
        assert!(matches!(panicked, Err(Stopped::Panicked)));
        // The thread that ran it is still there for the next jobs.
        let jobs: Vec<_> = (0..8u32).map(|i| run(move || i * 2)).collect();
        let results = futures::future::join_all(jobs).await;
        let doubled: Vec<u32> = results.into_iter().map(|r| r.expect("a result")).collect();
        assert_eq!(doubled, (0..8).map(|i| i * 2).collect::<Vec<_>>());
    }
}
