//! The archive format (`ARCHIVE_FORMAT.md`): one Markdown file per article, YAML front matter,
//! one section per language. Files written here must be indistinguishable from the existing
//! archive, so the layout below is byte-exact, and [`read`] takes any such file back.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::yaml;
use crate::format::{Labels, format_date};
use crate::model::{Document, Section};
use crate::text::{LinePlace, markdown_lines};

/// Renders a document as an archive file.
pub fn render(doc: &Document, labels: &Labels) -> String {
    render_keyed(doc, labels, None)
}

/// The file of an article as the settings have it: with the entry's identity (its guid, when it
/// has one, and its link) in the front matter when `archive.identity_keys` asks for it.
pub fn render_article(
    settings: &crate::config::Settings,
    guid: Option<&str>,
    doc: &Document,
) -> String {
    render_keyed(
        doc,
        &settings.labels,
        settings.identity_keys.then_some(guid.unwrap_or_default()),
    )
}

/// [`render`], naming the entry's identity in the front matter after `author` when `guid` is
/// given: its `guid` (unless empty: the entry has none) and its `link`. The format allows keys
/// there, and they let a rebuild recover the identity.
pub fn render_keyed(doc: &Document, labels: &Labels, guid: Option<&str>) -> String {
    let body_len: usize = doc
        .sections()
        .map(|s| s.body.len() + s.title.len() + 16)
        .sum();
    let mut out = String::with_capacity(body_len + 512);
    out.push_str("---\n");
    let _ = writeln!(out, "title: {}", yaml::scalar(doc.title()));
    let _ = writeln!(out, "date: {}", format_date(&doc.date));
    let _ = writeln!(out, "description: {}", yaml::scalar(&doc.description));
    if doc.tags.is_empty() {
        out.push_str("tags: []\n");
    } else {
        out.push_str("tags: \n");
        for tag in &doc.tags {
            let _ = writeln!(out, "- {}", yaml::scalar(tag));
        }
    }
    let _ = writeln!(out, "author: {}", yaml::scalar(&doc.author));
    if let Some(guid) = guid {
        if !guid.is_empty() {
            let _ = writeln!(out, "guid: {}", yaml::scalar(guid));
        }
        let _ = writeln!(out, "link: {}", yaml::scalar(&doc.link));
    }
    out.push_str("---\n\n");

    let link = link_destination(&doc.link);
    if let Some(first) = doc.translations.first() {
        let _ = write!(out, "[{}]({link})\n\n", labels.label(&first.language));
    }
    for (i, section) in doc.sections().enumerate() {
        if i > 0 {
            out.push_str("---\n\n");
        }
        let _ = write!(out, "# {} \n\n", heading_text(&section.title));
        if !section.body.is_empty() {
            out.push_str(&section.body);
            out.push_str("\n\n");
        }
    }
    let _ = write!(
        out,
        "[{}]({link})\n\n",
        labels.label(&doc.original.language)
    );
    out
}

/// A title as heading text. A line break would end the heading, and `<` before a letter would
/// open raw HTML in Markdown renderers; the front matter keeps the exact title.
fn heading_text(title: &str) -> String {
    let one_line = title.replace(['\n', '\r'], " ");
    let opens_tag = one_line.match_indices('<').any(|(i, _)| {
        one_line[i + 1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!')
    });
    if opens_tag {
        one_line.replace('<', "&lt;")
    } else {
        one_line
    }
}

/// Markdown link destinations may not hold spaces or unbalanced parentheses unless in `<...>`.
fn link_destination(link: &str) -> String {
    if link.contains([' ', '(', ')', '<', '>']) {
        format!("<{}>", link.replace('<', "%3C").replace('>', "%3E"))
    } else {
        link.to_owned()
    }
}

/// What [`render_keyed`] wrote of an entry's identity: `None` when the file names none (or its
/// front matter cannot be read); otherwise its guid (`None` inside when the entry had none).
pub fn read_identity(text: &str) -> Option<Option<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n");
    let front = front_matter_text(&text).ok()?;
    let keys = parse_front_matter_keys(front).ok()?;
    keys.link?;
    Some(keys.guid.filter(|guid| !guid.is_empty()))
}

/// Why a text is not an archive file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(String);

