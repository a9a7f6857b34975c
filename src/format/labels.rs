//! The label of the link line that ends each language's section.

use std::collections::BTreeMap;

/// The label of the link line in each language's section.
#[derive(Debug, Clone)]
pub struct Labels {
    by_language: BTreeMap<String, String>,
}

impl Default for Labels {
    fn default() -> Self {
        Self::new(BTreeMap::new())
    }
}

pub const DEFAULT_LABEL: &str = "Source Link";

impl Labels {
    pub fn new(extra: BTreeMap<String, String>) -> Self {
        let mut by_language = BTreeMap::from([
            ("zh".to_owned(), "原文链接".to_owned()),
            ("en".to_owned(), DEFAULT_LABEL.to_owned()),
        ]);
        by_language.extend(extra.into_iter().map(|(k, v)| (k.to_lowercase(), v)));
        Self { by_language }
    }

    /// `zh-CN` finds the `zh` label when there is no label for `zh-cn` itself.
    pub fn label(&self, language: &str) -> &str {
        let language = language.to_lowercase();
        let primary = language.split(['-', '_']).next().unwrap_or(&language);
        self.by_language
            .get(&language)
            .or_else(|| self.by_language.get(primary))
            .map(String::as_str)
            .unwrap_or(DEFAULT_LABEL)
    }

    /// The language a label belongs to, for reading files back; the default label means `en`.
    pub fn language_of(&self, label: &str) -> Option<&str> {
        if label == DEFAULT_LABEL {
            return Some("en");
        }
        self.by_language
            .iter()
            .find(|(_, l)| l.as_str() == label)
            .map(|(lang, _)| lang.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_fall_back_by_primary_language_then_default() {
        let labels = Labels::new(BTreeMap::from([("fr".to_owned(), "Lien".to_owned())]));
        assert_eq!(labels.label("zh-CN"), "原文链接");
        assert_eq!(labels.label("fr"), "Lien");
        assert_eq!(labels.label("de"), "Source Link");
        assert_eq!(labels.language_of("原文链接"), Some("zh"));
        assert_eq!(labels.language_of("Lien"), Some("fr"));
    }
}
