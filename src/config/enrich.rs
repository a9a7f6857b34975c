//! The `[enrich]` table: which LLM writes the bilingual sections, and how hard it may be pushed.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::units::duration;

/// Which program answers enrichment requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Any OpenAI-compatible chat completions endpoint.
    Openai,
    /// A local program: the request on stdin, the answer on stdout.
    Command,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichConfig {
    /// `None` switches enrichment off.
    pub provider: Option<Provider>,
    /// Translations, written before the original-language section, in this order.
    pub languages: Vec<String>,
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key; the key never sits in the config file.
    pub api_key_env: String,
    /// For `provider = "command"`: the program and its arguments.
    pub command: Vec<String>,
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub requests_per_minute: u32,
    /// Articles enriched per run at most (the newest first).
    pub max_per_run: usize,
    pub temperature: f32,
    /// How long a new article may wait for its enrichment before it is archived without it.
    #[serde(with = "duration")]
    pub hold: Duration,
    /// Attempts per article before it is reported as failed.
    pub max_attempts: u32,
    /// First delay before retrying a failed enrichment; doubles per attempt.
    #[serde(with = "duration")]
    pub backoff: Duration,
    /// Prompt templates that replace the built-in ones.
    pub system_prompt_file: Option<PathBuf>,
    pub user_prompt_file: Option<PathBuf>,
    /// The longest answer asked for (`max_tokens` of the request).
    pub max_tokens: u64,
    /// Tokens that may be spent in a UTC day, and in a UTC month; none when unset. No request
    /// starts that could pass them (see `Pipeline`'s enrichment), so requests in flight never
    /// overshoot; the articles left wait as pending.
    pub daily_token_budget: Option<u64>,
    pub monthly_token_budget: Option<u64>,
    /// What is sent and written: the whole article, or its title alone.
    pub mode: EnrichMode,
}

/// What enrichment asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnrichMode {
    /// The article is sent whole; its file gets a translation and a summary.
    #[default]
    Full,
    /// Only the title is sent; each translation section is its translated heading alone,
    /// followed by the original section as it is. Costs a fraction of `full`.
    Title,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        Self {
            provider: None,
            languages: Vec::new(),
            base_url: "https://api.openai.com/v1".to_owned(),
            model: "gpt-4o-mini".to_owned(),
            api_key_env: "OPENAI_API_KEY".to_owned(),
            command: Vec::new(),
            timeout: Duration::from_secs(120),
            concurrency: 4,
            requests_per_minute: 60,
            max_per_run: 200,
            temperature: 0.2,
            hold: Duration::ZERO,
            max_attempts: 5,
            backoff: Duration::from_secs(10 * 60),
            system_prompt_file: None,
            user_prompt_file: None,
            max_tokens: 4096,
            daily_token_budget: None,
            monthly_token_budget: None,
            mode: EnrichMode::Full,
        }
    }
}

impl EnrichConfig {
    /// Checks what serde cannot; `base` resolves relative paths.
    pub(super) fn check(&mut self, base: &std::path::Path) -> Result<(), String> {
        let Some(provider) = self.provider else {
            return Ok(());
        };
        if self.languages.is_empty() {
            return Err(
                "enrich.languages must name at least one language to translate into".to_owned(),
            );
        }
        self.languages = self
            .languages
            .iter()
            .map(|l| l.trim().to_lowercase())
            .collect();
        if self.concurrency == 0
            || self.requests_per_minute == 0
            || self.max_attempts == 0
            || self.max_tokens == 0
        {
            return Err(
                "enrich.concurrency, requests_per_minute, max_attempts and max_tokens must be at \
                 least 1"
                    .to_owned(),
            );
        }
        match provider {
            Provider::Openai => {
                url::Url::parse(&self.base_url).map_err(|e| format!("enrich.base_url: {e}"))?;
                if self.api_key_env.trim().is_empty() {
                    return Err("enrich.api_key_env must name an environment variable".to_owned());
                }
            }
            Provider::Command => {
                let Some(program) = self.command.first_mut() else {
                    return Err(
                        "enrich.command must name a program for provider \"command\"".to_owned(),
                    );
                };
                // `./script` and `dir/script` are relative to the config file; bare names use PATH.
                if program.contains('/') && !program.starts_with('/') {
                    *program = base.join(&*program).display().to_string();
                }
            }
        }
        for file in [&mut self.system_prompt_file, &mut self.user_prompt_file]
            .into_iter()
            .flatten()
        {
            *file = base.join(&*file);
        }
        Ok(())
    }
}
