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
            Err(_) if why == "default" => {
                // Nothing names the encoding and the bytes are not UTF-8: guess it from the
                // bytes, as browsers do (EUC-KR, GBK, Shift_JIS, KOI8-R, Windows-1252...).
                let mut detector = chardetng::EncodingDetector::new();
                detector.feed(content, true);
                let guessed = detector.guess(None, false);
                warning = Some(format!(
                    "the document names no encoding and is not UTF-8; read as {}, a guess from its bytes",
                    guessed.name()
                ));
                guessed.decode_without_bom_handling(content).0
            }
            Err(_) if encoding == UTF_8 => {
                warning = Some(format!(
                    "the document has bytes that are not valid UTF-8 (from the {why}); they were read as Windows-1252"
                ));
                Cow::Owned(utf8_else_windows_1252(content))
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

/// UTF-8 with stray bytes of another encoding: a Latin-1 `é` pasted into a UTF-8 feed is the
/// usual cause, so each invalid byte is read as Windows-1252 (which maps every byte) and the
/// valid UTF-8 around it stays as it is.
fn utf8_else_windows_1252(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 16);
    loop {
        match std::str::from_utf8(bytes) {
            Ok(rest) => {
                out.push_str(rest);
                return out;
            }
            Err(e) => {
                let (valid, after) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let bad = e.error_len().unwrap_or(after.len()).max(1).min(after.len());
                let (invalid, rest) = after.split_at(bad);
                out.push_str(
                    &encoding_rs::WINDOWS_1252
                        .decode_without_bom_handling(invalid)
                        .0,
                );
                bytes = rest;
            }
        }
    }
}

/// An HTML page as text, decoded as browsers do: by its byte order mark, else the HTTP
/// `charset`, else a `<meta charset>` (or `http-equiv` Content-Type) near the top, else UTF-8.
/// Bytes the encoding cannot map are replaced, never a reason to lose the page.
pub fn html_to_utf8<'a>(body: &'a [u8], content_type: Option<&str>) -> Cow<'a, str> {
    let (encoding, bom_len) = Encoding::for_bom(body)
        .or_else(|| {
            http_charset(content_type)
                .and_then(|label| Encoding::for_label(label.as_bytes()))
                .map(|e| (e, 0))
        })
        .or_else(|| meta_charset(body).map(|e| (e, 0)))
        .unwrap_or((UTF_8, 0));
    // A page that declares UTF-16 in ASCII bytes cannot be UTF-16 (HTML's rule).
    let encoding = if bom_len == 0 && (encoding == UTF_16LE || encoding == UTF_16BE) {
        UTF_8
    } else {
        encoding
    };
    encoding.decode_without_bom_handling(&body[bom_len..]).0
}

/// The encoding a `<meta>` element in the first kilobyte names.
fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(1024)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let mut from = 0;
    while let Some(at) = find(&lower[from..], b"<meta") {
        let start = from + at;
        let end = find(&lower[start..], b">").map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(pos) = find(tag, b"charset") {
            let value = tag[pos + b"charset".len()..]
                .iter()
                .skip_while(|b| {
                    b.is_ascii_whitespace() || **b == b'=' || **b == b'"' || **b == b'\''
                })
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
                .copied()
                .collect::<Vec<u8>>();
            if let Some(encoding) = Encoding::for_label(&value) {
                return Some(encoding);
            }
        }
        from = end;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
    fn stray_latin1_bytes_in_utf8_are_read_as_windows_1252() {
        let body = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><a>Caf\xe9 au lait \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \x93q\x94</a>";
        let doc = to_utf8(body, None);
        assert!(
            text(&doc).ends_with("<a>Café au lait — 日本 “q”</a>"),
            "{}",
            text(&doc)
        );
        assert!(doc.warning.is_some_and(|w| w.contains("Windows-1252")));
    }

    #[test]
    fn undeclared_legacy_encodings_are_guessed() {
        for (encoding, words) in [
            (
                encoding_rs::EUC_KR,
                "인공지능이 뉴스 편집실을 바꾸고 있다는 소식입니다",
            ),
            (
                encoding_rs::SHIFT_JIS,
                "人工知能がニュース編集室を変えつつあるという話です",
            ),
            (
                encoding_rs::GBK,
                "人工智能正在改变新闻编辑室的工作方式和节奏",
            ),
            (
                encoding_rs::KOI8_R,
                "Искусственный интеллект меняет редакции новостей",
            ),
        ] {
            let doc = format!("<rss><title>{words}</title></rss>");
            let (bytes, _, _) = encoding.encode(&doc);
            let doc = to_utf8(&bytes, None);
            assert!(
                text(&doc).contains(words),
                "{}: {}",
                encoding.name(),
                text(&doc)
            );
            assert!(doc.warning.is_some_and(|w| w.contains("guess")));
        }
    }

    #[test]
    fn html_pages_in_legacy_encodings() {
        let page = |charset_tag: &str, text: &str, encoding: &'static Encoding| {
            let html = format!(
                "<html><head>{charset_tag}<title>t</title></head><body><p>{text}</p></body></html>"
            );
            encoding.encode(&html).0.into_owned()
        };
        let gbk = page("<meta charset=\"gbk\">", "人工智能", encoding_rs::GBK);
        assert!(html_to_utf8(&gbk, Some("text/html")).contains("人工智能"));
        let big5 = page(
            "<META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=big5\">",
            "人工智慧",
            encoding_rs::BIG5,
        );
        assert!(html_to_utf8(&big5, None).contains("人工智慧"));
        let sjis = page("", "人工知能", encoding_rs::SHIFT_JIS);
        assert!(html_to_utf8(&sjis, Some("text/html; charset=Shift_JIS")).contains("人工知能"));
        // The HTTP charset beats the page's own claim; a BOM beats both.
        let mut bom = vec![0xef, 0xbb, 0xbf];
        bom.extend_from_slice("<meta charset=\"big5\"><p>中文</p>".as_bytes());
        assert!(html_to_utf8(&bom, Some("text/html; charset=gbk")).contains("中文"));
        assert!(html_to_utf8("<p>ü</p>".as_bytes(), None).contains('ü'));
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
