//! Unnamed temp files (Linux's `O_TMPFILE`): a file made in a folder with no name in it,
//! written, then linked into place whole by its descriptor. Staging through them leaves no
//! temp folder entry to make, rename away and sweep after a crash.
//!
//! Each one holds a descriptor until it is linked or dropped, and a cold run stages hundreds
//! at once, so they are budgeted ([`Slot`]): past the budget a staged file takes a named temp
//! file instead, which holds none.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Unnamed temp files open at once, of the process's soft open-file limit: the rest is left
/// to the state database, the fetches' sockets and the daemon's connections.
const SHARE_OF_LIMIT: u64 = 4;

/// A budget of unnamed files open at once.
#[derive(Debug)]
pub(super) struct Budget {
    open: AtomicUsize,
    limit: OnceLock<usize>,
    /// Works the limit out, once, when the first slot is asked for.
    limit_of: fn() -> usize,
}

/// The process's budget.
static PROCESS: Budget = Budget::new(process_limit);

impl Budget {
    pub(super) const fn new(limit_of: fn() -> usize) -> Budget {
        Budget {
            open: AtomicUsize::new(0),
            limit: OnceLock::new(),
            limit_of,
        }
    }

    /// A slot when the budget has room.
    pub(super) fn take(&'static self) -> Option<Slot> {
        let limit = *self.limit.get_or_init(self.limit_of);
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            })
            .ok()
            .map(|_| Slot(self))
    }

    /// Unnamed files open now with a slot of this budget.
    #[cfg(test)]
    pub(super) fn open_now(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// A place in a budget of open unnamed files, given back when dropped.
#[derive(Debug)]
pub(super) struct Slot(&'static Budget);

impl Slot {
    /// A slot of the process's budget, when it has room and this system has unnamed files
    /// to link.
    pub(super) fn take() -> Option<Slot> {
        PROCESS.take()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many unnamed files may be open at once: none where there is no `/proc` to link them
/// by (a descriptor's file is linked through its `/proc/self/fd` entry; linking it by the
/// descriptor itself needs a privilege a writer need not have).
fn process_limit() -> usize {
    if !cfg!(target_os = "linux") || !Path::new("/proc/self/fd").is_dir() {
        return 0;
    }
    super::open_files_limit().map_or(0, |limit| {
        usize::try_from(share_of(limit)).unwrap_or(usize::MAX)
    })
}

/// The unnamed files that may be open at once under a soft open-file limit of `limit`.
pub(super) fn share_of(limit: u64) -> u64 {
    limit / SHARE_OF_LIMIT
}

/// Whether a file can be linked by its descriptor alone (`AT_EMPTY_PATH`), which takes a
/// privilege on many kernels; not knowing yet, a link tries both ways, and the first that
/// works by one way but not the other settles it. Linking by the descriptor spares the kernel
/// walking `/proc` for each file.
static BY_DESCRIPTOR: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const ALLOWED: u8 = 1;
const REFUSED: u8 = 2;

/// An unnamed temp file, written and waiting to be linked into place.
#[derive(Debug)]
pub(super) struct Unnamed {
    file: File,
    _slot: Slot,
}

impl Unnamed {
    /// An empty unnamed file on the file system of `dir`, readable like any file of the
    /// tree; `None` where the file system has none (the slot is then given back).
    #[cfg(target_os = "linux")]
    pub(super) fn new(dir: &Path, slot: Slot) -> Option<Unnamed> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o644)
            .open(dir)
            .ok()?;
        Some(Unnamed { file, _slot: slot })
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn new(_dir: &Path, _slot: Slot) -> Option<Unnamed> {
        None
    }

    /// Writes `bytes`, with the tree's file mode whatever the umask took away.
    pub(super) fn fill(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        if super::process_umask().is_none_or(|umask| umask & 0o644 != 0) {
            self.file
                .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        self.file.write_all(bytes)
    }

    /// Gives the file the name `path`, on the same file system; fails when something is
    /// there already.
    pub(super) fn link(&self, path: &Path) -> std::io::Result<()> {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::ffi::OsStrExt as _;
        let fd = self.file.as_raw_fd();
        let to = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let by_descriptor = BY_DESCRIPTOR.load(Ordering::Relaxed);
        if by_descriptor != REFUSED {
            match link_by_descriptor(fd, &to) {
                Ok(()) => {
                    BY_DESCRIPTOR.store(ALLOWED, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if by_descriptor == ALLOWED => return Err(e),
                Err(_) => {}
            }
        }
        link_by_proc(fd, &to)?;
        if by_descriptor == UNKNOWN {
            // Linked by its `/proc` entry where the descriptor alone was refused.
            BY_DESCRIPTOR.store(REFUSED, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The bytes written, read back.
    pub(super) fn read(&self) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt as _;
        let len = usize::try_from(self.file.metadata()?.len()).unwrap_or(usize::MAX);
        let mut bytes = vec![0; len];
        self.file.read_exact_at(&mut bytes, 0)?;
        Ok(bytes)
    }
}

/// Links the file open at `fd` to `to` by the descriptor alone.
#[cfg(target_os = "linux")]
fn link_by_descriptor(fd: std::os::fd::RawFd, to: &std::ffi::CStr) -> std::io::Result<()> {
    // SAFETY: both paths are NUL-terminated and outlive the call; the caller keeps `fd` open
    // through it.
    succeeded(unsafe {
        libc::linkat(
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })
}

/// Links the file open at `fd` to `to` through its `/proc/self/fd` entry.
#[cfg(target_os = "linux")]
fn link_by_proc(fd: std::os::fd::RawFd, to: &std::ffi::CStr) -> std::io::Result<()> {
    let own = std::ffi::CString::new(format!("/proc/self/fd/{fd}"))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: as in `link_by_descriptor`.
    succeeded(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            own.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
}

/// A system call's return code as a result: the error `errno` holds when it is not 0.
#[cfg(target_os = "linux")]
fn succeeded(rc: libc::c_int) -> std::io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

// Elsewhere no unnamed file is ever made (`Unnamed::new`), so none is linked.
#[cfg(not(target_os = "linux"))]
fn link_by_descriptor(_fd: std::os::fd::RawFd, _to: &std::ffi::CStr) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(not(target_os = "linux"))]
fn link_by_proc(_fd: std::os::fd::RawFd, _to: &std::ffi::CStr) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_of_linking_give_the_whole_file_its_name() {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::fs::PermissionsExt as _;
        static BUDGET: Budget = Budget::new(|| 2);
        let dir = tempfile::tempdir().expect("tempdir");
        let links: [(&str, fn(_, &_) -> _); 2] =
            [("descriptor", link_by_descriptor), ("proc", link_by_proc)];
        for (name, link) in links {
            let slot = BUDGET.take().expect("a slot");
            let mut file = Unnamed::new(dir.path(), slot).expect("an unnamed file");
            file.fill(name.as_bytes()).expect("written");
            let path = dir.path().join(format!("{name}.md"));
            let to = std::ffi::CString::new(path.to_str().expect("UTF-8")).expect("path");
            match link(file.file.as_raw_fd(), &to) {
                Ok(()) => {}
                // Linking by the descriptor alone takes a privilege on some systems; then
                // the `/proc` way must work.
                Err(e) if name == "descriptor" => {
                    eprintln!("linking by the descriptor refused here: {e}");
                    continue;
                }
                Err(e) => panic!("linking through /proc: {e}"),
            }
            assert_eq!(std::fs::read(&path).expect("read"), name.as_bytes());
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
            // A name is given once: a second link to it fails, and leaves the file whole.
            assert!(link(file.file.as_raw_fd(), &to).is_err());
            assert_eq!(std::fs::read(&path).expect("read"), name.as_bytes());
        }
        assert_eq!(BUDGET.open_now(), 0, "every slot came back");
    }
}
