//! Bytes in any of the encodings feeds use, to UTF-8 the parser can read.
//!
//! The precedence is the byte order mark, then the HTTP `charset`, then the XML declaration, then
//! UTF-8. The result is UTF-8 with a declaration that says so, because the parser would otherwise
//! decode the text a second time by the old declaration (and it cannot read UTF-16 at all).

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

/// A document as UTF-8, and what was odd about its encoding.
#[derive(Debug)]
pub struct Utf8Document<'a> {
    pub bytes: Cow<'a, [u8]>,
    pub warning: Option<String>,
}

/// The charset parameter of a `Content-Type` header.
fn http_charset(content_type: Option<&str>) -> Option<&str> {
    content_type?.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').trim_matches('\''))
    })
}

/// The XML declaration (`<?xml ... ?>`) at the start of an ASCII-compatible document.
fn xml_declaration(body: &[u8]) -> Option<&str> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &body[start..];
    if !rest.starts_with(b"<?xml") {
        return None;
    }
    let end = rest.windows(2).take(512).position(|w| w == b"?>")?;
    std::str::from_utf8(&rest[..end + 2]).ok()
}

fn declared_encoding(declaration: &str) -> Option<&str> {
    let after = &declaration[declaration.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let value = &after[1..];
    value.find(quote).map(|end| &value[..end])
}

/// Converts `body` to UTF-8, replacing any XML declaration with a UTF-8 one.
pub fn to_utf8<'a>(body: &'a [u8], content_type: Option<&str>) -> Utf8Document<'a> {
    let (encoding, bom_len, why) = if let Some((encoding, bom_len)) = Encoding::for_bom(body) {
        (encoding, bom_len, "byte order mark")
    } else if let Some(label) = http_charset(content_type) {
        match Encoding::for_label(label.as_bytes()) {
            Some(encoding) => (encoding, 0, "HTTP charset"),
            None => (UTF_8, 0, "unknown HTTP charset"),
        }
    } else if body.starts_with(&[0x3c, 0x00]) {
        (UTF_16LE, 0, "byte pattern")
    } else if body.starts_with(&[0x00, 0x3c]) {
        (UTF_16BE, 0, "byte pattern")
    } else if let Some(label) = xml_declaration(body).and_then(declared_encoding) {
        match Encoding::for_label(label.as_bytes()) {
            Some(encoding) => (encoding, 0, "XML declaration"),
            None => (UTF_8, 0, "unknown declared encoding"),
        }
    } else {
        (UTF_8, 0, "default")
    };
    let content = &body[bom_len..];

    let mut warning = None;
    let text: Cow<'a, str> = match encoding
        .decode_without_bom_handling_and_without_replacement(content)
    {
        Some(text) => text,
        None => match std::str::from_utf8(content) {
            Ok(text) => {
                warning = Some(format!(
                    "the document is not valid {} (from the {why}) but is valid UTF-8; read as UTF-8",
                    encoding.name()
                ));
                Cow::Borrowed(text)
            }
            Err(_) => {
                warning = Some(format!(
                    "the document has bytes that are not valid {} (from the {why}); they were replaced",
                    encoding.name()
                ));
                encoding.decode_without_bom_handling(content).0
            }
        },
    };
    if why.starts_with("unknown") {
        warning = Some(format!("{why}; read as UTF-8"));
    }
    Utf8Document {
        bytes: with_utf8_declaration(text),
        warning,
    }
}

/// The text as bytes, with any XML declaration replaced by one naming UTF-8.
fn with_utf8_declaration(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    let declaration = xml_declaration(text.as_bytes()).map(str::len);
    let names_other = xml_declaration(text.as_bytes())
        .and_then(declared_encoding)
        .is_some_and(|e| !e.eq_ignore_ascii_case("utf-8"));
    match (declaration, names_other) {
        (Some(len), true) => {
            let start = text.len() - text.trim_start().len();
            let mut out = String::with_capacity(text.len());
            out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            out.push_str(&text[start + len..]);
            Cow::Owned(out.into_bytes())
        }
        _ => match text {
            Cow::Borrowed(t) => Cow::Borrowed(t.as_bytes()),
            Cow::Owned(t) => Cow::Owned(t.into_bytes()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(doc: &Utf8Document<'_>) -> String {
        String::from_utf8(doc.bytes.to_vec()).expect("utf-8")
    }

    #[test]
    fn declaration_decides_without_bom_or_charset() {
        let (gbk, _, _) = encoding_rs::GBK
            .encode("<?xml version=\"1.0\" encoding=\"GBK\"?><rss><title>中文标题</title></rss>");
        let doc = to_utf8(&gbk, Some("application/xml"));
        assert_eq!(
            text(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss><title>中文标题</title></rss>"
        );
        assert!(doc.warning.is_none());
    }

    #[test]
    fn bom_beats_charset_beats_declaration() {
        let mut utf16 = vec![0xff, 0xfe];
        for unit in "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>日本</a>".encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(
            text(&to_utf8(&utf16, Some("text/xml; charset=iso-8859-1"))),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>日本</a>"
        );
        let latin1 = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>caf\xe9</a>";
        assert_eq!(
            text(&to_utf8(latin1, Some("text/xml; charset=\"ISO-8859-1\""))),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>café</a>"
        );
    }

    #[test]
    fn valid_utf8_wins_over_a_wrong_declaration_with_a_warning() {
        let body = "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><a>日本語 ü</a>".as_bytes();
        let doc = to_utf8(body, None);
        assert!(text(&doc).ends_with("<a>日本語 ü</a>"));
        assert!(doc.warning.is_some_and(|w| w.contains("valid UTF-8")));
    }

    #[test]
    fn every_legacy_encoding_feeds_use() {
        let cases: &[(&str, &'static encoding_rs::Encoding, &str)] = &[
            ("GB18030", encoding_rs::GB18030, "人工智能"),
            ("Big5", encoding_rs::BIG5, "人工智慧"),
            ("Shift_JIS", encoding_rs::SHIFT_JIS, "人工知能"),
            ("EUC-KR", encoding_rs::EUC_KR, "인공지능"),
            ("ISO-8859-1", encoding_rs::WINDOWS_1252, "Café crème"),
            (
                "windows-1252",
                encoding_rs::WINDOWS_1252,
                "“smart” quotes – €",
            ),
        ];
        for (label, encoding, text) in cases {
            let xml = format!("<?xml version=\"1.0\" encoding=\"{label}\"?><t>{text}</t>");
            let (bytes, _, unmappable) = encoding.encode(&xml);
            assert!(!unmappable, "{label}");
            let doc = to_utf8(&bytes, None);
            let out = String::from_utf8(doc.bytes.to_vec()).expect("utf-8");
            assert_eq!(
                out,
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><t>{text}</t>"),
                "{label}"
            );
        }
    }

    #[test]
    fn plain_utf8_is_borrowed() {
        let body = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><a/>";
        assert!(matches!(to_utf8(body, None).bytes, Cow::Borrowed(_)));
        assert!(matches!(
            to_utf8(b"{\"version\": 1}", Some("application/json")).bytes,
            Cow::Borrowed(_)
        ));
    }
}
