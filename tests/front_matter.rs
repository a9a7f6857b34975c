//! Property test: whatever titles, descriptions and tags look like, the front matter reads back
//! with real YAML parsers (serde_yaml and yaml-rust2) as the same strings, the whole file reads
//! back as the same document, and the file's path stays inside the archive folder.

mod common;

use std::path::{Component, Path};

use gazette::format::Labels;
use gazette::format::PathTemplate;
use gazette::publish::archive::{read, render};
use gazette::text::slug;
use gazette::{Document, Section};
use proptest::prelude::*;

/// Every awkward value the archive format names, and more.
const AWKWARD: &[&str] = &[
    "Q3: results",
    "- list",
    "#1 hit",
    "[draft]",
    "{x}",
    "'quoted'",
    "\"quoted\"",
    "@user",
    "*bold*",
    "& more",
    "!tag",
    "%",
    ">",
    "|",
    "true",
    "yes",
    "off",
    "null",
    "~",
    "2024",
    "1.5",
    "0x1F",
    "2024-05-13",
    "a # b",
    " leading",
    "trailing ",
    "tab\there",
    "new\nline",
    "bell\u{7}",
    "---",
    "...",
    "--- x",
    "\u{202e}bidi\u{200f}",
    "\u{feff}bom",
    "line\u{2028}sep",
    "NO",
    "y",
    "=",
    "<<",
    ".inf",
    "1_000",
    "12:30",
    "",
    " ",
    "\\",
    "\"",
    "'",
    "key: value",
    "title: x\n---\nauthor: y",
];

fn awkward() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(AWKWARD).prop_map(str::to_owned),
        any::<String>(),
        "[ -~\u{0}-\u{1f}\u{7f}-\u{9f}\u{200e}\u{202a}-\u{202e}\u{2028}\u{feff}中文:#'\"-]{0,40}",
        proptest::collection::vec(proptest::sample::select(AWKWARD), 1..4).prop_map(|v| v.concat()),
        "[a-z :#]{10000,10240}",
    ]
}

fn document(title: String, description: String, tags: Vec<String>) -> Document {
    Document {
        link: "https://example.org/a".to_owned(),
        date: chrono::DateTime::from_timestamp_millis(1_715_590_853_911).expect("date"),
        description,
        tags,
        author: "ex".to_owned(),
        translations: vec![],
        original: Section {
            language: "en".to_owned(),
            title,
            body: "Body.".to_owned(),
        },
    }
}

fn front_matter(file: &str) -> &str {
    let rest = file.strip_prefix("---\n").expect("opening line");
    let end = rest.find("\n---\n").expect("closing line");
    &rest[..=end]
}

fn check_serde_yaml(yaml: &str, doc: &Document) -> Result<(), TestCaseError> {
    let map: serde_yaml::Mapping = serde_yaml::from_str(yaml)
        .map_err(|e| TestCaseError::fail(format!("serde_yaml: {e}\n{yaml}")))?;
    let text = |key: &str| map.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    prop_assert_eq!(text("title"), Some(doc.title().to_owned()));
    prop_assert_eq!(text("description"), Some(doc.description.clone()));
    prop_assert_eq!(text("author"), Some(doc.author.clone()));
    prop_assert_eq!(text("date"), Some("2024-05-13T09:00:53.911Z".to_owned()));
    let tags: Vec<Option<String>> = map
        .get("tags")
        .and_then(|v| v.as_sequence())
        .map(|s| s.iter().map(|t| t.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    prop_assert_eq!(tags, doc.tags.iter().cloned().map(Some).collect::<Vec<_>>());
    prop_assert_eq!(map.len(), 5);
    Ok(())
}

fn check_yaml_rust2(yaml: &str, doc: &Document) -> Result<(), TestCaseError> {
    use yaml_rust2::{Yaml, YamlLoader};
    let docs = YamlLoader::load_from_str(yaml)
        .map_err(|e| TestCaseError::fail(format!("yaml-rust2: {e}\n{yaml}")))?;
    prop_assert_eq!(docs.len(), 1);
    let map = &docs[0];
    prop_assert_eq!(&map["title"], &Yaml::String(doc.title().to_owned()));
    prop_assert_eq!(&map["description"], &Yaml::String(doc.description.clone()));
    let tags: Vec<Yaml> = doc.tags.iter().cloned().map(Yaml::String).collect();
    prop_assert_eq!(&map["tags"], &Yaml::Array(tags));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn front_matter_reads_back_unchanged(
        title in awkward(),
        description in awkward(),
        tags in proptest::collection::vec(awkward(), 0..4),
    ) {
        let doc = document(title, description, tags);
        let file = render(&doc, &Labels::default());
        let yaml = front_matter(&file);
        // Each value is one line: the five keys and the tag items, nothing else.
        prop_assert_eq!(yaml.lines().count(), 5 + doc.tags.len());
        check_serde_yaml(yaml, &doc)?;
        check_yaml_rust2(yaml, &doc)?;
        prop_assert_eq!(read(&file, &Labels::default(), &[]), Ok(doc));
    }

    #[test]
    fn archive_paths_stay_in_the_archive_folder(title in awkward(), source in "[a-z0-9_-]{1,12}") {
        let template = PathTemplate::parse("{source}/{yyyy}/{mm}/{dd}/{slug}.md").expect("template");
        let date = chrono::DateTime::from_timestamp_millis(1_715_590_853_911).expect("date");
        let path = template.render(&source, &date, &slug(&title)).expect("a path inside the archive");
        prop_assert!(path.components().all(|c| matches!(c, Component::Normal(_))), "{}", path.display());
        let archive = Path::new("/archive");
        prop_assert!(archive.join(&path).starts_with(archive));
        let name = path.file_name().and_then(|n| n.to_str()).expect("file name");
        prop_assert!(name.len() <= 80 + ".md".len() && name.ends_with(".md") && name.len() > ".md".len(), "{}", name);
    }
}