fn fail<T>(message: impl Into<String>) -> Result<T, ReadError> {
    Err(ReadError(message.into()))
}

/// Reads an archive file back into its document.
///
/// The file does not name its sections' languages. When the caller knows them (`languages`, in
/// file order: translations, then the original) and their number matches, they are used;
/// otherwise they come from the link labels (`原文链接` is `zh`, `Source Link` is `en`), and a
/// translation in the middle, which has no label of its own, is `und`.
pub fn read(text: &str, labels: &Labels, languages: &[String]) -> Result<Document, ReadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n");
    let front_text = front_matter_text(&text)?;
    let front = parse_front_matter(front_text)?;
    let body = &text[front_text.len() + "---\n".len()..];

    let body = body.trim_start_matches('\n');
    let (top_label, body) = match body.strip_prefix('[') {
        Some(_) => {
            let (label, link, after) = parse_link_line(body)?;
            let _ = link;
            (Some(label), after.trim_start_matches('\n'))
        }
        None => (None, body),
    };
    let body = body.trim_end_matches('\n');
    let Some(link_start) = body
        .rfind("\n[")
        .map(|i| i + 1)
        .or_else(|| body.starts_with('[').then_some(0))
    else {
        return fail("the closing `[label](link)` line is missing");
    };
    let (bottom_label, link, trailing) = parse_link_line(&body[link_start..])?;
    if !trailing.trim().is_empty() {
        return fail("text follows the closing link line");
    }
    let sections_text = body[..link_start].trim_end_matches('\n');

    let chunks = split_sections(sections_text);
    let mut sections = chunks
        .into_iter()
        .map(parse_section)
        .collect::<Result<Vec<_>, _>>()?;
    if let (Some(first), Some(title)) = (sections.first_mut(), front.title) {
        first.title = title;
    }
    let Some(mut original) = sections.pop() else {
        return fail("there is no section");
    };
    if languages.len() == sections.len() + 1 {
        for (section, language) in sections.iter_mut().zip(languages) {
            section.language = language.clone();
        }
        original.language = languages[sections.len()].clone();
    } else {
        let language_of = |label: &str| labels.language_of(label).unwrap_or("und").to_owned();
        original.language = language_of(&bottom_label);
        for (i, section) in sections.iter_mut().enumerate() {
            section.language = match (&top_label, i) {
                (Some(label), 0) => language_of(label),
                _ => "und".to_owned(),
            };
        }
    }
    Ok(Document {
        link,
        date: front.date,
        description: front.description,
        tags: front.tags,
        author: front.author,
        translations: sections,
        original,
    })
}

/// The front matter of `text` (BOM and CRLF already gone): from the opening `---` line up to the
/// closing one, the opening line included so that YAML's line numbers are the file's.
fn front_matter_text(text: &str) -> Result<&str, ReadError> {
    let Some(rest) = text.strip_prefix("---\n") else {
        return fail("it does not start with a `---` front matter line");
    };
    let Some(end) = rest
        .find("\n---\n")
        .map(|i| i + 1)
        .or_else(|| rest.starts_with("---\n").then_some(0))
    else {
        return fail("the front matter is not closed by a `---` line");
    };
    Ok(&text[.."---\n".len() + end])
}

struct FrontMatter {
    title: Option<String>,
    date: DateTime<Utc>,
    description: String,
    tags: Vec<String>,
    author: String,
}

/// The keys the reader takes, as YAML has them. Other keys (`aliases`, anything a site
/// generator wants) may follow and hold any YAML; they are not part of the model.
///
/// Every value is read as text: serde asks for a string, so YAML resolves no number, bool or
/// timestamp here, and `date` comes back exactly as the writer wrote it for chrono to parse.
/// A null value (`key:` alone, `~`) counts as the key being absent.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct FrontMatterKeys {
    title: Option<String>,
    date: Option<String>,
    description: Option<String>,
    tags: Option<Vec<Option<String>>>,
    author: Option<String>,
    guid: Option<String>,
    link: Option<String>,
}

/// The YAML of the front matter. `serde_norway` (libyaml, maintained where `serde_yaml` is not)
/// reads every scalar style and block or flow collections, and its errors name a line and column.
fn parse_front_matter_keys(front: &str) -> Result<FrontMatterKeys, ReadError> {
    // An empty front matter is an empty document: no keys, rather than no mapping.
    serde_norway::from_str::<Option<FrontMatterKeys>>(front)
        .map(Option::unwrap_or_default)
        .map_err(|e| ReadError(format!("front matter: {e}")))
}

