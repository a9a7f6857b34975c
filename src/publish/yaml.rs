//! YAML scalars for the one-line front matter of Markdown archive files.
//!
//! Archive files are read by static site generators, some of which use a
//! YAML 1.1 parser (PyYAML, Ruby's Psych, go-yaml v2) and some a YAML 1.2
//! one (libyaml-based serde_yaml, yaml-rust2, go-yaml v3). A value is written
//! plain only when every one of them reads it back as the same string, so a
//! title stays readable in the file. Anything else is written double-quoted,
//! because that is the only YAML style that can hold every string (control
//! characters, line breaks, leading spaces) on a single line.
//!
//! The plain check errs on the side of quoting: a string that merely looks
//! like a number, date or keyword in *some* schema is quoted even when no
//! known parser would actually convert it, since a quoted string can never be
//! misread while a wrongly plain one silently turns a title into `true`,
//! `null`, `2024` or a date.

use std::borrow::Cow;

/// Formats `value` as a YAML scalar for a one-line `key: value` front matter entry.
///
/// Ordinary text is returned unchanged (borrowed); everything else comes back
/// double-quoted with escapes, never containing a raw line break.
pub fn scalar(value: &str) -> Cow<'_, str> {
    if is_plain_safe(value) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(double_quoted(value))
    }
}

/// True when `value` can be written plain (reads back the same in YAML 1.1 and 1.2).
pub fn is_plain_safe(value: &str) -> bool {
    let (Some(first), Some(last)) = (value.chars().next(), value.chars().next_back()) else {
        // An empty plain scalar is null, not "".
        return false;
    };
    // YAML itself trims only spaces and tabs, but other Unicode spaces at the
    // edges are invisible to the reader and easily eaten by sloppy tooling.
    if first.is_whitespace() || last.is_whitespace() {
        return false;
    }
    // ASCII (most titles and descriptions) needs an escape only for C0 and DEL: a byte test,
    // where the general test looks each character up in Unicode's tables.
    let escaped = if value.is_ascii() {
        value.bytes().any(|b| b < 0x20 || b == 0x7f)
    } else {
        value.chars().any(needs_escape)
    };
    if escaped {
        return false;
    }
    if !plain_start_is_unambiguous(value) {
        return false;
    }
    // `: ` would start a nested mapping, ` #` a comment, and a trailing `:`
    // makes the whole value look like a mapping key.
    if value.contains(": ") || value.contains(" #") || value.ends_with(':') {
        return false;
    }
    !may_resolve_to_non_string(value)
}

/// Reads one scalar as written in a front matter line (the part after `key: ` or `- `):
/// plain (trimmed), double-quoted with all YAML escapes, or single-quoted (`''` escape).
///
/// Like YAML, a ` #` comment after a plain scalar or after the closing quote is
/// ignored, and a line that is only a comment reads as the empty string. The
/// value is always returned as text: no `true`/`null`/number resolution is done,
/// which is what callers of a title or description want.
///
/// Returns Err for unterminated quotes / bad escapes / trailing garbage after a closing quote.
pub fn parse_scalar(raw: &str) -> Result<String, ScalarError> {
    // A stray line terminator from the caller's line splitting is harmless;
    // a break anywhere else means the value was not one line.
    let text = raw.trim_matches([' ', '\t', '\r', '\n']);
    if text.contains(['\r', '\n']) {
        return Err(ScalarError::LineBreak);
    }
    if let Some(body) = text.strip_prefix('"') {
        let (value, rest) = parse_double_quoted_body(body)?;
        check_after_closing_quote(rest)?;
        Ok(value)
    } else if let Some(body) = text.strip_prefix('\'') {
        let (value, rest) = parse_single_quoted_body(body)?;
        check_after_closing_quote(rest)?;
        Ok(value)
    } else {
        Ok(strip_plain_comment(text).to_owned())
    }
}

