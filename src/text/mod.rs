//! Text rules shared by the pipeline: HTML to plain text and to Markdown, the description rule of
//! the archive format, file-name slugs, and which lines of Markdown are fenced code.
//!
//! Feed HTML is untrusted. It is cleaned in the tree it is parsed into before the converter reads
//! it (the `clean` module), so scripts, event handlers and `javascript:` links never reach the Markdown,
//! and sanitized with ammonia after Markdown is rendered back to HTML for the feeds.

mod clean;
mod fragment;
pub mod json;
pub mod links;
pub mod search;

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use ego_tree::iter::Edge;
use scraper::{Html, Node};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use url::Url;

/// Longest description, in characters, ellipsis included.
pub const DESCRIPTION_MAX_CHARS: usize = 300;
const SLUG_MAX_LEN: usize = 80;

/// Elements whose content is dropped, not just their tags.
const DROP_WITH_CONTENT: &[&str] = &[
    "script", "style", "iframe", "form", "object", "embed", "svg", "math", "template", "button",
    "select", "textarea", "noscript", "head", "title",
];

/// Elements that separate words when their text is flattened.
const BLOCK_ELEMENTS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// Collapses every run of whitespace to one space and trims the ends.
pub fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Plain text of an HTML fragment: markup removed, entities decoded, whitespace collapsed.
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') && stands_for_itself(html) {
        return collapse_whitespace(html);
    }
    parsed_text(html)
}

/// Whether HTML parsing would keep every character of `text` but a tag's: it holds no
/// character reference (a `&` followed by neither a letter, a digit nor `#` is a literal
/// `&`, as in "Markets & sport", which most titles with an ampersand are) and no NUL (which
/// the parser drops). Parsing the rest costs a title more than everything else done to it.
fn stands_for_itself(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.contains(&0)
        && bytes.iter().enumerate().all(|(i, &b)| {
            b != b'&'
                || !bytes
                    .get(i + 1)
                    .is_some_and(|next| next.is_ascii_alphanumeric() || *next == b'#')
        })
}

/// [`html_to_text`] by an HTML parser.
fn parsed_text(html: &str) -> String {
    let fragment = Html::parse_fragment(&flatten_deep_nesting(html));
    let mut out = String::with_capacity(html.len());
    let mut dropped_depth = 0usize;
    for edge in fragment.root_element().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(el) => {
                    let name = el.name();
                    if DROP_WITH_CONTENT.contains(&name) {
                        dropped_depth += 1;
                    } else if BLOCK_ELEMENTS.contains(&name) {
                        out.push(' ');
                    }
                }
                Node::Text(text) if dropped_depth == 0 => out.push_str(text),
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(el) = node.value() {
                    let name = el.name();
                    if DROP_WITH_CONTENT.contains(&name) {
                        dropped_depth = dropped_depth.saturating_sub(1);
                    } else if BLOCK_ELEMENTS.contains(&name) {
                        out.push(' ');
                    }
                }
            }
        }
    }
    collapse_whitespace(&out)
}

/// Inline and block tags that show a "plain text" field really holds HTML.
const MARKUP_TAGS: &[&str] = &[
    "a", "abbr", "audio", "b", "br", "button", "cite", "code", "div", "em", "embed", "font",
    "form", "i", "iframe", "img", "input", "link", "mark", "math", "meta", "object", "p", "q", "s",
    "script", "small", "span", "strong", "style", "sub", "sup", "svg", "u", "video",
];

/// Whether `text` contains one of the `MARKUP_TAGS` (`<b>`, `</em>`, `<a href=..>`, `<br/>`).
pub fn looks_like_markup(text: &str) -> bool {
    text.match_indices('<').any(|(i, _)| {
        let rest = text[i + 1..].strip_prefix('/').unwrap_or(&text[i + 1..]);
        let name_len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        let after = rest[name_len..].chars().next();
        MARKUP_TAGS.contains(&rest[..name_len].to_ascii_lowercase().as_str())
            && matches!(after, Some('>' | '/' | ' ' | '\t' | '\n'))
    })
}

