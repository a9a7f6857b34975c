//! The reader never panics and never hangs, whatever the bytes: every conformance file is read
//! cut off at many points and with bytes flipped, and each reading ends in a feed or an error.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gazette::parse::{ParseLimits, parse_feed};
use url::Url;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance/feeds");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("corpus folder")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, std::fs::read(&path).expect("read"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 150, "the corpus has {} files", files.len());
    files
}

/// Deterministic variants of a document: cut at 16 points, and 16 single bytes replaced by
/// bytes that matter to a parser.
fn variants(doc: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if doc.is_empty() {
        return out;
    }
    for i in 1..=16 {
        out.push(doc[..doc.len() * i / 17].to_vec());
    }
    let specials = [b'<', b'>', b'&', b'"', b';', b'/', 0xff, 0x00];
    for i in 0..16 {
        let mut flipped = doc.to_vec();
        let at = (doc.len() * (2 * i + 1) / 33).min(doc.len() - 1);
        flipped[at] = specials[i % specials.len()];
        out.push(flipped);
    }
    out
}

#[test]
fn every_variant_of_every_corpus_file_ends_in_a_clear_result() {
    let base = Url::parse("http://127.0.0.1/robustness/feed.xml").expect("url");
    let limits = ParseLimits::default();
    let mut read = 0usize;
    let mut rejected = 0usize;
    for (name, doc) in corpus() {
        for variant in variants(&doc) {
            let started = Instant::now();
            match parse_feed(&variant, None, Some(&base), &limits) {
                Ok(_) => read += 1,
                Err(reason) => {
                    assert!(
                        reason.to_string().starts_with("not a feed: "),
                        "{name}: unclear error {reason:?}"
                    );
                    rejected += 1;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{name}: a {}-byte variant took {:?}",
                variant.len(),
                started.elapsed()
            );
        }
    }
    // Both outcomes occur, so neither branch is vacuous.
    assert!(
        read > 1000 && rejected > 100,
        "read {read}, rejected {rejected}"
    );
}