/// Why [`parse_scalar`] rejected its input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScalarError {
    /// A `"` opened a string that no unescaped `"` closes.
    #[error("unterminated double-quoted string")]
    UnterminatedDoubleQuoted,
    /// A `'` opened a string that no lone `'` closes.
    #[error("unterminated single-quoted string")]
    UnterminatedSingleQuoted,
    /// A backslash followed by a character YAML defines no escape for.
    #[error("unknown escape character {0:?} after a backslash in double-quoted string")]
    UnknownEscape(char),
    /// `\x`, `\u` or `\U` not followed by enough hexadecimal digits.
    #[error("escape sequence `{escape}` needs {digits} hexadecimal digits")]
    InvalidHexEscape {
        /// The escape up to the first non-hex character, backslash included.
        escape: String,
        /// How many digits this kind of escape takes.
        digits: usize,
    },
    /// A hexadecimal escape naming a surrogate or a value above U+10FFFF.
    #[error("escape sequence `{escape}` does not encode a Unicode scalar value")]
    InvalidCodePoint {
        /// The full escape, backslash included.
        escape: String,
    },
    /// Something other than a ` #` comment follows the closing quote.
    #[error("unexpected characters {0:?} after the closing quote")]
    TrailingCharacters(String),
    /// The input spans more than one line.
    #[error("line break inside a one-line scalar")]
    LineBreak,
}

/// Characters that are never written literally: YAML's non-printables, the
/// characters YAML 1.1 counts as line breaks, the BOM (which some readers
/// strip wherever it appears) and bidi controls, which could visually reorder
/// the line in an editor without changing its bytes.
fn needs_escape(c: char) -> bool {
    // `is_control` is exactly C0, DEL and C1, which includes tab, CR, LF and NEL.
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        )
        || is_bidi_control(c)
}

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Checks the first characters against YAML's indicators, which would
/// otherwise start a sequence, mapping, anchor, tag, block scalar, comment,
/// quoted string, directive or reserved construct.
fn plain_start_is_unambiguous(value: &str) -> bool {
    // Document markers only count at column 0, but a reader that splits the
    // front matter on lines containing `---`/`...` must never be tempted.
    if value.starts_with("---") || value.starts_with("...") {
        return false;
    }
    let mut chars = value.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    match first {
        // Both versions allow these when a non-space follows (`-ish`, `?!`);
        // the only other candidate, `:`, is left out because Ruby's Psych
        // (Jekyll) turns `:word` into a Symbol, which safe loading rejects.
        '-' | '?' => chars.next().is_some_and(|next| !next.is_whitespace()),
        ':' | ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
        | '%' | '@' | '`' => false,
        _ => true,
    }
}

/// True when some YAML 1.1 or 1.2 schema might resolve `value` to something
/// other than a string (bool, null, number, timestamp, merge key or value key).
fn may_resolve_to_non_string(value: &str) -> bool {
    // YAML 1.1 lists exact spellings, but Psych matches these case-insensitively.
    const KEYWORDS: [&str; 12] = [
        "y", "n", "yes", "no", "true", "false", "on", "off", "null", "~", "<<", "=",
    ];
    if KEYWORDS.iter().any(|k| value.eq_ignore_ascii_case(k)) {
        return true;
    }
    let unsigned = value.trim_start_matches(['+', '-']);
    if unsigned.eq_ignore_ascii_case(".inf") || unsigned.eq_ignore_ascii_case(".nan") {
        return true;
    }
    looks_numeric(value)
}

/// A deliberately loose superset of every integer, float and timestamp
/// grammar in play: YAML 1.1 (binary, old-style octal, hex, base 60,
/// underscores, Psych's thousands commas, dates with `t`/spaces/zones), YAML 1.2
/// (`0o`, `0x`, exponents) and the Rust `parse` calls behind serde_yaml and
/// yaml-rust2 (which accept things like `+-5`, `0x-1` or `1.`).
fn looks_numeric(value: &str) -> bool {
    let number_punct =
        |c: char| c.is_ascii_digit() || matches!(c, '_' | '.' | ',' | ':' | '+' | '-');
    // Covers `1_000`, `1:20`, `.5`, `+-5`, and digit-free oddities such as `.`
    // or `_` that some 1.1 float patterns accept.
    if value.chars().all(number_punct) {
        return true;
    }
    if !value.bytes().any(|b| b.is_ascii_digit()) {
        return false;
    }
    // SnakeYAML's 1.1 float pattern even lets a number start with `_`.
    let starts_like_number =
        value.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '_'));
    // Hex digits include `e`/`E` for exponents; `x`, `o`, `b` are radix
    // prefixes and `p` is a hex-float exponent.
    let number_char = |c: char| {
        number_punct(c) || c.is_ascii_hexdigit() || matches!(c, 'x' | 'X' | 'o' | 'O' | 'p' | 'P')
    };
    if starts_like_number && value.chars().all(number_char) {
        return true;
    }
    // Timestamps are the only numeric-looking values with spaces or letters
    // beyond the above; Psych even allows a leading `-`.
    let date = value.strip_prefix('-').unwrap_or(value).as_bytes();
    let date_start = date.len() >= 6
        && date[..4].iter().all(u8::is_ascii_digit)
        && date[4] == b'-'
        && date[5].is_ascii_digit();
    date_start
        && value
            .chars()
            .all(|c| number_punct(c) || matches!(c, ' ' | 't' | 'T' | 'z' | 'Z'))
}

fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        // Named escapes where YAML has them: they are what every reader,
        // including PyYAML, is sure to know, and they read better.
        let named = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\0' => "\\0",
            '\u{7}' => "\\a",
            '\u{8}' => "\\b",
            '\t' => "\\t",
            '\n' => "\\n",
            '\u{b}' => "\\v",
            '\u{c}' => "\\f",
            '\r' => "\\r",
            '\u{1b}' => "\\e",
            '\u{85}' => "\\N",
            '\u{2028}' => "\\L",
            '\u{2029}' => "\\P",
            _ if needs_escape(c) => {
                push_hex_escape(&mut out, c);
                continue;
            }
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push_str(named);
    }
    out.push('"');
    out
}

fn push_hex_escape(out: &mut String, c: char) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let code = u32::from(c);
    let (kind, digits) = match code {
        0..=0xFF => ('x', 2),
        0x100..=0xFFFF => ('u', 4),
        _ => ('U', 8),
    };
    out.push('\\');
    out.push(kind);
    for shift in (0..digits).rev() {
        let nibble = (code >> (shift * 4)) & 0xF;
        out.push(char::from(HEX[nibble as usize]));
    }
}

/// Decodes a double-quoted scalar whose opening quote is already consumed;
/// returns the value and whatever follows the closing quote.
fn parse_double_quoted_body(body: &str) -> Result<(String, &str), ScalarError> {
    let mut value = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[index + 1..])),
            '\\' => {
                let Some((_, escape)) = chars.next() else {
                    // A backslash at the end would escape the line break,
                    // continuing the string on a line we do not have.
                    return Err(ScalarError::UnterminatedDoubleQuoted);
                };
                let decoded = match escape {
                    '0' => '\0',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    't' | '\t' => '\t',
                    'n' => '\n',
                    'v' => '\u{b}',
                    'f' => '\u{c}',
                    'r' => '\r',
                    'e' => '\u{1b}',
                    ' ' => ' ',
                    '"' => '"',
                    '/' => '/',
                    '\\' => '\\',
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    'x' => decode_hex_escape(&mut chars, escape, 2)?,
                    'u' => decode_hex_escape(&mut chars, escape, 4)?,
                    'U' => decode_hex_escape(&mut chars, escape, 8)?,
                    other => return Err(ScalarError::UnknownEscape(other)),
                };
                value.push(decoded);
            }
            _ => value.push(c),
        }
    }
    Err(ScalarError::UnterminatedDoubleQuoted)
}

fn decode_hex_escape(
    chars: &mut std::str::CharIndices<'_>,
    kind: char,
    digits: usize,
) -> Result<char, ScalarError> {
    let mut escape = format!("\\{kind}");
    let mut code: u32 = 0;
    for _ in 0..digits {
        match chars.next().and_then(|(_, c)| Some((c, c.to_digit(16)?))) {
            Some((c, d)) => {
                escape.push(c);
                code = (code << 4) | d;
            }
            None => return Err(ScalarError::InvalidHexEscape { escape, digits }),
        }
    }
    char::from_u32(code).ok_or(ScalarError::InvalidCodePoint { escape })
}

/// Decodes a single-quoted scalar whose opening quote is already consumed;
/// returns the value and whatever follows the closing quote.
fn parse_single_quoted_body(body: &str) -> Result<(String, &str), ScalarError> {
    let mut value = String::with_capacity(body.len());
    let mut rest = body;
    loop {
        let Some(quote) = rest.find('\'') else {
            return Err(ScalarError::UnterminatedSingleQuoted);
        };
        value.push_str(&rest[..quote]);
        let after = &rest[quote + 1..];
        match after.strip_prefix('\'') {
            Some(next) => {
                value.push('\'');
                rest = next;
            }
            None => return Ok((value, after)),
        }
    }
}

