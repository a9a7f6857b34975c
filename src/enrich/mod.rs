//! Bilingual enrichment: an LLM writes a translation of each article into the configured
//! languages and a summary in the article's own language, the sections of the archive's
//! bilingual files.
//!
//! Both providers share one contract: the request is the article as JSON, the answer is
//! `{"sections": [{"language", "title", "body"}, ...]}`. Answers are validated before use and
//! cached by content, provider, model, prompt and languages, so nothing is paid for twice.

mod command;
mod openai;
pub mod prompt;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use crate::config::{EnrichConfig, EnrichMode, Provider};
use crate::error::Result;
use crate::model::{Document, Section};
use crate::text;
use prompt::Prompts;

/// What the LLM is asked about one article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub source: String,
    pub key: String,
    pub title: String,
    pub link: String,
    pub language: String,
    pub description: String,
    pub body: String,
    pub targets: Vec<String>,
    /// Title mode: only the title is sent (description and body are empty), and the answer
    /// is one section per target with the translated title and an empty body.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub titles_only: bool,
}

impl Request {
    pub fn for_document(source: &str, key: &str, doc: &Document, targets: &[String]) -> Self {
        Self {
            source: source.to_owned(),
            key: key.to_owned(),
            title: doc.original.title.clone(),
            link: doc.link.clone(),
            language: doc.original.language.clone(),
            description: doc.description.clone(),
            body: doc.original.body.clone(),
            targets: targets.to_vec(),
            titles_only: false,
        }
    }

    /// The same request with the title alone (see [`Request::titles_only`]).
    #[must_use]
    pub fn titles_only(self) -> Self {
        Self {
            description: String::new(),
            body: String::new(),
            titles_only: true,
            ..self
        }
    }
}

/// One section of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerSection {
    pub language: String,
    pub title: String,
    pub body: String,
}

/// The LLM's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub sections: Vec<AnswerSection>,
}

/// Tokens an answer cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

impl Usage {
    fn add(self, other: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens + other.prompt_tokens,
            completion_tokens: self.completion_tokens + other.completion_tokens,
        }
    }
}

/// Why an enrichment did not produce a usable answer. Messages never carry the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnrichError {
    /// The provider could not be reached or failed (timeout, 5xx, exit status, ...).
    #[error("{0}")]
    Failed(String),
    /// The provider asked to be left alone for a while (429, 503 with Retry-After).
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The answer did not follow the contract.
    #[error("invalid answer: {0}")]
    Invalid(String),
}

impl EnrichError {
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            EnrichError::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// An answer with what it cost, and the cost of failed tries on the way.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub result: std::result::Result<Answer, EnrichError>,
    pub usage: Usage,
}

/// Talks to the configured provider within the configured limits.
#[derive(Debug)]
pub struct Enricher {
    config: EnrichConfig,
    provider: Provider,
    prompts: Prompts,
    http: reqwest::Client,
    in_flight: Semaphore,
    /// When the next request may start, for `requests_per_minute`.
    next_start: Mutex<Instant>,
}

impl Enricher {
    /// `None` when enrichment is not configured.
    pub fn new(config: &EnrichConfig) -> Result<Option<Arc<Self>>> {
        let Some(provider) = config.provider else {
            return Ok(None);
        };
        let http = reqwest::Client::builder()
            .user_agent(crate::config::default_user_agent())
            .timeout(config.timeout)
            .build()
            .map_err(|e| crate::Error::Client(e.to_string()))?;
        Ok(Some(Arc::new(Self {
            config: config.clone(),
            provider,
            prompts: Prompts::load(config)?,
            http,
            in_flight: Semaphore::new(config.concurrency),
            next_start: Mutex::new(Instant::now()),
        })))
    }

    pub fn config(&self) -> &EnrichConfig {
        &self.config
    }

    /// The request for an article's document, in the configured mode.
    pub fn request(&self, source: &str, key: &str, doc: &Document) -> Request {
        let request = Request::for_document(source, key, doc, self.targets());
        match self.config.mode {
            EnrichMode::Full => request,
            EnrichMode::Title => request.titles_only(),
        }
    }

    /// Whether only titles are asked for.
    pub fn titles_only(&self) -> bool {
        self.config.mode == EnrichMode::Title
    }