/// Decodes HTML entities of plain text (`&amp;` to `&`); a `<` stays a `<`.
pub fn decode_entities(text: &str) -> String {
    if stands_for_itself(text) {
        collapse_whitespace(text)
    } else {
        parsed_text(&text.replace('<', "&lt;"))
    }
}

/// Shortens `text` to at most `max` characters, cutting at a word boundary and ending with `…`.
pub fn truncate_at_word(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    // Leave room for the ellipsis.
    let limit = max.saturating_sub(1);
    let cut = text
        .char_indices()
        .nth(limit)
        .map_or(text.len(), |(i, _)| i);
    let head = &text[..cut];
    let next_is_space = text[cut..].starts_with(char::is_whitespace);
    let head = if next_is_space {
        head
    } else {
        // Mid-word: back up to the last space, unless the text has none (e.g. CJK runs).
        match head.rfind(char::is_whitespace) {
            Some(space) if space > 0 => &head[..space],
            _ => head,
        }
    };
    format!("{}…", head.trim_end())
}

/// The archive format's description: plain text, one line, at most 300 characters.
pub fn description_from_html(html: &str) -> String {
    truncate_at_word(&html_to_text(html), DESCRIPTION_MAX_CHARS)
}

/// The first paragraph of a Markdown body that has text, under the description rule.
pub fn description_from_markdown(markdown: &str) -> String {
    markdown
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with('#'))
        .map(|p| description_from_html(&markdown_to_html(p)))
        .find(|d| !d.is_empty())
        .unwrap_or_default()
}

/// The first `n` words of `text`, with `…` when words were left out.
pub fn first_words(text: &str, n: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= n {
        words.join(" ")
    } else {
        format!("{}…", words[..n].join(" "))
    }
}

/// The sanitizer of HTML shown to people (the feeds' content): relative links stay as they
/// are, and the elements whose content is dropped on the way into the archive are dropped here
/// too. Built once: its tag and attribute sets cost about as much as cleaning a short article.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .add_clean_content_tags(DROP_WITH_CONTENT.iter().copied())
        .link_rel(None)
        .url_relative(ammonia::UrlRelative::PassThrough);
    builder
});

/// Sanitized HTML: what may be shown to a person or put into the Atom feed.
pub fn sanitize_html(html: &str) -> String {
    SANITIZER.clean(&flatten_deep_nesting(html)).to_string()
}

/// Elements nested deeper than this lose their tags (their text stays). Real articles nest a
/// dozen levels; thousands of nested `<ul>` or `<div>` only serve to exhaust the HTML parser's
/// time (its scope checks are quadratic in depth) and the converter's stack.
const MAX_HTML_DEPTH: usize = 100;

/// Elements whose end tag HTML lets authors leave out: they do not nest when left open, so they
/// are not counted.
const OPTIONAL_END: &[&str] = &[
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "tbody", "thead", "tfoot",
    "colgroup", "rb", "rt", "rp", "rtc",
];

/// `html` with the tags of elements below `MAX_HTML_DEPTH` removed. A cheap scan, not a parse:
/// it only has to bound the depth the real parser sees.
pub fn flatten_deep_nesting(html: &str) -> Cow<'_, str> {
    if !nests_deeper_than(html, MAX_HTML_DEPTH) {
        return Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len());
    let mut open = OpenElements::default();
    // Elements opened below the limit, whose end tags go with them.
    let mut dropped: Vec<&str> = Vec::new();
    for piece in html_pieces(html) {
        match piece {
            HtmlPiece::Text(text) => out.push_str(text),
            HtmlPiece::Tag {
                text,
                name,
                closing,
            } => {
                if !counts_for_depth(name) {
                    out.push_str(text);
                } else if closing {
                    if open.close(name) {
                        out.push_str(text);
                    } else if let Some(at) =
                        dropped.iter().rposition(|n| n.eq_ignore_ascii_case(name))
                    {
                        dropped.remove(at);
                    }
                } else if open.depth() >= MAX_HTML_DEPTH {
                    dropped.push(name);
                } else {
                    open.open(name);
                    out.push_str(text);
                }
            }
        }
    }
    Cow::Owned(out)
}

