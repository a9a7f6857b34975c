//! Prompt templates. The built-in ones can be replaced from files; a version derived from the
//! templates' text is part of the cache key, so editing a prompt re-enriches instead of reusing
//! answers made with the old one.

use sha2::{Digest, Sha256};

use crate::config::EnrichConfig;
use crate::error::{Error, Result};

const SYSTEM: &str = "You turn news articles into the sections of a bilingual news archive.
Answer with one JSON object and nothing else, of this shape:
{\"sections\": [{\"language\": \"<code>\", \"title\": \"<title>\", \"body\": \"<Markdown>\"}, ...]}
Give one section for each target language, in the order given, each with the article's title and
text translated into that language, faithfully and completely. Then give one last section in the
article's own language: its title is the original title, its body a summary of the article in two
to four paragraphs with the key phrases in **bold**.
Bodies are Markdown paragraphs separated by blank lines: no HTML, no level-one headings, no links
to anything the article does not link to.";

const USER: &str = "Target languages: {targets}. The article's own language: {language}.
The article, as JSON:
{request}";

/// The templates in use and their version.
#[derive(Debug, Clone)]
pub struct Prompts {
    system: String,
    user: String,
    version: String,
}

impl Prompts {
    pub fn load(config: &EnrichConfig) -> Result<Self> {
        let read = |file: &Option<std::path::PathBuf>, default: &str| match file {
            Some(path) => std::fs::read_to_string(path).map_err(|e| Error::io(path, e)),
            None => Ok(default.to_owned()),
        };
        let system = read(&config.system_prompt_file, SYSTEM)?;
        let user = read(&config.user_prompt_file, USER)?;
        let mut hasher = Sha256::new();
        hasher.update(system.as_bytes());
        hasher.update([0]);
        hasher.update(user.as_bytes());
        let version = hex::encode(&hasher.finalize()[..6]);
        Ok(Self {
            system,
            user,
            version,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn system(&self) -> &str {
        &self.system
    }

    /// The user message for a request, its placeholders filled.
    pub fn user(&self, targets: &[String], language: &str, request_json: &str) -> String {
        self.user
            .replace("{targets}", &targets.join(", "))
            .replace("{language}", language)
            .replace("{request}", request_json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_from_files_fill_placeholders_and_change_the_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("user.txt");
        std::fs::write(&user, "Into {targets} from {language}: {request}").expect("write");
        let builtin = Prompts::load(&EnrichConfig::default()).expect("built-in");
        let config = EnrichConfig {
            user_prompt_file: Some(user),
            ..EnrichConfig::default()
        };
        let custom = Prompts::load(&config).expect("custom");
        assert_ne!(custom.version(), builtin.version());
        let targets = ["zh".to_owned(), "ja".to_owned()];
        assert_eq!(custom.user(&targets, "en", "{}"), "Into zh, ja from en: {}");
        let missing = EnrichConfig {
            system_prompt_file: Some(dir.path().join("nope.txt")),
            ..EnrichConfig::default()
        };
        assert!(
            Prompts::load(&missing)
                .expect_err("missing file")
                .to_string()
                .contains("nope.txt")
        );
    }
}