fn check_after_closing_quote(rest: &str) -> Result<(), ScalarError> {
    let trimmed = rest.trim_start_matches([' ', '\t']);
    // YAML only recognises a comment that is separated by whitespace.
    let is_comment = trimmed.starts_with('#') && trimmed.len() < rest.len();
    if trimmed.is_empty() || is_comment {
        Ok(())
    } else {
        Err(ScalarError::TrailingCharacters(rest.to_owned()))
    }
}

fn strip_plain_comment(text: &str) -> &str {
    let mut previous = None;
    for (index, c) in text.char_indices() {
        if c == '#' && previous.is_none_or(|p| p == ' ' || p == '\t') {
            return text[..index].trim_end_matches([' ', '\t']);
        }
        previous = Some(c);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use yaml_rust2::{Yaml, YamlLoader};

    /// The titles the spec names as awkward, plus the neighbours they imply.
    const AWKWARD: &[&str] = &[
        "Q3: results",
        "- list",
        "#1 hit",
        "[draft]",
        "{x}",
        "'quoted'",
        "\"quoted\"",
        "@user",
        "*bold*",
        "& more",
        "!tag",
        "%",
        ">",
        "|",
        "true",
        "yes",
        "off",
        "null",
        "~",
        "2024",
        "1.5",
        "0x1F",
        "2024-05-13",
        "a # b",
        "",
        " leading",
        "trailing ",
        " ",
        "  ",
        "\t",
        "a\tb",
        "line\nbreak",
        "\n",
        "ends with newline\n",
        "cr\rlf",
        "\r\n",
        "nul\0byte",
        "bell\u{7}",
        "escape\u{1b}[0m",
        "del\u{7f}",
        "c1\u{80}\u{9f}",
        "nel\u{85}",
        "ls\u{2028}ps\u{2029}",
        "\u{feff}bom",
        "nonchar\u{fffe}\u{ffff}",
        "rtl \u{200e}\u{200f}\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}",
        "isolates \u{2066}\u{2067}\u{2068}\u{2069}",
        "arabic mark \u{61c}",
        "\u{a0}nbsp lead",
        "nbsp trail\u{a0}",
        "\u{3000}ideographic",
        "---",
        "--- title",
        "...",
        "... and more",
        "-",
        "?",
        ":",
        "? key",
        ": value",
        ":symbol",
        "trailing colon:",
        "a: b",
        "a #b",
        "#",
        ",comma",
        "]",
        "}",
        "`code`",
        "\"",
        "'",
        "\"unbalanced",
        "'unbalanced",
        "y",
        "Y",
        "n",
        "N",
        "Yes",
        "YES",
        "No",
        "NO",
        "no",
        "True",
        "TRUE",
        "False",
        "FALSE",
        "false",
        "on",
        "On",
        "ON",
        "Off",
        "OFF",
        "Null",
        "NULL",
        "nULL",
        "<<",
        "=",
        ".inf",
        ".Inf",
        ".INF",
        "+.inf",
        "-.inf",
        "-.Inf",
        ".nan",
        ".NaN",
        ".NAN",
        "0",
        "-0",
        "+1",
        "-1",
        "007",
        "0o17",
        "0O17",
        "0b1010",
        "0b1_0",
        "0x_1F",
        "0xff",
        "-0x1F",
        "0x-1",
        "0o+7",
        "+-5",
        "++5",
        "1_000",
        "1,000",
        "1:20",
        "190:20:30",
        "190:20:30.15",
        "-1:20",
        "1e3",
        "1E3",
        "1e+3",
        "1.5e-3",
        "6.8523015e+5",
        "685.230_15e+03",
        ".5",
        "1.",
        "+.5",
        ".",
        "_",
        "99999999999999999999999",
        "2024-5-3",
        "2024-5-3t1:2:3",
        "2024-05-13T09:00:53.911Z",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "2001-12-15 2:59:43.10",
        "-2024-05-13",
        "a\u{0}",
        "_e1",
        "-\u{a0}x",
        "?\u{3000}",
    ];

    /// Titles that must stay plain, straight from real feeds.
    const ORDINARY: &[&str] = &[
        "US and China to hold first talks to reduce risk of AI ‘miscalculation’",
        "美国和中国将举行首次会谈",
        "Tuesday’s meeting",
        "Tuesday’s meeting in Geneva",
        "5 things to know",
        "C# tips",
        "50% off",
        "what? why!",
        "a:b",
        "don't",
        "It's \"fine\"",
        "US and China to hold first talks",
        "world",
        "ft",
        "Rust 1.80 released",
        "2024 in review",
        "Q3 results",
        "-ish",
        "?!",
        "a, b and c",
        "x [draft]",
        "mail@example.com",
        "50-50 chance",
        "back\\slash",
        "tab-free “smart quotes”",
        "Infinity War",
        "👨‍👩‍👧 family",
        "soft\u{ad}hyphen",
        "\\",
        "emoji 🎉",
        "🎉",
        "\u{10ffff}",
        "1st",
        "inf",
        "NaN",
        "yes!",
        "nulla",
    ];

    fn serde_yaml_value(doc: &str, key: &str) -> serde_yaml::Value {
        let map: BTreeMap<String, serde_yaml::Value> = serde_yaml::from_str(doc)
            .unwrap_or_else(|e| panic!("serde_yaml rejected {doc:?}: {e}"));
        map.get(key)
            .cloned()
            .unwrap_or_else(|| panic!("serde_yaml lost {key} in {doc:?}"))
    }

    fn yaml_rust_value(doc: &str, key: &str) -> Yaml {
        let docs = YamlLoader::load_from_str(doc)
            .unwrap_or_else(|e| panic!("yaml-rust2 rejected {doc:?}: {e}"));
        assert_eq!(docs.len(), 1, "yaml-rust2 saw several documents in {doc:?}");
        docs[0][key].clone()
    }

    /// Fails (rather than returning a property error) so the same check can
    /// serve unit tests and proptest; proptest still shrinks on panics.
    fn assert_round_trip(value: &str) {
        let written = scalar(value);
        assert!(
            !written.contains(['\n', '\r']),
            "{value:?} was written over several lines: {written:?}"
        );

        let doc = format!("title: {written}\n");
        assert_eq!(
            serde_yaml_value(&doc, "title"),
            serde_yaml::Value::String(value.to_owned()),
            "serde_yaml misread {doc:?}"
        );
        assert_eq!(
            yaml_rust_value(&doc, "title"),
            Yaml::String(value.to_owned()),
            "yaml-rust2 misread {doc:?}"
        );
        assert_eq!(
            parse_scalar(&written).as_deref(),
            Ok(value),
            "parse_scalar misread {written:?}"
        );

        let doc = format!("tags: \n- {written}\n");
        assert_eq!(
            serde_yaml_value(&doc, "tags"),
            serde_yaml::Value::Sequence(vec![serde_yaml::Value::String(value.to_owned())]),
            "serde_yaml misread {doc:?}"
        );
        assert_eq!(
            yaml_rust_value(&doc, "tags"),
            Yaml::Array(vec![Yaml::String(value.to_owned())]),
            "yaml-rust2 misread {doc:?}"
        );
    }

    #[test]
    fn awkward_values_round_trip() {
        for value in AWKWARD {
            assert_round_trip(value);
        }
    }

    /// The byte test `is_plain_safe` makes of ASCII text is the general one.
    #[test]
    fn ascii_needs_an_escape_only_for_c0_and_del() {
        for b in 0..=0x7f_u8 {
            assert_eq!(needs_escape(char::from(b)), b < 0x20 || b == 0x7f, "{b:#x}");
        }
    }

    #[test]
    fn awkward_values_are_quoted() {
        let plain: Vec<_> = AWKWARD.iter().filter(|v| is_plain_safe(v)).collect();
        assert!(plain.is_empty(), "written plain: {plain:?}");
    }

    #[test]
    fn ordinary_values_stay_plain() {
        for value in ORDINARY {
            assert!(is_plain_safe(value), "{value:?} would be quoted");
            assert!(
                matches!(scalar(value), Cow::Borrowed(s) if s == *value),
                "{value:?} was not written as is"
            );
            assert_round_trip(value);
        }
    }

    #[test]
    fn escapes_are_readable() {
        assert_eq!(scalar("a\tb\nc"), "\"a\\tb\\nc\"");
        assert_eq!(scalar("say \"hi\" \\o/ "), "\"say \\\"hi\\\" \\\\o/ \"");
        assert_eq!(
            scalar("\u{0}\u{7}\u{8}\u{b}\u{c}\r\u{1b}"),
            "\"\\0\\a\\b\\v\\f\\r\\e\""
        );
        assert_eq!(scalar("\u{85}\u{2028}\u{2029}"), "\"\\N\\L\\P\"");
        assert_eq!(scalar("\u{1}\u{7f}\u{9f}"), "\"\\x01\\x7F\\x9F\"");
        assert_eq!(
            scalar("\u{feff}\u{202e}\u{ffff}"),
            "\"\\uFEFF\\u202E\\uFFFF\""
        );
        // Non-escaped characters stay literal inside quotes.
        assert_eq!(scalar(" 美国 "), "\" 美国 \"");
        assert_eq!(scalar("true"), "\"true\"");
    }

    #[test]
    fn parse_scalar_reads_every_style() {
        assert_eq!(parse_scalar("plain text").as_deref(), Ok("plain text"));
        assert_eq!(parse_scalar("  padded\t ").as_deref(), Ok("padded"));
        assert_eq!(parse_scalar("value # note").as_deref(), Ok("value"));
        assert_eq!(parse_scalar("C# tips").as_deref(), Ok("C# tips"));
        assert_eq!(parse_scalar("# only a comment").as_deref(), Ok(""));
        assert_eq!(parse_scalar("").as_deref(), Ok(""));
        assert_eq!(parse_scalar("title\r\n").as_deref(), Ok("title"));
        assert_eq!(parse_scalar("'it''s'").as_deref(), Ok("it's"));
        assert_eq!(parse_scalar("''").as_deref(), Ok(""));
        assert_eq!(parse_scalar("'a \\n b' # c").as_deref(), Ok("a \\n b"));
        assert_eq!(parse_scalar("\"\"").as_deref(), Ok(""));
        assert_eq!(parse_scalar("\"a\\\"b\" # c").as_deref(), Ok("a\"b"));
        assert_eq!(
            parse_scalar(r#""\0\a\b\t\	\n\v\f\r\e\ \"\/\\\N\_\L\P""#).as_deref(),
            Ok("\0\u{7}\u{8}\t\t\n\u{b}\u{c}\r\u{1b} \"/\\\u{85}\u{a0}\u{2028}\u{2029}")
        );
        assert_eq!(
            parse_scalar(r#""\x41\xe9\u00e9\u4E2D\U0001F389""#).as_deref(),
            Ok("Aéé中🎉")
        );
    }

    #[test]
    fn parse_scalar_rejects_malformed_input() {
        use ScalarError::*;
        assert_eq!(parse_scalar("\"abc"), Err(UnterminatedDoubleQuoted));
        assert_eq!(parse_scalar("\"abc\\\""), Err(UnterminatedDoubleQuoted));
        assert_eq!(parse_scalar("\"abc\\"), Err(UnterminatedDoubleQuoted));
        assert_eq!(parse_scalar("'abc"), Err(UnterminatedSingleQuoted));
        assert_eq!(parse_scalar("'abc''"), Err(UnterminatedSingleQuoted));
        assert_eq!(parse_scalar("\"\\q\""), Err(UnknownEscape('q')));
        assert_eq!(
            parse_scalar("\"\\x4\""),
            Err(InvalidHexEscape {
                escape: "\\x4".to_owned(),
                digits: 2
            })
        );
        assert_eq!(
            parse_scalar("\"\\u12"),
            Err(InvalidHexEscape {
                escape: "\\u12".to_owned(),
                digits: 4
            })
        );
        assert_eq!(
            parse_scalar("\"\\uD800\""),
            Err(InvalidCodePoint {
                escape: "\\uD800".to_owned()
            })
        );
        assert_eq!(
            parse_scalar("\"\\U00110000\""),
            Err(InvalidCodePoint {
                escape: "\\U00110000".to_owned()
            })
        );
        assert_eq!(
            parse_scalar("\"a\" b"),
            Err(TrailingCharacters(" b".to_owned()))
        );
        assert_eq!(
            parse_scalar("\"a\"#b"),
            Err(TrailingCharacters("#b".to_owned()))
        );
        assert_eq!(
            parse_scalar("'a'b"),
            Err(TrailingCharacters("b".to_owned()))
        );
        assert_eq!(parse_scalar("\"a\nb\""), Err(LineBreak));
        assert_eq!(parse_scalar("a\rb"), Err(LineBreak));
    }

    #[test]
    fn errors_have_clear_messages() {
        assert_eq!(
            ScalarError::UnterminatedDoubleQuoted.to_string(),
            "unterminated double-quoted string"
        );
        assert_eq!(
            parse_scalar("\"\\q\"").map_err(|e| e.to_string()),
            Err(
                "unknown escape character 'q' after a backslash in double-quoted string".to_owned()
            )
        );
        assert_eq!(
            parse_scalar("\"\\xZZ\"").map_err(|e| e.to_string()),
            Err("escape sequence `\\x` needs 2 hexadecimal digits".to_owned())
        );
        assert_eq!(
            parse_scalar("\"\\uDFFF\"").map_err(|e| e.to_string()),
            Err("escape sequence `\\uDFFF` does not encode a Unicode scalar value".to_owned())
        );
        assert_eq!(
            parse_scalar("'a' b").map_err(|e| e.to_string()),
            Err("unexpected characters \" b\" after the closing quote".to_owned())
        );
    }

    /// Pieces that each trip up some part of the plain-scalar rules.
    const FRAGMENTS: &[&str] = &[
        "-",
        "?",
        ":",
        ",",
        "[",
        "]",
        "{",
        "}",
        "#",
        "&",
        "*",
        "!",
        "|",
        ">",
        "'",
        "\"",
        "%",
        "@",
        "`",
        "\\",
        "<<",
        "=",
        "~",
        "0",
        "1",
        "7",
        "9",
        "0x",
        "0o",
        "0b",
        ".",
        "_",
        "e",
        "E",
        "+",
        "t",
        "Z",
        " ",
        "  ",
        "\t",
        "\n",
        "\r",
        "\r\n",
        "\0",
        "\u{1b}",
        "\u{7f}",
        "\u{85}",
        "\u{a0}",
        "\u{2028}",
        "\u{2029}",
        "\u{feff}",
        "\u{200e}",
        "\u{202e}",
        "\u{2067}",
        "\u{3000}",
        "\u{fffe}",
        "美国",
        "中",
        "’",
        "🎉",
        "yes",
        "No",
        "ON",
        "null",
        "true",
        "False",
        ".inf",
        "-.Inf",
        ".nan",
        "---",
        "...",
        ": ",
        " #",
        "- ",
        "? ",
        "2024-05-13",
        "T09:00:53Z",
        "1:20",
        "1_000",
        "word",
        "a",
        "y",
    ];

    fn awkward_string() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..12)
            .prop_map(|parts| parts.concat())
    }

    fn test_config(cases: u32) -> ProptestConfig {
        ProptestConfig {
            cases,
            // Regression files would land next to this source file.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(test_config(512))]

        #[test]
        fn arbitrary_strings_round_trip(value in any::<String>()) {
            assert_round_trip(&value);
        }

        #[test]
        fn awkward_strings_round_trip(value in awkward_string()) {
            assert_round_trip(&value);
        }

        #[test]
        fn short_character_soups_round_trip(
            value in "[-?:,\\[\\]{}#&*!|>'\"%@`~=<0-9a-fxobtzA-FTZ._+ \t\n\r\u{0}\u{85}\u{a0}\u{200e}\u{2028}\u{feff}美]{0,8}"
        ) {
            assert_round_trip(&value);
        }
    }

    /// About 10 KB: mostly plain text that must stay plain, or a repeated
    /// mixed chunk that will almost always be quoted.
    fn long_string() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(prop::sample::select(ORDINARY), 700..1000)
                .prop_map(|titles| titles.join(" ")),
            prop::collection::vec(prop_oneof![awkward_string(), any::<String>()], 1..100).prop_map(
                |parts| {
                    let chunk = parts.concat();
                    let chunk = if chunk.is_empty() {
                        "x".to_owned()
                    } else {
                        chunk
                    };
                    chunk.repeat(10_000 / chunk.len() + 1)
                }
            ),
        ]
    }

    proptest! {
        #![proptest_config(test_config(24))]

        #[test]
        fn long_strings_round_trip(value in long_string()) {
            prop_assert!(value.len() >= 8_000);
            assert_round_trip(&value);
        }
    }

    #[test]
    fn long_ordinary_text_stays_plain() {
        let value = ORDINARY.join(" ").repeat(20);
        assert!(value.len() > 10_000);
        assert!(is_plain_safe(&value));
        assert_round_trip(&value);
    }

    /// Deterministic strings in the spirit of the proptest strategies, so the
    /// PyYAML run is reproducible and needs no proptest machinery.
    fn generated_cases(count: usize) -> Vec<String> {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |bound: usize| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let mixed = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            usize::try_from(mixed >> 33).unwrap_or(0) % bound
        };
        (0..count)
            .map(|_| {
                let parts = next(6) + 1;
                let mut value = String::new();
                for _ in 0..parts {
                    match next(4) {
                        0 => value.push(char::from_u32(next(0x80) as u32).unwrap_or('?')),
                        1 => value.push(char::from_u32(next(0x3000) as u32).unwrap_or('?')),
                        _ => value.push_str(FRAGMENTS[next(FRAGMENTS.len())]),
                    }
                }
                value
            })
            .collect()
    }

    /// YAML 1.1 is checked against the reference implementation, PyYAML, with
    /// its pure-Python loader and, when built, its libyaml-based one.
    #[test]
    fn pyyaml_reads_values_back() {
        let has_pyyaml = std::process::Command::new("python3")
            .args(["-c", "import yaml"])
            .output()
            .is_ok_and(|out| out.status.success());
        if !has_pyyaml {
            eprintln!("skipping pyyaml_reads_values_back: python3 with PyYAML is not available");
            return;
        }

        let mut cases: Vec<String> = AWKWARD
            .iter()
            .chain(ORDINARY)
            .map(|s| (*s).to_owned())
            .collect();
        cases.extend(generated_cases(400));
        // Long values: one plain, one quoted (long simple keys have limits in
        // some YAML scanners, values must not).
        cases.push(ORDINARY.join(" ").repeat(20));
        cases.push(generated_cases(40).concat().repeat(4));

        let mut doc = String::new();
        for (i, value) in cases.iter().enumerate() {
            doc.push_str(&format!("k{i}: {}\n", scalar(value)));
        }
        doc.push_str("seq: \n");
        for value in &cases {
            doc.push_str(&format!("- {}\n", scalar(value)));
        }

        let path = std::env::temp_dir().join(format!(
            "gazette-yaml-scalars-{}-{:?}.yaml",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, &doc).expect("write batch file");
        const SCRIPT: &str = r#"
import json, sys, yaml
def describe(v):
    if isinstance(v, list):
        return [describe(x) for x in v]
    return [type(v).__name__, v if isinstance(v, str) else repr(v)]
loaders = [("SafeLoader", yaml.SafeLoader)]
if hasattr(yaml, "CSafeLoader"):
    loaders.append(("CSafeLoader", yaml.CSafeLoader))
out = {}
for name, loader in loaders:
    with open(sys.argv[1], encoding="utf-8") as f:
        data = yaml.load(f, Loader=loader)
    out[name] = {k: describe(v) for k, v in data.items()}
print(json.dumps(out))
"#;
        let output = std::process::Command::new("python3")
            .args(["-c", SCRIPT])
            .arg(&path)
            .output()
            .expect("run python3");
        let _ = std::fs::remove_file(&path);
        assert!(
            output.status.success(),
            "PyYAML failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );

        let results: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
            serde_json::from_slice(&output.stdout).expect("PyYAML output is JSON");
        assert!(results.contains_key("SafeLoader"));
        for (loader, map) in &results {
            for (i, value) in cases.iter().enumerate() {
                let expected = serde_json::json!(["str", value]);
                assert_eq!(
                    map.get(&format!("k{i}")),
                    Some(&expected),
                    "{loader} misread {value:?} written as {:?}",
                    scalar(value)
                );
                assert_eq!(
                    map.get("seq").and_then(|seq| seq.get(i)),
                    Some(&expected),
                    "{loader} misread sequence item {value:?} written as {:?}",
                    scalar(value)
                );
            }
        }
    }
}