/// Whether counted elements (as [`flatten_deep_nesting`] counts them) open more than `limit`
/// deep; a scan without a parse, as it runs for every body.
fn nests_deeper_than(html: &str, limit: usize) -> bool {
    // Nesting deeper than `limit` takes more than `limit` tags; most bodies have fewer, and
    // counting them is a fast scan, where telling their names apart is not.
    if memchr::memchr_iter(b'<', html.as_bytes())
        .nth(limit)
        .is_none()
    {
        return false;
    }
    let mut open = OpenElements::default();
    for piece in html_pieces(html) {
        if let HtmlPiece::Tag { name, closing, .. } = piece
            && counts_for_depth(name)
        {
            if closing {
                open.close(name);
            } else {
                open.open(name);
                if open.depth() > limit {
                    return true;
                }
            }
        }
    }
    false
}

/// A piece of HTML as the depth scan reads it.
enum HtmlPiece<'a> {
    /// Text, or a `<` that starts no tag (a comment, a declaration, a lone `<`).
    Text(&'a str),
    /// A start or end tag, whole (to its `>`, quotes respected), and its name as written.
    Tag {
        text: &'a str,
        name: &'a str,
        closing: bool,
    },
}

/// The pieces of `html`, in order; together they are all of it.
fn html_pieces(html: &str) -> impl Iterator<Item = HtmlPiece<'_>> {
    let mut rest = html;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(at) = memchr::memchr(b'<', rest.as_bytes()) else {
            return Some(HtmlPiece::Text(std::mem::take(&mut rest)));
        };
        if at > 0 {
            let (text, after) = rest.split_at(at);
            rest = after;
            return Some(HtmlPiece::Text(text));
        }
        let after = &rest[1..];
        let closing = after.starts_with('/');
        let named = &after[usize::from(closing)..];
        let name_len = named.bytes().take_while(u8::is_ascii_alphanumeric).count();
        if name_len == 0 {
            let (text, after) = rest.split_at(1);
            rest = after;
            return Some(HtmlPiece::Text(text));
        }
        let (text, after) = rest.split_at(tag_end(rest));
        rest = after;
        Some(HtmlPiece::Tag {
            text,
            name: &named[..name_len],
            closing,
        })
    })
}

/// The counted elements open at a point of the scan. An end tag closes the nearest open element
/// of its name and those above it, as the parser's does; one that closes nothing is ignored, as
/// the parser ignores it (counting it as a close let `<div></b>` repeated nest without bound).
#[derive(Default)]
struct OpenElements<'a> {
    names: Vec<&'a str>,
}

impl<'a> OpenElements<'a> {
    fn open(&mut self, name: &'a str) {
        self.names.push(name);
    }

    /// Closes `name`; false when no element of that name is open.
    fn close(&mut self, name: &str) -> bool {
        match self
            .names
            .iter()
            .rposition(|n| n.eq_ignore_ascii_case(name))
        {
            Some(at) => {
                self.names.truncate(at);
                true
            }
            None => false,
        }
    }

    fn depth(&self) -> usize {
        self.names.len()
    }
}

/// Whether an element counts towards nesting: not one whose end tag may be left out (it does
/// not nest when left open) and not a void one. `<div/>` counts: HTML reads the slash of an
/// element that is not void as nothing, and it opens.
fn counts_for_depth(name: &str) -> bool {
    let listed = |list: &[&str]| list.iter().any(|t| t.eq_ignore_ascii_case(name));
    !listed(OPTIONAL_END) && !listed(VOID_ELEMENTS)
}

/// HTML elements that never have content: written without an end tag.
pub const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// The length of the tag at the start of `s` (up to and with its `>`, quotes respected), or all
/// of `s` when it is never closed.
fn tag_end(s: &str) -> usize {
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i + 1,
            _ => {}
        }
    }
    s.len()
}

