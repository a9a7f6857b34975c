//! What shapes the content of a source's articles: full-text extraction, filters, rewrites.
//! Patterns and selectors are compiled when the config is loaded, so a typo is a config error
//! with its line, not a failure in the middle of a run.

use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use super::units::optional_duration;

/// `[filters]` and a source's `filters = { ... }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiltersConfig {
    pub include_title: Vec<String>,
    pub exclude_title: Vec<String>,
    pub include_description: Vec<String>,
    pub exclude_description: Vec<String>,
    pub include_tags: Vec<String>,
    pub exclude_tags: Vec<String>,
    pub include_link: Vec<String>,
    pub exclude_link: Vec<String>,
    /// Entries older than this are skipped.
    #[serde(with = "optional_duration")]
    pub max_age: Option<Duration>,
    /// New articles archived per run at most (the newest).
    pub max_per_run: Option<usize>,
}

/// A source's `extract = { content = "article .body", remove = [".ad"] }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractConfig {
    /// CSS selector of the article text; without it, Readability's pick of the page is taken.
    pub content: Option<String>,
    /// CSS selectors of parts to drop from it.
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteRule {
    pub pattern: String,
    pub replace: String,
}

/// A source's `rewrite = { links = [...], title = [...] }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewriteConfig {
    pub links: Vec<RewriteRule>,
    pub title: Vec<RewriteRule>,
}

/// Which field a filter looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Title,
    Description,
    Tags,
    Link,
}

/// Checked filters: global ones and the source's together.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    include: Vec<(Field, Regex)>,
    exclude: Vec<(Field, Regex)>,
    pub max_age: Option<Duration>,
    pub max_per_run: Option<usize>,
}

fn compile(patterns: &[String], what: &str) -> Result<Vec<Regex>, String> {
    patterns
        .iter()
        .map(|p| Regex::new(p).map_err(|e| format!("{what}: invalid pattern {p:?}: {e}")))
        .collect()
}

impl Filters {
    /// The global filters, then the source's; the source's limits win.
    pub fn new(global: &FiltersConfig, own: &FiltersConfig) -> Result<Self, String> {
        let mut filters = Filters {
            max_age: own.max_age.or(global.max_age),
            max_per_run: own.max_per_run.or(global.max_per_run),
            ..Filters::default()
        };
        for config in [global, own] {
            for (field, include, exclude, name) in [
                (
                    Field::Title,
                    &config.include_title,
                    &config.exclude_title,
                    "title",
                ),
                (
                    Field::Description,
                    &config.include_description,
                    &config.exclude_description,
                    "description",
                ),
                (
                    Field::Tags,
                    &config.include_tags,
                    &config.exclude_tags,
                    "tags",
                ),
                (
                    Field::Link,
                    &config.include_link,
                    &config.exclude_link,
                    "link",
                ),
            ] {
                for re in compile(include, &format!("include_{name}"))? {
                    filters.include.push((field, re));
                }
                for re in compile(exclude, &format!("exclude_{name}"))? {
                    filters.exclude.push((field, re));
                }
            }
        }
        Ok(filters)
    }

    /// `None` when an article with these fields is kept, else why not. Every include pattern
    /// must match (a tag pattern: some tag); no exclude pattern may.
    pub fn rejects(
        &self,
        title: &str,
        description: &str,
        tags: &[String],
        link: &str,
    ) -> Option<String> {
        let matches = |field: Field, re: &Regex| match field {
            Field::Title => re.is_match(title),
            Field::Description => re.is_match(description),
            Field::Link => re.is_match(link),
            Field::Tags => tags.iter().any(|t| re.is_match(t)),
        };
        if let Some((field, re)) = self.exclude.iter().find(|(f, re)| matches(*f, re)) {
            return Some(format!("excluded: {field:?} matches {}", re.as_str()));
        }
        if let Some((field, re)) = self.include.iter().find(|(f, re)| !matches(*f, re)) {
            return Some(format!(
                "not included: {field:?} does not match {}",
                re.as_str()
            ));
        }
        None
    }
}

