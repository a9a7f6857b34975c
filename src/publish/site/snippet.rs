//! The few words around a search hit, with the words asked for marked.

use crate::store::ArticleRecord;
use crate::text::search::query_tokens;
use crate::text::{html_to_text, markdown_to_html};

/// Characters shown before and after the first hit.
const AROUND: usize = 90;

/// HTML: the passage of the article around the first word of `query` it holds (its opening
/// when none is found in the text itself), escaped, with each word asked for in `<mark>`.
pub fn of(record: &ArticleRecord, query: &str) -> String {
    let mut text = record.doc.description.clone();
    for section in record.doc.sections() {
        text.push(' ');
        text.push_str(&html_to_text(&markdown_to_html(&section.body)));
    }
    let chars: Vec<char> = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .collect();
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let words: Vec<Vec<char>> = query_tokens(query)
        .iter()
        .map(|w| w.chars().collect())
        .collect();
    let find = |word: &[char], from: usize| -> Option<usize> {
        (from..lower.len().saturating_sub(word.len() - 1)).find(|&i| lower[i..].starts_with(word))
    };
    let first = words
        .iter()
        .filter(|w| !w.is_empty())
        .filter_map(|w| find(w, 0))
        .min()
        .unwrap_or(0);
    let start = first.saturating_sub(AROUND);
    let end = (first + AROUND).min(chars.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut i = start;
    while i < end {
        let hit = words
            .iter()
            .filter(|w| !w.is_empty() && lower[i..].starts_with(w))
            .map(Vec::len)
            .max();
        match hit {
            Some(len) => {
                let word: String = chars[i..(i + len).min(chars.len())].iter().collect();
                out.push_str(&format!("<mark>{}</mark>", crate::text::escape_html(&word)));
                i += len;
            }
            None => {
                out.push_str(&crate::text::escape_html(&chars[i].to_string()));
                i += 1;
            }
        }
    }
    if end < chars.len() {
        out.push('…');
    }
    out
}