static CONVERTER: LazyLock<htmd::HtmlToMarkdown> = LazyLock::new(|| {
    htmd::HtmlToMarkdown::builder()
        .options(htmd::options::Options {
            bullet_list_marker: htmd::options::BulletListMarker::Dash,
            ul_bullet_spacing: 1,
            ol_number_spacing: 1,
            ..Default::default()
        })
        .skip_tags(DROP_WITH_CONTENT.to_vec())
        .build()
});

/// Markdown of an HTML fragment: cleaned first (the `clean` module), links made absolute against
/// `base`, headings moved one level down so they nest under the section's own `#` heading.
pub fn html_to_markdown(html: &str, base: Option<&Url>) -> String {
    let document = clean::parse_fragment(&flatten_deep_nesting(html));
    clean::clean_fragment(&document, base);
    tidy_markdown(&demote_headings(&CONVERTER.tree_to_markdown(&document)))
}

/// Markdown written by a model, held to the same rules as converted Markdown: headings below the
/// section's own, no blank-line runs, no stray rules.
pub fn tidy_generated_markdown(markdown: &str) -> String {
    tidy_markdown(&demote_headings(&markdown.replace("\r\n", "\n")))
}

/// Plain text (JSON Feed `content_text`, Atom `type="text"`) as Markdown paragraphs, with
/// Markdown's own characters escaped so the text stays text.
pub fn text_to_markdown(text: &str) -> String {
    let html: String = text
        .replace("\r\n", "\n")
        .split("\n\n")
        .map(collapse_whitespace)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", escape_html(&p)))
        .collect();
    html_to_markdown(&html, None)
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Trims blank lines at both ends and folds runs of blank lines, keeping trailing spaces inside
/// paragraphs: they come from the source text and the archive keeps them.
fn tidy_markdown(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut blank_run = 0;
    for line in markdown_lines(markdown) {
        let (line, place) = (line.text, line.place);
        if place == LinePlace::Code {
            // Code keeps its blank lines exactly.
            out.push('\n');
            out.push_str(line);
            continue;
        }
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        // A table must not continue the paragraph before it (a caption, say).
        let table_starts =
            line.starts_with('|') && !out.rsplit('\n').next().unwrap_or_default().starts_with('|');
        if !out.is_empty() {
            out.push_str(if blank_run > 0 || table_starts {
                "\n\n"
            } else {
                "\n"
            });
        }
        blank_run = 0;
        if place == LinePlace::Outside && is_rule_like(line) {
            // Text that looks like a rule or a heading underline; the converter's own rule is
            // `* * *`, everything else came from the text and must stay text.
            out.push('\\');
        }
        out.push_str(line);
    }
    out
}

/// A line Markdown would read as a thematic break or a setext underline.
fn is_rule_like(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed != "* * *"
        && !trimmed.is_empty()
        && trimmed
            .chars()
            .all(|c| matches!(c, '-' | '=' | '_' | '*' | ' '))
        && trimmed.chars().next().is_some_and(|first| {
            trimmed.chars().filter(|c| *c != ' ').all(|c| c == first)
                && (matches!(first, '-' | '=')
                    || trimmed.chars().filter(|c| *c == first).count() >= 3)
        })
}

/// `# x` becomes `## x` outside code fences, up to `######`.
fn demote_headings(markdown: &str) -> Cow<'_, str> {
    // Without a `#` there is no heading: most articles, found in one `memchr` rather than by
    // splitting them into lines and copying them whole.
    if memchr::memchr(b'#', markdown.as_bytes()).is_none() {
        return Cow::Borrowed(markdown);
    }
    let lines = markdown_lines(markdown);
    // Headings outside code fences, as (line index, level).
    let headings: Vec<(usize, usize)> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.place == LinePlace::Outside)
        .filter_map(|(i, line)| {
            let hashes = line.text.bytes().take_while(|&b| b == b'#').count();
            ((1..=6).contains(&hashes) && line.text[hashes..].starts_with(' '))
                .then_some((i, hashes))
        })
        .collect();
    // Only a body that uses level one needs moving: its other levels keep their distances.
    if !headings.iter().any(|(_, level)| *level == 1) {
        return Cow::Borrowed(markdown);
    }
    let mut out = String::with_capacity(markdown.len() + headings.len());
    let mut next = headings.iter().peekable();
    for (i, line) in lines.iter().enumerate() {
        if next
            .peek()
            .is_some_and(|(at, level)| *at == i && *level < 6)
        {
            out.push('#');
        }
        if next.peek().is_some_and(|(at, _)| *at == i) {
            next.next();
        }
        out.push_str(&markdown[line.start..line.end]);
    }
    Cow::Owned(out)
}