fn parse_front_matter(front: &str) -> Result<FrontMatter, ReadError> {
    let keys = parse_front_matter_keys(front)?;
    let Some(raw) = keys.date else {
        return fail("front matter has no `date`");
    };
    let date = DateTime::parse_from_rfc3339(&raw)
        .map_err(|e| ReadError(format!("front matter date {raw:?}: {e}")))?
        .with_timezone(&Utc);
    Ok(FrontMatter {
        title: keys.title,
        date,
        description: keys.description.unwrap_or_default(),
        // A null item (`-` alone) names no tag; the writer writes an empty tag as `""`.
        tags: keys.tags.into_iter().flatten().flatten().collect(),
        author: keys.author.unwrap_or_default(),
    })
}

/// Splits the body at section separators: a `---` line with a blank line on each side, followed
/// by a level-one heading, outside code fences (as a CommonMark parser sees them).
fn split_sections(text: &str) -> Vec<&str> {
    let lines = markdown_lines(text);
    let mut chunks = Vec::new();
    let mut chunk_start = 0;
    for (i, line) in lines.iter().enumerate() {
        let separator = line.place == LinePlace::Outside
            && line.text == "---"
            && i > 0
            && lines[i - 1].text.is_empty()
            && lines.get(i + 1).is_some_and(|l| l.text.is_empty())
            && lines.get(i + 2).is_some_and(|l| l.text.starts_with("# "));
        if separator {
            // The chunk ends before the blank line that precedes the separator.
            chunks.push(&text[chunk_start..lines[i - 1].start.saturating_sub(1).max(chunk_start)]);
            chunk_start = lines[i + 2].start;
        }
    }
    chunks.push(&text[chunk_start..]);
    chunks
}

/// `[label](link)` at the start of `text`; returns label, link and what follows the line.
fn parse_link_line(text: &str) -> Result<(String, String, &str), ReadError> {
    let (line, after) = text.split_once('\n').unwrap_or((text, ""));
    let parsed = line
        .strip_prefix('[')
        .and_then(|l| l.split_once("]("))
        .and_then(|(label, rest)| rest.strip_suffix(')').map(|link| (label, link)));
    let Some((label, link)) = parsed else {
        return fail(format!("expected a `[label](link)` line, found {line:?}"));
    };
    let link = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix('>'))
        .unwrap_or(link);
    Ok((label.to_owned(), link.to_owned(), after))
}

