//! Atomic, durable file writes: a reader (or a crash) never sees half a file. Ground floor: the
//! archive, the feeds, the config editor and the lock all write through these.
//!
//! A tree of files (the archive, the feeds' folder) has its temp files in one folder at its
//! root, [`TEMP_DIR`]: on the same file system, so the rename into place stays atomic, and in
//! one place, so the temp files of a run that was killed are swept without walking the tree
//! ([`sweep_temp`]). Files staged ahead of knowing their place ([`stage`]) are unnamed where
//! the system allows it (the `unnamed` module), and then never in that folder at all.

mod unnamed;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use unnamed::Unnamed;

/// The folder at a tree's root that holds its temp files. Hidden: the archive's listings skip it.
pub const TEMP_DIR: &str = ".tmp";

/// Writes `bytes` to `path` (inside the tree at `root`) through a temp file and a rename, so a
/// reader (or a crash) never sees half a file, and flushes it to disk. Returns `false`,
/// writing nothing, when the file already holds exactly these bytes.
pub fn write_atomic(root: &Path, path: &Path, bytes: &[u8]) -> Result<bool> {
    write_atomic_with(Some(root), path, bytes, true)
}

/// [`write_atomic`] without the flush: for many files at once, followed by one
/// [`sync_filesystem`]. One flush per file would cost more than the rest of a run.
pub fn write_atomic_deferred(root: &Path, path: &Path, bytes: &[u8]) -> Result<bool> {
    write_atomic_with(Some(root), path, bytes, false)
}

/// [`write_atomic`] for a file of no tree (the config): the temp file goes beside it.
pub fn write_atomic_beside(path: &Path, bytes: &[u8]) -> Result<bool> {
    write_atomic_with(None, path, bytes, true)
}

/// Removes what an interrupted run left in the temp folder of the tree at `root`; returns how
/// many files. Only a holder of the writer lock may call it: another writer's temp files are
/// in use.
pub fn sweep_temp(root: &Path) -> Result<usize> {
    let dir = root.join(TEMP_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(removed)
}

/// Deletes the files at `paths` (relative to the tree at `root`), and the folders they leave
/// empty up to `root`; returns how many files were there to delete.
pub fn remove_all(root: &Path, paths: &[String]) -> Result<usize> {
    let mut deleted = 0;
    for path in paths {
        let full = root.join(path);
        match std::fs::remove_file(&full) {
            Ok(()) => {
                deleted += 1;
                remove_empty_folders(root, &full);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&full, e)),
        }
    }
    Ok(deleted)
}

/// Removes the folders above a deleted file that it left empty, up to `root`.
fn remove_empty_folders(root: &Path, file: &Path) {
    if let Some(folder) = file.parent() {
        remove_folders_if_empty(root, folder);
    }
}

/// Removes `folder` (inside the tree at `root`) if it is empty, and then each folder above it
/// that this leaves empty, up to `root`.
pub fn remove_folders_if_empty(root: &Path, folder: &Path) {
    let mut dir = Some(folder);
    while let Some(current) = dir.filter(|d| d.starts_with(root) && *d != root) {
        // Fails (and stops) at the first folder that still holds something.
        if std::fs::remove_dir(current).is_err() {
            break;
        }
        dir = current.parent();
    }
}

/// Flushes everything written to the file system holding `dir` to disk.
#[cfg(target_os = "linux")]
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd as _;
    let handle = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    // SAFETY: the descriptor belongs to `handle`, which outlives the call.
    let rc = unsafe { libc::syncfs(handle.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::io(dir, std::io::Error::last_os_error()))
    }
}

/// Flushes everything written to the file system holding `dir` to disk.
#[cfg(all(unix, not(target_os = "linux")))]
pub fn sync_filesystem(_dir: &Path) -> Result<()> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    Ok(())
}

fn readable() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::Permissions::from_mode(0o644)
}

