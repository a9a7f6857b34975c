//! Where archive files go below the archive folder: the path template, and the files a folder
//! holds.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Datelike, Utc};

/// Where archive files go below the archive folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    template: String,
}

const PLACEHOLDERS: &[&str] = &["source", "yyyy", "mm", "dd", "slug"];

impl PathTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("unclosed `{{` in {template:?}"));
            };
            let name = &rest[open + 1..open + close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "unknown placeholder {{{name}}} in {template:?}; known: {}",
                    PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            rest = &rest[open + close + 1..];
        }
        if !template.contains("{slug}") {
            return Err(format!(
                "{template:?} must contain {{slug}} so that articles get their own files"
            ));
        }
        if !template.ends_with(".md") {
            return Err(format!("{template:?} must end with .md"));
        }
        let probe = Self {
            template: template.to_owned(),
        };
        probe
            .render("source", &DateTime::<Utc>::UNIX_EPOCH, "slug")
            .ok_or_else(|| {
                format!(
                    "{template:?} must stay inside the archive folder (no `..`, no absolute path)"
                )
            })?;
        Ok(probe)
    }

    /// The source id a path made by this template names, when the template has `{source}`.
    pub fn source_of(&self, path: &str) -> Option<String> {
        if !self.template.contains("{source}") {
            return None;
        }
        let mut pattern = String::from("^");
        let mut rest = self.template.as_str();
        while let Some(open) = rest.find('{') {
            pattern.push_str(&regex::escape(&rest[..open]));
            let close = open + rest[open..].find('}')?;
            pattern.push_str(match &rest[open + 1..close] {
                "source" => "(?P<source>[^/]+)",
                "yyyy" => "[0-9]{4}",
                "mm" | "dd" => "[0-9]{2}",
                _ => "[^/]*",
            });
            rest = &rest[close + 1..];
        }
        pattern.push_str(&regex::escape(rest));
        pattern.push('$');
        let matched = regex::Regex::new(&pattern).ok()?.captures(path)?;
        Some(matched.name("source")?.as_str().to_owned())
    }

    /// The relative path of an article's file; `None` if it would leave the archive folder.
    /// One pass over the template: it runs for every new article, and five `replace`s and three
    /// date formats cost more than the rest of naming the file.
    pub fn render(&self, source: &str, date: &DateTime<Utc>, slug: &str) -> Option<PathBuf> {
        let mut rendered = String::with_capacity(self.template.len() + source.len() + slug.len());
        let mut rest = self.template.as_str();
        while let Some(open) = rest.find('{') {
            rendered.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            // `parse` let in only known placeholders, each closed.
            let Some(close) = after.find('}') else {
                rendered.push_str(&rest[open..]);
                rest = "";
                break;
            };
            match &after[..close] {
                "source" => rendered.push_str(source),
                // What `%Y` writes: four digits, or a sign and more outside 0..=9999.
                "yyyy" if (0..=9999).contains(&date.year()) => {
                    let _ = write!(rendered, "{:04}", date.year());
                }
                "yyyy" => {
                    let _ = write!(rendered, "{}", date.format("%Y"));
                }
                "mm" => {
                    let _ = write!(rendered, "{:02}", date.month());
                }
                "dd" => {
                    let _ = write!(rendered, "{:02}", date.day());
                }
                "slug" => rendered.push_str(slug),
                other => {
                    rendered.push('{');
                    rendered.push_str(other);
                    rendered.push('}');
                }
            }
            rest = &after[close + 1..];
        }
        rendered.push_str(rest);
        let path = PathBuf::from(rendered);
        let inside = path.components().all(|c| matches!(c, Component::Normal(_)));
        (inside && path.components().next().is_some()).then_some(path)
    }
}

/// Every archive file below `dir` (Markdown files, hidden ones and temp files left out), as
/// relative paths with `/` separators, sorted. A missing folder holds none.
pub fn list_files(dir: &Path) -> crate::error::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let entries = match std::fs::read_dir(dir.join(&relative)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(crate::error::Error::io(dir.join(&relative), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| crate::error::Error::io(dir.join(&relative), e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let path = relative.join(&*name);
            let kind = entry
                .file_type()
                .map_err(|e| crate::error::Error::io(dir.join(&path), e))?;
            if kind.is_dir() {
                pending.push(path);
            } else if name.ends_with(".md") {
                files.push(
                    path.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The relative path with a numeric suffix on the file stem: `a/b.md` -> `a/b-2.md`.
pub fn with_suffix(path: &Path, n: u32) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let ext = path.extension().map(|s| s.to_string_lossy());
    let name = match ext {
        Some(ext) => format!("{stem}-{n}.{ext}"),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_template_stays_in_the_archive() {
        let t = PathTemplate::parse("{source}/{yyyy}/{mm}/{dd}/{slug}.md").expect("default");
        let d = DateTime::parse_from_rfc3339("2024-05-13T10:00:53.911+01:00")
            .expect("date")
            .with_timezone(&Utc);
        assert_eq!(
            t.render("ft", &d, "a-b"),
            Some(PathBuf::from("ft/2024/05/13/a-b.md"))
        );
        assert_eq!(
            t.render("ft", &d, ".."),
            Some(PathBuf::from("ft/2024/05/13/...md"))
        );
        assert_eq!(t.source_of("ft/2024/05/13/a-b-2.md").as_deref(), Some("ft"));
        assert_eq!(t.source_of("ft/2024/5/13/a.md"), None);
        let flat = PathTemplate::parse("{yyyy}/{slug}.md").expect("flat");
        assert_eq!(flat.source_of("2024/a.md"), None);
        assert!(PathTemplate::parse("../{slug}.md").is_err());
        assert!(PathTemplate::parse("/abs/{slug}.md").is_err());
        assert!(PathTemplate::parse("{source}/{nope}/{slug}.md").is_err());
        assert!(PathTemplate::parse("{source}.md").is_err());
        assert_eq!(
            with_suffix(Path::new("a/b.md"), 2),
            PathBuf::from("a/b-2.md")
        );
    }

    proptest::proptest! {
        /// One pass writes what a `replace` per placeholder and chrono's `%Y`, `%m` and `%d`
        /// write, for every date chrono holds and templates in any order.
        #[test]
        fn rendering_is_replacing_each_placeholder(
            seconds in -8_000_000_000_000i64..8_000_000_000_000,
            order in proptest::sample::subsequence(vec!["{yyyy}", "{mm}", "{dd}", "x"], 0..=4),
            flat in proptest::bool::ANY,
        ) {
            let Some(date) = DateTime::from_timestamp(seconds, 0) else {
                return Ok(());
            };
            let folders = order.join(if flat { "-" } else { "/" });
            let template = format!("{{source}}/{folders}/{{slug}}.md");
            let t = PathTemplate::parse(&template).expect("template");
            let replaced = template
                .replace("{source}", "src-1")
                .replace("{yyyy}", &date.format("%Y").to_string())
                .replace("{mm}", &date.format("%m").to_string())
                .replace("{dd}", &date.format("%d").to_string())
                .replace("{slug}", "a-slug");
            let expected = PathBuf::from(replaced);
            proptest::prop_assert_eq!(t.render("src-1", &date, "a-slug"), Some(expected));
        }
    }
}
