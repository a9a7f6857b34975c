//! The archive format against its reference files: byte-exact writing, and reading back.

mod common;

use std::path::PathBuf;

use common::reference;
use gazette::format::Labels;
use gazette::publish::archive::{read, render};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/archive-format")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn monolingual_reference_is_written_byte_for_byte() {
    let written = render(&reference::monolingual(), &Labels::default());
    assert_eq!(written, fixture("monolingual-en.md"));
}

#[test]
fn bilingual_reference_is_written_byte_for_byte() {
    let written = render(&reference::bilingual(), &Labels::default());
    assert_eq!(written, fixture("bilingual-zh-en.md"));
}

#[test]
fn reference_files_read_back_to_their_models() {
    let labels = Labels::default();
    assert_eq!(
        read(&fixture("monolingual-en.md"), &labels, &[]),
        Ok(reference::monolingual())
    );
    assert_eq!(
        read(&fixture("bilingual-zh-en.md"), &labels, &[]),
        Ok(reference::bilingual())
    );
}

/// The fixtures are copies of the format's reference files; when the originals sit beside the
/// repository, the copies must not have drifted.
#[test]
fn fixtures_match_the_shared_reference_files() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/archive-format");
    if !shared.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs with ../shared beside the repository; {} is missing",
            shared.display()
        );
        eprintln!(
            "{} not present; comparing the fixtures is skipped",
            shared.display()
        );
        return;
    }
    for name in ["monolingual-en.md", "bilingual-zh-en.md"] {
        let original = std::fs::read_to_string(shared.join(name)).expect("shared reference file");
        assert_eq!(
            fixture(name),
            original,
            "{name} differs from the shared reference"
        );
    }
}