/// A file for [`write_all_deferred`].
#[derive(Debug)]
pub struct PendingFile {
    pub path: std::path::PathBuf,
    /// The file's bytes; empty when `staged` holds them.
    pub bytes: String,
    /// The caller knows nothing was at `path` (it looked as its work began, and only it
    /// writes there): no link to follow, no same bytes to find, no mode to keep.
    pub new: bool,
    /// The bytes in a temp file already ([`stage`]): a new file is put in place from it;
    /// any other is written from it when `bytes` is empty.
    pub staged: Option<Staged>,
}

/// Bytes in a temp file of a tree, written before their place in it is known (see [`stage`]).
/// Dropped unused, it deletes the temp file, and the folder made for it if that is left empty
/// (see [`Staged::made_for`]).
#[derive(Debug)]
pub struct Staged {
    /// `None` once put in place.
    temp: Option<Temp>,
    /// The tree's root and the folder made for the file, when one was.
    folder: Option<(PathBuf, PathBuf)>,
}

/// Where a staged file's bytes wait.
#[derive(Debug)]
enum Temp {
    /// A file with no name yet (Linux's `O_TMPFILE`), linked into place whole: if the process
    /// dies first nothing of it is left anywhere, and no temp folder entry is made and removed
    /// per file (on one guest's disk, about a quarter less system time to make an archive's
    /// files, two threads at once).
    Unnamed(Unnamed),
    /// A temp file in the tree's temp folder, renamed into place: where the file system has no
    /// unnamed files, or the open-file budget for them is spent.
    Named(tempfile::TempPath),
}

impl Staged {
    /// Notes that `folder` (inside the tree at `root`) was made for this file: if the file
    /// goes unused, the folder goes too when nothing else is in it, so an article that turns
    /// out a duplicate, or whose source fails, leaves no empty folder in the tree.
    pub fn made_for(&mut self, root: &Path, folder: &Path) {
        self.folder = Some((root.to_owned(), folder.to_owned()));
    }

    /// The temp file, to put in place; the folder is then in use.
    fn take(&mut self) -> Option<Temp> {
        self.folder = None;
        self.temp.take()
    }

    /// The staged bytes, read back.
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        match &self.temp {
            Some(Temp::Named(temp)) => std::fs::read(temp).map_err(|e| Error::io(temp, e)),
            Some(Temp::Unnamed(unnamed)) => unnamed.read().map_err(|e| Error::io(path, e)),
            None => Err(used_up(path)),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            drop(temp);
            if let Some((root, folder)) = &self.folder {
                remove_folders_if_empty(root, folder);
            }
        }
    }
}

/// The process's soft limit on open files, when the platform says: staged files are budgeted
/// from it ([`staging_descriptors`]), and the daemon's connections from what is left.
pub fn open_files_limit() -> Option<u64> {
    open_files().map(|limit| limit.rlim_cur)
}

/// Raises the soft limit on open files to the hard one, for every command: the daemon serves
/// many connections, a run holds each new archive file it stages open until the file is put in
/// place ([`stage`], budgeted from this limit), and the default soft limit (often 1,024)
/// is there for programs that do not expect to hold many.
pub fn raise_open_files_limit() {
    if let Some(mut limit) = open_files().filter(|l| l.rlim_cur < l.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit for setrlimit to read.
        let _ = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) };
    }
}

/// The soft and hard limits on open files, when the platform says.
fn open_files() -> Option<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) };
    (rc == 0).then_some(limit)
}

/// The descriptors staged files may hold at once under a soft open-file limit of `limit`
/// (each unnamed one holds one until it is put in place): what else opens many files (the
/// daemon's connections) leaves them this room.
pub fn staging_descriptors(limit: u64) -> u64 {
    unnamed::share_of(limit)
}

/// Writes `bytes` to a temp file of the tree at `root`, readable like any file of it, for a
/// [`PendingFile`] to put in place later: a writer that must take turns to decide where its
/// files go writes them before its turn, which is left only linking or renaming them.
pub fn stage(root: &Path, bytes: &[u8]) -> Result<Staged> {
    stage_as(root, bytes, unnamed::Slot::take())
}