/// Checked extraction settings.
#[derive(Debug, Clone)]
pub struct Extract {
    pub content: Option<scraper::Selector>,
    pub remove: Vec<scraper::Selector>,
    /// The settings as written, for the source's fingerprint.
    pub written: String,
}

fn selector(text: &str) -> Result<scraper::Selector, String> {
    scraper::Selector::parse(text).map_err(|e| format!("invalid CSS selector {text:?}: {e}"))
}

impl Extract {
    pub fn new(config: &ExtractConfig) -> Result<Self, String> {
        Ok(Self {
            content: config.content.as_deref().map(selector).transpose()?,
            remove: config
                .remove
                .iter()
                .map(|s| selector(s))
                .collect::<Result<_, _>>()?,
            written: format!("{:?}|{:?}", config.content, config.remove),
        })
    }
}

/// Checked rewrite rules.
#[derive(Debug, Clone, Default)]
pub struct Rewrites {
    pub links: Vec<(Regex, String)>,
    pub title: Vec<(Regex, String)>,
}

impl Rewrites {
    pub fn new(config: &RewriteConfig) -> Result<Self, String> {
        let rules = |rules: &[RewriteRule], what: &str| {
            rules
                .iter()
                .map(|r| {
                    Regex::new(&r.pattern)
                        .map(|re| (re, r.replace.clone()))
                        .map_err(|e| {
                            format!("rewrite.{what}: invalid pattern {:?}: {e}", r.pattern)
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            links: rules(&config.links, "links")?,
            title: rules(&config.title, "title")?,
        })
    }

    pub fn apply(rules: &[(Regex, String)], text: &str) -> String {
        rules.iter().fold(text.to_owned(), |text, (re, replace)| {
            re.replace_all(&text, replace.as_str()).into_owned()
        })
    }

    /// The rules as written, for the source's fingerprint.
    pub fn written(&self) -> String {
        let list = |rules: &[(Regex, String)]| {
            rules
                .iter()
                .map(|(re, r)| format!("{}=>{r}", re.as_str()))
                .collect::<Vec<_>>()
                .join(";")
        };
        format!("{}|{}", list(&self.links), list(&self.title))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_include_exclude_and_explain() {
        let global = FiltersConfig {
            exclude_title: vec!["(?i)sponsored".to_owned()],
            ..FiltersConfig::default()
        };
        let own = FiltersConfig {
            include_tags: vec!["^world$".to_owned()],
            max_per_run: Some(5),
            ..FiltersConfig::default()
        };
        let filters = Filters::new(&global, &own).expect("valid");
        let tags = ["world".to_owned()];
        assert_eq!(filters.rejects("Plain news", "", &tags, "https://x"), None);
        assert!(
            filters
                .rejects("SPONSORED: buy", "", &tags, "https://x")
                .is_some_and(|r| r.starts_with("excluded"))
        );
        assert!(
            filters
                .rejects("Plain", "", &["tech".to_owned()], "https://x")
                .is_some_and(|r| r.starts_with("not included"))
        );
        assert_eq!(filters.max_per_run, Some(5));
        assert!(
            Filters::new(
                &FiltersConfig {
                    exclude_link: vec!["(".to_owned()],
                    ..FiltersConfig::default()
                },
                &own
            )
            .is_err()
        );
    }

    #[test]
    fn rewrites_apply_in_order() {
        let config = RewriteConfig {
            links: vec![RewriteRule {
                pattern: "^https://www\\.ft\\.com/".to_owned(),
                replace: "https://ft.com/".to_owned(),
            }],
            title: vec![RewriteRule {
                pattern: "\\s*\\|\\s*[^|]+$".to_owned(),
                replace: String::new(),
            }],
        };
        let rewrites = Rewrites::new(&config).expect("valid");
        assert_eq!(
            Rewrites::apply(&rewrites.links, "https://www.ft.com/content/1"),
            "https://ft.com/content/1"
        );
        assert_eq!(
            Rewrites::apply(&rewrites.title, "Big story | Site Name"),
            "Big story"
        );
        assert!(
            Extract::new(&ExtractConfig {
                content: Some("article[".to_owned()),
                remove: vec![]
            })
            .is_err()
        );
    }
}