/// Where a line of Markdown stands relative to fenced code blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinePlace {
    /// Outside every fenced code block.
    Outside,
    /// The opening or closing fence of a block.
    Fence,
    /// Code: the text between the fences, or after an opening fence that is never closed.
    Code,
}

/// One line of Markdown, as `str::lines` splits it, with where it starts and ends in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkdownLine<'a> {
    /// The line without its line ending.
    pub text: &'a str,
    /// Byte offset of the line's start.
    pub start: usize,
    /// Byte offset just past the line's ending (`\n`), or the text's end.
    pub end: usize,
    pub place: LinePlace,
}

/// The lines of `markdown`, each placed relative to fenced code blocks as a CommonMark parser
/// (the one that renders the archive) reads them.
///
/// Only fenced blocks count, as the rules built on this have always meant: an indented block
/// is left alone, since what reads as one depends on the lines around it. The parser, unlike
/// toggling at every line that starts with a fence, knows that a block is closed only by a
/// fence of its own character at least as long as the opening one (so a block opened by `~~~`
/// or by four backticks may hold lines of three backticks), that a backtick fence with a
/// backtick in its info string is no fence, that a fence indented by four spaces is none, and
/// that an unclosed block ends with its container (a list item, a quote).
pub(crate) fn markdown_lines(markdown: &str) -> Vec<MarkdownLine<'_>> {
    use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

    // Each fenced block's whole range and the ranges of its code text.
    let mut blocks: Vec<(Range<usize>, Vec<Range<usize>>)> = Vec::new();
    let mut open: Option<(Range<usize>, Vec<Range<usize>>)> = None;
    // Without a run of three backticks or tildes there is no fence, and no need to parse: most
    // converted articles have none. (`memmem`'s search, not `str::contains`, whose search for
    // a pattern of several characters cost 4% of a cold run's instructions here.)
    let may_fence = memchr::memmem::find(markdown.as_bytes(), b"```").is_some()
        || memchr::memmem::find(markdown.as_bytes(), b"~~~").is_some();
    let events = may_fence
        .then(|| Parser::new_ext(markdown, Options::ENABLE_TABLES).into_offset_iter())
        .into_iter()
        .flatten();
    for (event, range) in events {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) => open = Some((range, vec![])),
            Event::Text(_) => {
                if let Some((_, code)) = open.as_mut() {
                    code.push(range);
                }
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(open.take()),
            _ => {}
        }
    }

    let overlaps = |a: &Range<usize>, b: &Range<usize>| a.start < b.end && b.start < a.end;
    let mut blocks = blocks.into_iter().peekable();
    let mut lines = Vec::new();
    let mut start = 0;
    for raw in markdown.split_inclusive('\n') {
        let end = start + raw.len();
        // As `str::lines`: `\n` ends a line, and so does `\r\n`.
        let text = raw
            .strip_suffix('\n')
            .map_or(raw, |t| t.strip_suffix('\r').unwrap_or(t));
        while blocks.next_if(|(block, _)| block.end <= start).is_some() {}
        let line = start..end;
        let place = match blocks.peek() {
            Some((block, code)) if overlaps(block, &line) => {
                if code.iter().any(|c| overlaps(c, &line)) {
                    LinePlace::Code
                } else {
                    LinePlace::Fence
                }
            }
            _ => LinePlace::Outside,
        };
        lines.push(MarkdownLine {
            text,
            start,
            end,
            place,
        });
        start = end;
    }
    lines
}