/// [`stage`] in an unnamed file when given a slot for one (and the file system has them),
/// else in a named one.
fn stage_as(root: &Path, bytes: &[u8], slot: Option<unnamed::Slot>) -> Result<Staged> {
    let temp = match slot.and_then(|slot| Unnamed::new(root, slot)) {
        Some(mut file) => {
            file.fill(bytes).map_err(|e| Error::io(root, e))?;
            Temp::Unnamed(file)
        }
        None => Temp::Named(filled_temp(&root.join(TEMP_DIR), bytes, readable())?.into_temp_path()),
    };
    Ok(Staged {
        temp: Some(temp),
        folder: None,
    })
}

/// Makes the folder `dir` and those above it that are missing, ahead of the files that go in
/// it (a writer that stages its files makes their folders too, before its turn); whether `dir`
/// was missing: a folder just made holds nothing, so no file in it needs looking for.
pub fn make_folder(dir: &Path) -> Result<bool> {
    let all = |made| {
        std::fs::create_dir_all(dir)
            .map(|()| made)
            .map_err(|e| Error::io(dir, e))
    };
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => all(true),
        // Something else is there, or it cannot be made: `create_dir_all` says why.
        Err(_) => all(false),
    }
}

/// Whether nothing is at `path`, not even a dangling link.
pub fn nothing_at(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// [`write_atomic_deferred`] for many files: each folder is created once, not once per file
/// (a cold run writes thousands of files into a few hundred folders); a staged file's folder
/// is made only when putting the file in place finds none, since the stager made it. One result per
/// file, in order: whether it changed.
pub fn write_all_deferred(root: &Path, files: Vec<PendingFile>) -> Result<Vec<bool>> {
    let mut made = std::collections::HashSet::new();
    files
        .into_iter()
        .map(|file| {
            let PendingFile {
                path,
                bytes,
                new,
                staged,
            } = file;
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            match (new, staged) {
                (true, Some(mut staged)) => {
                    let temp = staged.take().ok_or_else(|| used_up(&path))?;
                    place(root, temp, &path, dir)?;
                    return Ok(true);
                }
                (false, Some(staged)) if bytes.is_empty() => {
                    // Rare: staged as new, but the path was taken by then.
                    let bytes = staged.read(&path)?;
                    return write_atomic_with(Some(root), &path, &bytes, false);
                }
                _ => {}
            }
            if let Some(dir) = dir
                && !made.contains(dir)
            {
                make_folder(dir)?;
                made.insert(dir.to_path_buf());
            }
            if new {
                let mut staged = stage(root, bytes.as_bytes())?;
                let temp = staged.take().ok_or_else(|| used_up(&path))?;
                place(root, temp, &path, dir)?;
                Ok(true)
            } else {
                write_atomic_with(Some(root), &path, bytes.as_bytes(), false)
            }
        })
        .collect()
}

/// A staged file given twice: its temp file is gone, and `path` must not get nothing instead.
fn used_up(path: &Path) -> Error {
    Error::io(
        path,
        std::io::Error::other("its staged temp file was used already"),
    )
}

/// Renames the staged temp file into place at `path`, in `dir`. Its stager made `dir`; it is
/// made again only if it is gone by then (a stager of the same folder whose file went unused
/// removed it, empty).
fn rename_into(staged: tempfile::TempPath, path: &Path, dir: Option<&Path>) -> Result<()> {
    let Err(failed) = staged.persist(path) else {
        return Ok(());
    };
    match dir {
        Some(dir) if failed.error.kind() == std::io::ErrorKind::NotFound => {
            make_folder(dir)?;
            failed
                .path
                .persist(path)
                .map_err(|e| Error::io(path, e.error))
        }
        _ => Err(Error::io(path, failed.error)),
    }
}

/// Puts a temp file of the tree at `root` in place at `path`, in `dir`.
fn place(root: &Path, temp: Temp, path: &Path, dir: Option<&Path>) -> Result<()> {
    match temp {
        Temp::Named(temp) => rename_into(temp, path, dir),
        Temp::Unnamed(file) => link_into(root, file, path, dir),
    }
}

/// Links the staged unnamed file into place at `path`, in `dir`, made again if it is gone by
/// then (as [`rename_into`]). Where the link cannot be made (no `/proc` to name the file by,
/// or something at `path` after all) the bytes go through a named temp file instead.
fn link_into(root: &Path, file: Unnamed, path: &Path, dir: Option<&Path>) -> Result<()> {
    let linked = match file.link(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir.is_some() => {
            if let Some(dir) = dir {
                make_folder(dir)?;
            }
            file.link(path)
        }
        linked => linked,
    };
    if linked.is_ok() {
        return Ok(());
    }
    let bytes = file.read().map_err(|e| Error::io(path, e))?;
    write_through_temp(path, &temp_dir(Some(root), path), &bytes, readable(), false)
}

/// Where the temp file for `path` goes: the temp folder of the tree at `root` when `path` is
/// inside it, else beside `path` (a link's target elsewhere, a file of no tree), since a
/// rename cannot cross file systems.
fn temp_dir(root: Option<&Path>, path: &Path) -> PathBuf {
    match root {
        Some(root) if path.starts_with(root) => root.join(TEMP_DIR),
        _ => path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    }
}

fn write_atomic_with(root: Option<&Path>, path: &Path, bytes: &[u8], flush: bool) -> Result<bool> {
    // Writing through a symlink updates its target instead of replacing the link. Only a
    // link needs resolving: one `lstat` instead of a `readlink` per path component.
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let resolved = is_link.then(|| std::fs::canonicalize(path).ok()).flatten();
    let path = resolved.as_deref().unwrap_or(path);
    match std::fs::read(path) {
        Ok(existing) if existing == bytes => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir
        && !dir.is_dir()
    {
        make_folder(dir)?;
    }
    // The result keeps the replaced file's mode, else it is an ordinary readable one, so a
    // web server running as another user can serve it.
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions())
        .unwrap_or_else(|_| readable());
    write_through_temp(path, &temp_dir(root, path), bytes, mode, flush)?;
    Ok(true)
}

/// Writes `bytes` to a temp file in `dir` (made when missing) with `mode`, then renames it to
/// `path`, whose folder exists.
fn write_through_temp(
    path: &Path,
    dir: &Path,
    bytes: &[u8],
    mode: std::fs::Permissions,
    flush: bool,
) -> Result<()> {
    let tmp = filled_temp(dir, bytes, mode)?;
    if flush {
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// A temp file in `dir` holding `bytes`, with `mode`: the file it becomes gets `mode` exactly,
/// whatever the umask. It is made with `mode` (a cold run makes tens of thousands, and a
/// `chmod` of each dirties its inode again), and changed only when the umask took bits away.
fn filled_temp(
    dir: &Path,
    bytes: &[u8],
    mode: std::fs::Permissions,
) -> Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut tmp = new_temp(dir, &mode)?;
    if process_umask().is_none_or(|umask| mode.mode() & umask != 0) {
        tmp.as_file()
            .set_permissions(mode)
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    Ok(tmp)
}

/// The process's umask, read once; `None` where the system does not say (files are then
/// given their mode after they are made).
fn process_umask() -> Option<u32> {
    static UMASK: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    // `umask(2)` can only be read by setting it, which would race with files being made on
    // other threads; Linux shows it in the process's status instead.
    *UMASK.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        u32::from_str_radix(line.trim(), 8).ok()
    })
}

/// A temp file in `dir` with `mode` (less the umask), made when missing.
fn new_temp(dir: &Path, mode: &std::fs::Permissions) -> Result<tempfile::NamedTempFile> {
    let temp = || {
        tempfile::Builder::new()
            .prefix(".gazette-")
            .suffix(".tmp")
            .permissions(mode.clone())
            .tempfile_in(dir)
    };
    match temp() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            make_folder(dir)?;
            temp()
        }
        made => made,
    }
    .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A staged file, unnamed or in the temp folder.
    fn staged_as(root: &Path, bytes: &[u8], unnamed: bool) -> Result<Staged> {
        let slot = if unnamed {
            Some(unnamed::Slot::take().expect("a slot for an unnamed file"))
        } else {
            None
        };
        let staged = stage_as(root, bytes, slot)?;
        assert_eq!(
            matches!(staged.temp, Some(Temp::Unnamed(_))),
            unnamed,
            "staged as asked"
        );
        Ok(staged)
    }

    /// The files in the temp folder of the tree at `root` (none when it was never made).
    fn temp_files(root: &Path) -> usize {
        std::fs::read_dir(root.join(TEMP_DIR)).map_or(0, Iterator::count)
    }

    #[test]
    fn atomic_write_skips_identical_bytes_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let path = root.join("a/b/c.md");
        assert!(write_atomic(root, &path, b"one").expect("first write"));
        assert!(!write_atomic(root, &path, b"one").expect("same bytes"));
        assert!(write_atomic(root, &path, b"two").expect("new bytes"));
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("c.md")]);
        // The temp files went to the root's temp folder, and none is left there.
        let temps = std::fs::read_dir(root.join(TEMP_DIR))
            .expect("temp folder")
            .count();
        assert_eq!(temps, 0);
    }

    #[test]
    fn a_staged_file_dropped_unused_takes_its_empty_folders_along() {
        for unnamed in [true, false] {
            dropped_unused(unnamed);
        }
    }

    fn dropped_unused(unnamed: bool) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let lonely = root.join("s/2024/01/02");
        let shared = root.join("s/2024/01/03");
        make_folder(&lonely).expect("folder");
        make_folder(&shared).expect("folder");
        std::fs::write(shared.join("other.md"), b"kept").expect("file");
        let mut first = staged_as(root, b"one", unnamed).expect("staged");
        first.made_for(root, &lonely);
        let mut second = staged_as(root, b"two", unnamed).expect("staged");
        second.made_for(root, &shared);
        drop((first, second));
        // The folder made for the first alone is gone; the month above it holds the other.
        assert!(!lonely.exists());
        assert!(shared.join("other.md").exists());
        assert_eq!(temp_files(root), 0, "a temp file is left");
        // Put in place, a staged file's folder stays, however it was made.
        let mut third = staged_as(root, b"three", unnamed).expect("staged");
        third.made_for(root, &lonely);
        let file = PendingFile {
            path: lonely.join("three.md"),
            bytes: String::new(),
            new: true,
            staged: Some(third),
        };
        assert_eq!(
            write_all_deferred(root, vec![file]).expect("written"),
            vec![true]
        );
        assert_eq!(
            std::fs::read(lonely.join("three.md")).expect("three"),
            b"three"
        );
    }

    #[test]
    fn a_sweep_removes_what_an_interrupted_run_left_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        assert_eq!(sweep_temp(root).expect("nothing to sweep"), 0);
        let kept = root.join("x/kept.md");
        write_atomic(root, &kept, b"kept").expect("write");
        // What a killed writer leaves: a temp file, written but never renamed.
        std::fs::write(root.join(TEMP_DIR).join(".gazette-abc123.tmp"), b"half").expect("temp");
        assert_eq!(sweep_temp(root).expect("swept"), 1);
        assert_eq!(
            std::fs::read_dir(root.join(TEMP_DIR))
                .expect("list")
                .count(),
            0
        );
        assert_eq!(std::fs::read(&kept).expect("kept"), b"kept");
    }

    #[test]
    fn many_files_make_their_folders_once_and_report_what_changed() {
        for unnamed in [true, false] {
            many_files(unnamed);
        }
    }

    fn many_files(unnamed: bool) {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("x/y/a.md");
        let b = dir.path().join("x/y/b.md");
        let c = dir.path().join("z/c.md");
        write_atomic(dir.path(), &c, b"same").expect("first");
        let d = dir.path().join("x/y/d.md");
        let e = dir.path().join("z/e.md");
        write_atomic(dir.path(), &e, b"old").expect("there before");
        let f = dir.path().join("w/v/f.md");
        let file = |path: &std::path::Path, bytes: &str, new: bool| PendingFile {
            path: path.to_owned(),
            bytes: bytes.to_owned(),
            new,
            staged: None,
        };
        // Staged: `d` is put in place; `b` turned out not new, so its temp file goes
        // unused (and must not be what `b` gets).
        let staged = |bytes: &[u8]| Some(staged_as(dir.path(), bytes, unnamed).expect("staged"));
        let files = vec![
            file(&a, "a", true),
            PendingFile {
                staged: staged(b"stale"),
                ..file(&b, "b", false)
            },
            file(&c, "same", false),
            PendingFile {
                staged: staged(b"d"),
                ..file(&d, "d", true)
            },
            // Staged as new with its bytes only in the temp file, but not new after all.
            PendingFile {
                staged: staged(b"e"),
                ..file(&e, "", false)
            },
            // Staged as new, its folder gone by the turn (or never made): made then.
            PendingFile {
                staged: staged(b"f"),
                ..file(&f, "", true)
            },
        ];
        // Unnamed, they are in no folder at all.
        assert_eq!(temp_files(dir.path()), if unnamed { 0 } else { 4 });
        assert_eq!(
            write_all_deferred(dir.path(), files).expect("written"),
            vec![true, true, false, true, true, true]
        );
        assert_eq!(std::fs::read(&f).expect("f"), b"f");
        assert_eq!(std::fs::read(&e).expect("e"), b"e");
        assert_eq!(std::fs::read(&a).expect("a"), b"a");
        assert_eq!(std::fs::read(&b).expect("b"), b"b");
        assert_eq!(std::fs::read(&d).expect("d"), b"d");
        assert_eq!(
            temp_files(dir.path()),
            0,
            "no temp file is left, used or not"
        );
        // A new file is as readable as any other, staged or not, and leaves no temp file
        // behind.
        use std::os::unix::fs::PermissionsExt as _;
        for new in [&a, &d, &f] {
            let mode = std::fs::metadata(new).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("x/y"))
                .expect("list")
                .count(),
            3
        );
    }

    #[test]
    fn an_unnamed_file_whose_place_is_taken_after_all_replaces_what_is_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let path = root.join("s/2024/01/02/a.md");
        make_folder(path.parent().expect("folder")).expect("folder");
        // Staged as new, but another file got there first: a link cannot replace it, so the
        // bytes go through a named temp file and a rename, as any write does.
        let staged = staged_as(root, b"staged", true).expect("staged");
        std::fs::write(&path, b"there first").expect("file");
        let file = PendingFile {
            path: path.clone(),
            bytes: String::new(),
            new: true,
            staged: Some(staged),
        };
        assert_eq!(
            write_all_deferred(root, vec![file]).expect("written"),
            vec![true]
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"staged");
        assert_eq!(temp_files(root), 0, "no temp file is left");
    }

    #[test]
    fn unnamed_files_are_budgeted_and_give_their_slots_back() {
        static BUDGET: unnamed::Budget = unnamed::Budget::new(|| 2);
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let stage = |bytes: &[u8]| stage_as(root, bytes, BUDGET.take()).expect("staged");
        let first = stage(b"0");
        let second = stage(b"1");
        // Past the budget a staged file is named, and holds no slot.
        let third = stage(b"2");
        assert!(matches!(third.temp, Some(Temp::Named(_))));
        assert_eq!(BUDGET.open_now(), 2);
        // A slot comes back when its file is put in place, and when it is dropped unused.
        let placed = PendingFile {
            path: root.join("a/one.md"),
            bytes: String::new(),
            new: true,
            staged: Some(first),
        };
        write_all_deferred(root, vec![placed]).expect("written");
        assert_eq!(BUDGET.open_now(), 1);
        drop(second);
        assert_eq!(BUDGET.open_now(), 0);
        assert!(matches!(stage(b"3").temp, Some(Temp::Unnamed(_))));
        assert_eq!(std::fs::read(root.join("a/one.md")).expect("read"), b"0");
    }

    #[test]
    fn files_are_readable_and_links_are_followed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("feed.xml");
        write_atomic(dir.path(), &file, b"one").expect("write");
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let real = dir.path().join("real.toml");
        std::fs::write(&real, "a").expect("real");
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        write_atomic_beside(&link, b"b").expect("through the link");
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).expect("read"), b"b");
    }
}
