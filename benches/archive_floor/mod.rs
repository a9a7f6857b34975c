//! The archive floor: the file system's share of a cold run, and nothing else. The compare bench
//! lists the files Gazette's first cold run wrote (their paths and sizes), then runs this job, in
//! a process of its own like the tools, to make the same files again in an empty folder with
//! Gazette's own file functions (`gazette::files`): each folder made once, each file staged (an
//! unnamed file where the system has them, else a temp file of the tree) and put in place, on a
//! thread per core, then one flush of the file system. No feed is fetched or parsed and no state
//! is kept, so no program that writes the same archive safely can take less. It says how much of a
//! cold run the archive format's files and folders cost on the machine at hand, a cost that varies
//! with the machine's file system more than the rest of the run does.
//!
//! The bench runs its own executable with [`FLAG`] and the listing's path to do the job.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use gazette::files;

/// The first argument that makes the bench's executable run the job instead of the bench.
pub const FLAG: &str = "--archive-floor";

/// What a tree holds: a line per file (its size, a tab, its path under the tree), and how many
/// files and folders.
pub struct Listing {
    pub text: String,
    pub files: usize,
    pub folders: usize,
}

/// The files under `root`, at any depth, its temp folder left out.
pub fn listing(root: &Path) -> Listing {
    let mut listing = Listing {
        text: String::new(),
        files: 0,
        folders: 0,
    };
    list_into(root, Path::new(""), &mut listing);
    listing
}

fn list_into(root: &Path, under: &Path, listing: &mut Listing) {
    let entries = std::fs::read_dir(root.join(under))
        .unwrap_or_else(|e| panic!("list {}: {e}", root.join(under).display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let name = entry.file_name();
        if under.as_os_str().is_empty() && name == files::TEMP_DIR {
            continue;
        }
        let path = under.join(&name);
        let meta = entry.metadata().expect("file metadata");
        if meta.is_dir() {
            listing.folders += 1;
            list_into(root, &path, listing);
        } else {
            let path = path.to_str().expect("archive paths are UTF-8");
            assert!(!path.contains(['\t', '\n']), "unlistable path {path:?}");
            listing.files += 1;
            let _ = writeln!(listing.text, "{}\t{path}", meta.len());
        }
    }
}

/// Runs the job when the process was started for it (`FLAG listing`), in the current folder:
/// the files of the listing under `archive/`. Returns whether it ran.
pub fn run_if_asked() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [flag, listing] = args.as_slice() else {
        return false;
    };
    if flag != FLAG {
        return false;
    }
    let text = std::fs::read_to_string(listing).expect("read the listing");
    make_all(Path::new("archive"), &text);
    true
}

/// Makes every file of `listing` under `root`, its folders first as each is met, with a thread
/// per core, each taking whole top folders (sources) so that no two make the same folder.
fn make_all(root: &Path, listing: &str) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut sources: HashMap<&str, usize> = HashMap::new();
    let mut shares: Vec<Vec<(usize, &str)>> = vec![Vec::new(); threads];
    let mut largest = 0;
    for line in listing.lines() {
        let (size, path) = line
            .split_once('\t')
            .expect("a listing line: size, tab, path");
        let size: usize = size.parse().expect("a file size");
        largest = largest.max(size);
        let source = path.split('/').next().unwrap_or(path);
        let next = sources.len();
        let thread = *sources.entry(source).or_insert(next) % threads;
        shares[thread].push((size, path));
    }
    let bytes = vec![b'x'; largest];
    std::thread::scope(|scope| {
        for share in &shares {
            let bytes = &bytes;
            scope.spawn(move || make_share(root, share, bytes));
        }
    });
    files::sync_filesystem(root).expect("flush the tree");
}

/// Makes `share`'s files with Gazette's own file functions, in the order a cold run uses
/// them: each folder as it is met, each file of a source staged, then the source's files put
/// in place (a run stages a source's articles, then its write turn places them; staged all at
/// once, tens of thousands of files would outrun the budget of unnamed ones).
fn make_share(root: &Path, share: &[(usize, &str)], bytes: &[u8]) {
    let mut made: HashSet<&Path> = HashSet::new();
    let mut pending = Vec::new();
    let mut staging = None;
    for &(size, path) in share {
        let source = path.split('/').next();
        if staging != source {
            files::write_all_deferred(root, std::mem::take(&mut pending))
                .expect("put the files in place");
            staging = source;
        }
        if let Some(folder) = Path::new(path).parent()
            && made.insert(folder)
        {
            files::make_folder(&root.join(folder)).expect("make a folder");
        }
        pending.push(files::PendingFile {
            path: root.join(path),
            bytes: String::new(),
            new: true,
            staged: Some(files::stage(root, &bytes[..size]).expect("stage a file")),
        });
    }
    files::write_all_deferred(root, pending).expect("put the files in place");
}