fn parse_section(chunk: &str) -> Result<Section, ReadError> {
    let Some(rest) = chunk.strip_prefix("# ") else {
        return fail(format!(
            "a section must start with a `# title` heading, found {:?}",
            chunk.lines().next().unwrap_or_default()
        ));
    };
    let (heading, body) = rest.split_once('\n').unwrap_or((rest, ""));
    let title = heading.strip_suffix(' ').unwrap_or(heading);
    Ok(Section {
        language: String::new(),
        title: title.replace("&lt;", "<"),
        body: body
            .trim_start_matches('\n')
            .trim_end_matches('\n')
            .to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Document {
        Document {
            link: "https://example.org/a".to_owned(),
            date: DateTime::parse_from_rfc3339("2024-05-13T10:00:53.911+01:00")
                .expect("date")
                .with_timezone(&Utc),
            description: "Desc".to_owned(),
            tags: vec![],
            author: "ex".to_owned(),
            translations: vec![],
            original: Section {
                language: "en".to_owned(),
                title: "T".to_owned(),
                body: "One. \n\nTwo".to_owned(),
            },
        }
    }

    #[test]
    fn monolingual_layout_and_date_in_utc() {
        let out = render(&doc(), &Labels::default());
        assert_eq!(
            out,
            "---\ntitle: T\ndate: 2024-05-13T09:00:53.911Z\ndescription: Desc\ntags: []\nauthor: ex\n---\n\n# T \n\nOne. \n\nTwo\n\n[Source Link](https://example.org/a)\n\n"
        );
        assert_eq!(read(&out, &Labels::default(), &[]), Ok(doc()));
    }

    #[test]
    fn three_languages_round_trip_with_fallback_languages() {
        let mut d = doc();
        d.tags = vec!["a".to_owned(), "b c".to_owned()];
        d.original.body = String::new();
        for (lang, title) in [("zh", "中"), ("fr", "Fr")] {
            d.translations.push(Section {
                language: lang.to_owned(),
                title: title.to_owned(),
                body: "## Sub\n\n---\n\ntext".to_owned(),
            });
        }
        let out = render(&d, &Labels::default());
        assert!(
            out.contains("\n\n[原文链接](https://example.org/a)\n\n# 中 \n\n"),
            "{out}"
        );
        let languages = ["zh", "fr", "en"].map(str::to_owned);
        assert_eq!(read(&out, &Labels::default(), &languages), Ok(d.clone()));
        let guessed = read(&out, &Labels::default(), &[]).expect("read without languages");
        assert_eq!(guessed.translations[1].language, "und");
        assert_eq!(guessed.translations[0].language, "zh");
    }

    #[test]
    fn separators_inside_code_and_extra_keys_do_not_confuse_the_reader() {
        let mut d = doc();
        d.original.body = "```\na\n\n---\n\n# comment\necho hi\n```\n\nafter".to_owned();
        let out = render(&d, &Labels::default());
        assert_eq!(read(&out, &Labels::default(), &[]), Ok(d.clone()));
        let extra = out.replace(
            "author: ex\n",
            "author: ex\naliases:\n- /old\nextra:\n  nested: 1\n",
        );
        assert_eq!(read(&extra, &Labels::default(), &[]), Ok(d));
    }

    #[test]
    fn separators_inside_long_and_tilde_fences_are_code() {
        // Toggling at every fence line left the block at the inner ``` and split here.
        for body in [
            "````\n```\n\n---\n\n# not a section\n```\n````\n\nafter",
            "~~~\n```\n\n---\n\n# not a section\n~~~\n\nafter",
        ] {
            let mut d = doc();
            d.translations.push(Section {
                language: "zh".to_owned(),
                title: "中".to_owned(),
                body: body.to_owned(),
            });
            d.original.body = body.to_owned();
            let out = render(&d, &Labels::default());
            let languages = ["zh", "en"].map(str::to_owned);
            assert_eq!(read(&out, &Labels::default(), &languages), Ok(d), "{out}");
        }
    }

    #[test]
    fn tags_in_titles_stay_text_in_headings() {
        let mut d = doc();
        d.translations.push(Section {
            language: "zh".to_owned(),
            title: "Why <div> soup".to_owned(),
            body: "x".to_owned(),
        });
        d.original.title = "A <b> c < d".to_owned();
        let out = render(&d, &Labels::default());
        assert!(
            out.contains("# Why &lt;div> soup \n") && out.contains("# A &lt;b> c &lt; d \n"),
            "{out}"
        );
        assert_eq!(
            read(
                &out,
                &Labels::default(),
                &["zh".to_owned(), "en".to_owned()]
            ),
            Ok(d)
        );
    }

    /// A file with `front` as its front matter and a one-section body.
    fn hand_edited(front: &str) -> String {
        format!(
            "---\n{front}---\n\n# T \n\nOne. \n\nTwo\n\n[Source Link](https://example.org/a)\n\n"
        )
    }

    #[test]
    fn hand_edited_block_scalars_are_read_as_yaml_reads_them() {
        let folded = hand_edited(
            "title: T\ndate: 2024-05-13T09:00:53.911Z\ndescription: >-\n  A long\n  description\n\n  in two paragraphs\ntags: []\nauthor: ex\n",
        );
        let read_back = read(&folded, &Labels::default(), &[]).expect("folded");
        assert_eq!(
            read_back.description,
            "A long description\nin two paragraphs"
        );
        let literal = hand_edited(
            "title: T\ndate: 2024-05-13T09:00:53.911Z\ndescription: |\n  line one\n    indented\ntags: []\nauthor: |-\n  ex\n",
        );
        let read_back = read(&literal, &Labels::default(), &[]).expect("literal");
        assert_eq!(read_back.description, "line one\n  indented\n");
        assert_eq!(read_back.author, "ex");
    }

    #[test]
    fn hand_edited_tag_lists_quoted_keys_and_comments() {
        let expected = Document {
            tags: vec!["a".to_owned(), "b c".to_owned(), "2024".to_owned()],
            ..doc()
        };
        for front in [
            // Flow sequence, quoted keys.
            "\"title\": T\n'date': 2024-05-13T09:00:53.911Z\ndescription: Desc\ntags: [a, 'b c', 2024]\nauthor: ex\n",
            // Block sequence, indented, with comments everywhere.
            "# written by hand\ntitle: T # the title\ndate: 2024-05-13T09:00:53.911Z\ndescription: Desc\ntags:\n  - a # first\n  # between\n  - \"b c\"\n  - 2024\nauthor: ex\n",
            // What the writer writes: `tags: ` then items at the margin.
            "title: T\ndate: 2024-05-13T09:00:53.911Z\ndescription: Desc\ntags: \n- a\n- b c\n- \"2024\"\nauthor: ex\n",
        ] {
            assert_eq!(
                read(&hand_edited(front), &Labels::default(), &[]),
                Ok(expected.clone()),
                "{front}"
            );
        }
    }

    #[test]
    fn dates_are_read_as_written_quoted_or_not() {
        for date in [
            "2024-05-13T09:00:53.911Z",
            "\"2024-05-13T09:00:53.911Z\"",
            "'2024-05-13T09:00:53.911Z'",
            // The same instant with an offset, as a person might write it.
            "2024-05-13T10:00:53.911+01:00",
        ] {
            let file = hand_edited(&format!(
                "title: T\ndate: {date}\ndescription: Desc\ntags: []\nauthor: ex\n"
            ));
            assert_eq!(read(&file, &Labels::default(), &[]), Ok(doc()), "{date}");
        }
        // A YAML timestamp that is not RFC 3339 is still not a date here.
        let spaced = hand_edited("title: T\ndate: 2024-05-13 09:00:53\n");
        let err = read(&spaced, &Labels::default(), &[]).expect_err("not RFC 3339");
        assert!(
            err.to_string()
                .starts_with("front matter date \"2024-05-13 09:00:53\""),
            "{err}"
        );
    }

    #[test]
    fn front_matter_errors_name_the_problem_and_the_line() {
        let labels = Labels::default();
        let message = |front: &str| {
            read(&hand_edited(front), &labels, &[])
                .expect_err("broken front matter")
                .to_string()
        };
        assert_eq!(message("title: T\n"), "front matter has no `date`");
        let tags = message("date: 2024-05-13T09:00:53.911Z\ntags: news\n");
        assert!(
            tags.contains("tags: invalid type") && tags.contains("line 3"),
            "{tags}"
        );
        let syntax = message("date: 2024-05-13T09:00:53.911Z\ntitle: \"unclosed\n");
        assert!(
            syntax.starts_with("front matter: ") && syntax.contains("line 3"),
            "{syntax}"
        );
    }

    #[test]
    fn identity_keys_are_read_as_yaml() {
        let mut d = doc();
        d.link = "https://example.org/a?x=1#frag".to_owned();
        let out = render_keyed(&d, &Labels::default(), Some("tag:example.org,2024:1"));
        assert_eq!(
            read_identity(&out),
            Some(Some("tag:example.org,2024:1".to_owned()))
        );
        let none = render_keyed(&d, &Labels::default(), Some(""));
        assert_eq!(read_identity(&none), Some(None));
        assert_eq!(read_identity(&render(&d, &Labels::default())), None);
        let folded = out.replace(
            "guid: tag:example.org,2024:1\n",
            "guid: >-\n  tag:example.org,2024:1\n",
        );
        assert_ne!(folded, out);
        assert_eq!(
            read_identity(&folded),
            Some(Some("tag:example.org,2024:1".to_owned()))
        );
    }

    #[test]
    fn broken_files_are_reported() {
        let labels = Labels::default();
        assert!(read("no front matter", &labels, &[]).is_err());
        assert!(read("---\ntitle: x\n", &labels, &[]).is_err());
        let no_link = "---\ntitle: T\ndate: 2024-05-13T09:00:53.911Z\n---\n\n# T \n\nbody\n";
        assert!(read(no_link, &labels, &[]).is_err());
    }
}
