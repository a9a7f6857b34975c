//! Where in the config file a setting is: the line and the dotted key of a value, found from
//! the key (for the checks made after reading) or from the place toml reported (for its own
//! errors), so that every config error names file, line and key.

use std::ops::Range;

use toml_edit::{Document, Item, Table};

/// One step of a key: a table's key, or an element of an array of tables (`sources[3]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A key path such as `sources[3].url`, as steps.
pub fn key(steps: &[Step]) -> String {
    let mut text = String::new();
    for step in steps {
        match step {
            Step::Key(k) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(k);
            }
            Step::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// The 1-based line of the value at `steps`, or of the nearest table above it that is in the
/// file (a key left to its default has no line of its own).
pub fn line_of(text: &str, steps: &[Step]) -> Option<usize> {
    let doc = Document::parse(text).ok()?;
    span_in(doc.as_table(), steps, None).map(|span| line_at(text, span.start))
}

fn span_in(table: &Table, steps: &[Step], best: Option<Range<usize>>) -> Option<Range<usize>> {
    let Some((Step::Key(k), rest)) = steps.split_first() else {
        return best;
    };
    let Some(item) = table.get(k) else {
        return best;
    };
    let best = table
        .key(k)
        .and_then(|key| key.span())
        .or_else(|| item.span())
        .or(best);
    match (item, rest.split_first()) {
        (Item::Table(inner), Some(_)) => span_in(inner, rest, best),
        (Item::ArrayOfTables(tables), Some((Step::Index(i), rest))) => match tables.get(*i) {
            Some(inner) => span_in(inner, rest, inner.span().or(best)),
            None => best,
        },
        _ => best,
    }
}

/// The key path whose value holds the byte range `at` (where toml reported an error).
pub fn key_at(text: &str, at: &Range<usize>) -> Option<String> {
    let doc = Document::parse(text).ok()?;
    let mut steps = Vec::new();
    find(doc.as_table(), at, &mut steps).then(|| key(&steps))
}

/// Whether a value of `table` (or of a table inside it) holds `at`; its steps are left in
/// `steps` when it does. A table's own span covers its header only, so every table is looked in.
fn find(table: &Table, at: &Range<usize>, steps: &mut Vec<Step>) -> bool {
    let holds = |span: Option<Range<usize>>| {
        span.is_some_and(|span| span.start <= at.start && at.start < span.end.max(span.start + 1))
    };
    for (k, item) in table.iter() {
        steps.push(Step::Key(k.to_owned()));
        let found = match item {
            Item::Table(inner) => find(inner, at, steps),
            Item::ArrayOfTables(tables) => tables.iter().enumerate().any(|(i, inner)| {
                steps.push(Step::Index(i));
                let found = find(inner, at, steps);
                if !found {
                    steps.pop();
                }
                found
            }),
            Item::Value(_) => holds(item.span()) || holds(table.key(k).and_then(|key| key.span())),
            Item::None => false,
        };
        if found {
            return true;
        }
        steps.pop();
    }
    false
}

fn line_at(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[fetch]\nconcurrency = 0\ntimeout = \"5s\"\n\n[[sources]]\nid = \"a\"\n\
                        url = \"a.xml\"\n\n[[sources]]\nid = \"b\"\nurl = \"::bad\"\n";

    fn k(s: &str) -> Step {
        Step::Key(s.to_owned())
    }

    #[test]
    fn a_key_path_finds_its_line() {
        assert_eq!(line_of(TEXT, &[k("fetch"), k("concurrency")]), Some(2));
        assert_eq!(
            line_of(TEXT, &[k("sources"), Step::Index(1), k("url")]),
            Some(11)
        );
        // A key left to its default: the line of its table.
        assert_eq!(
            line_of(TEXT, &[k("sources"), Step::Index(0), k("tags")]),
            Some(5)
        );
        assert_eq!(
            key(&[k("sources"), Step::Index(1), k("url")]),
            "sources[1].url"
        );
    }

    #[test]
    fn a_place_finds_its_key() {
        let at = TEXT.find("\"5s\"").expect("value");
        assert_eq!(
            key_at(TEXT, &(at..at + 4)).as_deref(),
            Some("fetch.timeout")
        );
        let at = TEXT.find("\"::bad\"").expect("value");
        assert_eq!(
            key_at(TEXT, &(at..at + 7)).as_deref(),
            Some("sources[1].url")
        );
    }
}