/// Markdown rendered to sanitized HTML.
pub fn markdown_to_html(markdown: &str) -> String {
    let parser = pulldown_cmark::Parser::new_ext(markdown, pulldown_cmark::Options::ENABLE_TABLES);
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    sanitize_html(&html)
}

/// A file-name slug: ASCII, lowercase, hyphens, at most 80 characters. A title without Latin
/// letters gets a short hash of itself, stable across runs.
pub fn slug(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    let mut push = |c: char| {
        // Apostrophes and accents go; any other run of characters becomes one `-`.
        let dropped = matches!(c, '\'' | '’' | '‘' | '`' | '´')
            || unicode_normalization::char::is_combining_mark(c);
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !dropped && !slug.ends_with('-') {
            slug.push('-');
        }
    };
    // ASCII decomposes to itself: most titles need no decomposing.
    if title.is_ascii() {
        title.chars().for_each(&mut push);
    } else {
        title.nfkd().for_each(&mut push);
    }
    let slug = slug.trim_matches('-');
    if !slug.bytes().any(|b| b.is_ascii_alphabetic()) {
        let digest = Sha256::digest(title.as_bytes());
        return hex::encode(&digest[..6]);
    }
    if slug.len() <= SLUG_MAX_LEN {
        return slug.to_owned();
    }
    let cut = &slug[..SLUG_MAX_LEN];
    match cut.rfind('-') {
        Some(i) if i >= SLUG_MAX_LEN / 2 => cut[..i].to_owned(),
        _ => cut.trim_end_matches('-').to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_flattened_and_lists_without_end_tags_are_not() {
        let depth = 5000;
        let hostile = format!(
            "{}deep text{}",
            "<ul><li><div>".repeat(depth),
            "</div></li></ul>".repeat(depth)
        );
        let started = std::time::Instant::now();
        let markdown = html_to_markdown(&hostile, None);
        assert!(markdown.contains("deep text"), "{markdown}");
        assert!(html_to_text(&hostile).contains("deep text"));
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let flat = flatten_deep_nesting(&hostile);
        assert!(flat.matches("<ul>").count() <= MAX_HTML_DEPTH);

        let items: String = (0..300).map(|i| format!("<li>item {i}")).collect();
        let list = format!("<ul>{items}</ul><p>after");
        assert_eq!(flatten_deep_nesting(&list), list);
        let markdown = html_to_markdown(&list, None);
        assert!(markdown.contains("- item 299"), "{markdown}");
    }

    /// The deepest element of `html` as the HTML parser builds it.
    fn parsed_depth(html: &str) -> usize {
        let fragment = Html::parse_fragment(html);
        fragment
            .root_element()
            .descendants()
            .map(|node| node.ancestors().count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn stray_end_tags_and_slashes_do_not_hide_depth() {
        for unit in ["<div></b>", "<div/>", "<section></span></em>", "<DIV></p>"] {
            let hostile = format!("{}deep text", unit.repeat(3000));
            let flat = flatten_deep_nesting(&hostile);
            let depth = parsed_depth(&flat);
            assert!(depth <= MAX_HTML_DEPTH + 5, "{unit}: {depth} deep");
            assert!(flat.contains("deep text"), "{unit}");
            assert!(
                html_to_markdown(&hostile, None).contains("deep text"),
                "{unit}"
            );
        }
        // Balanced markup of ordinary depth is left as it is, stray end tags and all.
        let ordinary = "<div><p>one</b></p><div>two</div></div>".repeat(200);
        assert_eq!(flatten_deep_nesting(&ordinary), ordinary);
    }

    #[test]
    fn html_to_text_separates_blocks_and_decodes_entities() {
        assert_eq!(
            html_to_text("<p>One&nbsp;&amp; two</p><p>three <b>four</b></p><script>x()</script>"),
            "One\u{a0}& two three four".replace('\u{a0}', " ")
        );
        assert_eq!(html_to_text("Rust &amp; <b>Wasm</b>"), "Rust & Wasm");
    }

    #[test]
    fn text_that_stands_for_itself_comes_out_as_the_parser_would_give_it() {
        let literal = [
            "Markets, weather & sport",
            "Q & A: 100% & more &",
            "R & D &\t& co\r\n& done",
            "  spaced \n & out  ",
            "&;",
            "&-&_&.",
            "Läden & Cafés — 東京 & 大阪",
            "",
        ];
        for text in literal {
            let text = text
                .replace("\\t", "\t")
                .replace("\\r", "\r")
                .replace("\\n", "\n");
            assert!(stands_for_itself(&text), "{text:?}");
            assert_eq!(html_to_text(&text), parsed_text(&text), "{text:?}");
            assert_eq!(
                decode_entities(&text),
                parsed_text(&text.replace('<', "&lt;")),
                "{text:?}"
            );
        }
        // A reference, named (with or without its `;`) or numeric, or a NUL: parsed.
        for text in [
            "AT&T",
            "a &amp; b",
            "&copy 2024",
            "&#38;",
            "&#x26;",
            "nul\0here",
        ] {
            assert!(!stands_for_itself(text), "{text:?}");
        }
        assert_eq!(html_to_text("&copy 2024 &amp; AT&T"), "© 2024 & AT&T");
        assert_eq!(decode_entities("1 < 2 & 3 &gt; 2"), "1 < 2 & 3 > 2");
    }

    #[test]
    fn truncation_cuts_at_a_word_and_adds_an_ellipsis() {
        let text = "word ".repeat(100);
        let cut = truncate_at_word(text.trim(), 300);
        assert!(cut.chars().count() <= 300);
        assert!(cut.ends_with("word…"), "{cut}");
        assert_eq!(truncate_at_word("short", 300), "short");
        let cjk = "字".repeat(400);
        assert_eq!(truncate_at_word(&cjk, 300).chars().count(), 300);
    }

    #[test]
    fn markdown_keeps_trailing_spaces_and_strips_scripts() {
        let md = html_to_markdown(
            "<p><strong>A</strong> b. </p><p>c<script>alert(1)</script> <a href=\"javascript:x\">d</a></p><h1>H</h1>",
            None,
        );
        assert_eq!(md, "**A** b. \n\nc d\n\n## H");
    }

    #[test]
    fn relative_links_become_absolute() {
        let base = Url::parse("https://example.org/news/").expect("url");
        let md = html_to_markdown(
            "<p><a href=\"a.html\">x</a> <img src=\"/i.png\" alt=\"i\"></p>",
            Some(&base),
        );
        assert_eq!(
            md,
            "[x](https://example.org/news/a.html) ![i](https://example.org/i.png)"
        );
    }

    #[test]
    fn slugs() {
        assert_eq!(
            slug("US and China to hold first talks to reduce risk of AI ‘miscalculation’"),
            "us-and-china-to-hold-first-talks-to-reduce-risk-of-ai-miscalculation"
        );
        assert_eq!(slug("Café déjà vu: it's back!"), "cafe-deja-vu-its-back");
        let cjk = slug("美国和中国");
        assert_eq!(cjk.len(), 12);
        assert_eq!(cjk, slug("美国和中国"));
        assert!(slug(&"long words ".repeat(20)).len() <= 80);
        assert!(!slug(&"x".repeat(200)).is_empty());
    }

    #[test]
    fn markup_detection_and_entity_decoding() {
        assert!(looks_like_markup("a <b>tour</b>"));
        assert!(looks_like_markup("line<br/>break"));
        assert!(!looks_like_markup("Why Vec<T> beats LinkedList<T>"));
        assert!(!looks_like_markup("a < b > c"));
        assert_eq!(decode_entities("Vec<T> &amp; more"), "Vec<T> & more");
    }

    #[test]
    fn plain_text_is_escaped_not_interpreted() {
        let md = text_to_markdown("Intro\n\n---\n\n# Not a heading *really*\n\n1. one");
        assert!(!md.contains("\n# "), "{md}");
        let html = markdown_to_html(&md);
        assert!(
            !html.contains("<h1>") && !html.contains("<em>") && !html.contains("<hr"),
            "{html}"
        );
        assert!(
            html_to_text(&html).contains("# Not a heading *really*"),
            "{html}"
        );
    }

    #[test]
    fn code_blocks_keep_their_blank_lines() {
        let md = html_to_markdown("<p>x</p><pre><code>a\n\n\n\nb</code></pre>", None);
        assert!(md.contains("a\n\n\n\nb"), "{md:?}");
    }

    fn places(markdown: &str) -> Vec<LinePlace> {
        markdown_lines(markdown).iter().map(|l| l.place).collect()
    }

    #[test]
    fn fences_are_found_as_commonmark_finds_them() {
        use LinePlace::{Code, Fence, Outside};
        // A longer fence holds shorter ones; toggling closed it at the first inner line.
        assert_eq!(
            places("````\n```\n# x\n```\n````\nafter"),
            [Fence, Code, Code, Code, Fence, Outside]
        );
        // Tildes are closed only by tildes.
        assert_eq!(places("~~~\n```\nx\n~~~\n"), [Fence, Code, Code, Fence]);
        // A fence with an info string closes nothing; an unclosed block runs to the end.
        assert_eq!(places("```\n```rust\n\n# x"), [Fence, Code, Code, Code]);
        // Inline code at the start of a line opens no block.
        assert_eq!(places("```a``` b\n# x\n"), [Outside, Outside]);
        // An unclosed block in a list item ends with the item.
        let in_item = places("- a\n\n  ```\n  x\n\nafter");
        assert_eq!(in_item[..4], [Outside, Outside, Fence, Code]);
        assert_eq!(in_item.last(), Some(&Outside));
        // Lines split as `str::lines` splits them, offsets included.
        let lines = markdown_lines("a\r\n```\nb\n```");
        assert_eq!(
            lines.iter().map(|l| l.text).collect::<Vec<_>>(),
            ["a", "```", "b", "```"]
        );
        assert_eq!(
            lines.iter().map(|l| (l.start, l.end)).collect::<Vec<_>>(),
            [(0, 3), (3, 7), (7, 9), (9, 12)]
        );
    }

    #[test]
    fn headings_in_long_or_tilde_fences_stay_as_they_are() {
        let md = "# Top\n\n````\n```\n# comment\n```\n````\n\n~~~\n```\n# also\n~~~\n\n# End\n";
        assert_eq!(
            demote_headings(md),
            "## Top\n\n````\n```\n# comment\n```\n````\n\n~~~\n```\n# also\n~~~\n\n## End\n"
        );
        // A line that only starts with inline code leaves the headings after it headings.
        assert_eq!(
            demote_headings("```x``` is code\n\n# Next\n"),
            "```x``` is code\n\n## Next\n"
        );
        // Nothing to move, nothing copied: without a `#` as with headings of level two on.
        assert!(matches!(demote_headings("No heading.\n"), Cow::Borrowed(_)));
        assert!(matches!(
            demote_headings("## Two\n\n### Three\n"),
            Cow::Borrowed("## Two\n\n### Three\n")
        ));
    }

    #[test]
    fn code_in_tilde_fences_keeps_its_blank_lines_and_rules() {
        let md = "intro\n\n~~~\n```\na\n\n\n---\n~~~\n\n\n---\n";
        assert_eq!(
            tidy_markdown(md),
            "intro\n\n~~~\n```\na\n\n\n---\n~~~\n\n\\---"
        );
        // The same through the model's path, with a fence of four backticks.
        assert_eq!(
            tidy_generated_markdown("````\n```\n# x\n\n\n===\n```\n````"),
            "````\n```\n# x\n\n\n===\n```\n````"
        );
    }

    #[test]
    fn description_falls_back_to_first_paragraph() {
        assert_eq!(
            description_from_markdown("![img](https://example.org/i.png)\n\nReal text"),
            "Real text"
        );
        assert_eq!(
            description_from_markdown("## Heading\n\n**Bold** start &amp; more\n\nsecond"),
            "Bold start & more"
        );
    }
}