    pub fn targets(&self) -> &[String] {
        &self.config.languages
    }

    /// The cache key of an answer for this content under the current provider, model, prompts
    /// and languages.
    /// Which model and prompt version write the sections, as the article record keeps it.
    pub fn label(&self) -> String {
        let model = match self.provider {
            Provider::Openai => self.config.model.clone(),
            Provider::Command => self.config.command.join(" "),
        };
        match self.config.mode {
            EnrichMode::Full => format!("{model} (prompt {})", self.prompts.version()),
            EnrichMode::Title => format!("{model} (prompt {}, titles)", self.prompts.version()),
        }
    }

    pub fn cache_key(&self, content_hash: &str) -> String {
        let model = match self.provider {
            Provider::Openai => format!(
                "openai\u{1f}{}\u{1f}{}",
                self.config.base_url, self.config.model
            ),
            Provider::Command => format!("command\u{1f}{}", self.config.command.join("\u{1e}")),
        };
        let mut hasher = Sha256::new();
        let mode = match self.config.mode {
            EnrichMode::Full => "",
            EnrichMode::Title => "title",
        };
        for part in [
            content_hash,
            &model,
            self.prompts.version(),
            &self.config.languages.join(","),
            mode,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hex::encode(hasher.finalize())
    }

    /// Asks the provider, within the concurrency and rate limits, and validates the answer.
    pub async fn enrich(&self, request: &Request) -> Outcome {
        let Ok(_permit) = self.in_flight.acquire().await else {
            return Outcome {
                result: Err(EnrichError::Failed(
                    "the enricher is shutting down".to_owned(),
                )),
                usage: Usage::default(),
            };
        };
        self.wait_for_rate_limit().await;
        match self.provider {
            Provider::Openai => openai::enrich(self, request).await,
            Provider::Command => {
                let (result, usage) = command::enrich(self, request).await;
                let result = result.and_then(|answer| {
                    validate(&answer, request).map_err(EnrichError::Invalid)?;
                    Ok(answer)
                });
                Outcome { result, usage }
            }
        }
    }

    async fn wait_for_rate_limit(&self) {
        let spacing = Duration::from_secs(60) / self.config.requests_per_minute.max(1);
        let start = {
            let mut next = self.next_start.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + spacing;
            start
        };
        tokio::time::sleep_until(start).await;
    }

    /// The request as the provider will see it, for `enrich --dry-run`.
    pub fn describe(&self, request: &Request) -> serde_json::Value {
        let request_json = serde_json::to_string(request).unwrap_or_default();
        match self.provider {
            Provider::Openai => serde_json::json!({
                "provider": "openai",
                "url": openai::endpoint(&self.config.base_url),
                "body": openai::body(self, &request_json, request),
            }),
            Provider::Command => serde_json::json!({
                "provider": "command",
                "command": self.config.command,
                "stdin": request,
            }),
        }
    }
}

fn same_language(a: &str, b: &str) -> bool {
    let primary = |l: &str| l.split(['-', '_']).next().unwrap_or(l).to_lowercase();
    a.eq_ignore_ascii_case(b) || primary(a) == primary(b)
}

/// The answer follows the contract: every target and the original language, each with a title
/// and a body, Markdown without raw HTML.
pub fn validate(answer: &Answer, request: &Request) -> std::result::Result<(), String> {
    // In title mode only the targets' titles are asked for.
    let original = (!request.titles_only).then_some(request.language.as_str());
    for language in request.targets.iter().map(String::as_str).chain(original) {
        let Some(section) = answer
            .sections
            .iter()
            .find(|s| same_language(&s.language, language))
        else {
            return Err(format!("there is no section in language {language:?}"));
        };
        if section.title.trim().is_empty()
            || (!request.titles_only && section.body.trim().is_empty())
        {
            return Err(format!(
                "the {language:?} section has an empty title or body"
            ));
        }
        if text::looks_like_markup(&section.body) || text::looks_like_markup(&section.title) {
            return Err(format!(
                "the {language:?} section contains raw HTML; Markdown only"
            ));
        }
    }
    Ok(())
}

/// The bilingual document: the answer's translations first, then the original language's
/// summary under the original title the answer gives. In title mode (`titles_only`), each
/// translation is its heading alone and the original section stays as it is.
pub fn apply(doc: &Document, answer: &Answer, targets: &[String], titles_only: bool) -> Document {
    if titles_only {
        let translations = targets
            .iter()
            .map(|language| Section {
                language: language.clone(),
                title: answer
                    .sections
                    .iter()
                    .find(|s| same_language(&s.language, language))
                    .map_or_else(
                        || doc.original.title.clone(),
                        |s| text::collapse_whitespace(&s.title),
                    ),
                body: String::new(),
            })
            .collect();
        return Document {
            translations,
            ..doc.clone()
        };
    }
    let section = |language: &str, fallback: &Section| {
        answer
            .sections
            .iter()
            .find(|s| same_language(&s.language, language))
            .map_or_else(
                || fallback.clone(),
                |s| Section {
                    language: language.to_owned(),
                    title: text::collapse_whitespace(&s.title),
                    body: text::tidy_generated_markdown(&s.body),
                },
            )
    };
    Document {
        translations: targets.iter().map(|l| section(l, &doc.original)).collect(),
        original: section(&doc.original.language, &doc.original),
        ..doc.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(sections: &[(&str, &str, &str)]) -> Answer {
        Answer {
            sections: sections
                .iter()
                .map(|(language, title, body)| AnswerSection {
                    language: (*language).to_owned(),
                    title: (*title).to_owned(),
                    body: (*body).to_owned(),
                })
                .collect(),
        }
    }

    fn request(language: &str, titles_only: bool) -> Request {
        Request {
            source: "s".to_owned(),
            key: "k".to_owned(),
            title: "T".to_owned(),
            link: String::new(),
            language: language.to_owned(),
            description: String::new(),
            body: String::new(),
            targets: vec!["zh".to_owned()],
            titles_only,
        }
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let en = request("en", false);
        assert_eq!(
            validate(
                &answer(&[("zh", "标题", "正文"), ("en", "T", "**B**")]),
                &en
            ),
            Ok(())
        );
        assert!(
            validate(&answer(&[("zh", "标题", "正文")]), &en)
                .expect_err("missing")
                .contains("\"en\"")
        );
        assert!(
            validate(&answer(&[("zh", "", "正文"), ("en", "T", "B")]), &en)
                .expect_err("empty")
                .contains("empty")
        );
        assert!(
            validate(
                &answer(&[("zh", "标题", "<p>正文</p>"), ("en", "T", "B")]),
                &en
            )
            .expect_err("html")
            .contains("HTML")
        );
        assert_eq!(
            validate(
                &answer(&[("zh-CN", "标题", "正文"), ("en", "T", "B")]),
                &request("en-us", false)
            ),
            Ok(())
        );
        // Title mode: the targets' titles only; an empty body is the answer asked for.
        let titles = request("en", true);
        assert_eq!(validate(&answer(&[("zh", "标题", "")]), &titles), Ok(()));
        assert!(validate(&answer(&[("zh", "", "")]), &titles).is_err());
    }

    #[test]
    fn apply_orders_sections_and_keeps_the_rest() {
        let doc = Document {
            link: "https://example.org/a".to_owned(),
            date: chrono::DateTime::UNIX_EPOCH,
            description: "d".to_owned(),
            tags: vec!["t".to_owned()],
            author: "a".to_owned(),
            translations: vec![],
            original: Section {
                language: "en".to_owned(),
                title: "T".to_owned(),
                body: "full text".to_owned(),
            },
        };
        let out = apply(
            &doc,
            &answer(&[("en", "T", "summary\n\n# Big"), ("zh", "标题", "正文")]),
            &["zh".to_owned()],
            false,
        );
        let titles = apply(
            &doc,
            &answer(&[("zh", "标题", "")]),
            &["zh".to_owned()],
            true,
        );
        assert_eq!(titles.translations[0].title, "标题");
        assert_eq!(titles.translations[0].body, "");
        assert_eq!(
            titles.original, doc.original,
            "title mode keeps the original section"
        );
        assert_eq!(out.translations[0].title, "标题");
        assert_eq!(out.original.body, "summary\n\n## Big");
        assert_eq!(out.title(), "标题");
        assert_eq!((out.link, out.tags), (doc.link, doc.tags));
    }
}
