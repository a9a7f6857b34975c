//! JSON strings written eight bytes at a time. serde_json escapes a string a byte at a time
//! through a table; the two JSON texts state keeps of every new article (the entry as fetched,
//! the sections) are mostly HTML and Markdown, and that loop was the largest single function of
//! a cold run after SHA-256. [`push_string`] writes exactly what serde_json writes for the same
//! string, so the texts read back the same either way.

/// Eight copies of a byte.
const fn splat(byte: u8) -> u64 {
    0x0101_0101_0101_0101 * byte as u64
}

const HIGH_BITS: u64 = splat(0x80);

/// Whether any of the eight bytes of `word` is below `limit` (at most 0x80): the classic
/// word-at-a-time test. It never misses one; it may flag more bytes than hold one, which only
/// sends the caller to look at them one by one.
const fn any_below(word: u64, limit: u8) -> bool {
    word.wrapping_sub(splat(limit)) & !word & HIGH_BITS != 0
}

/// Whether a JSON string must escape any of the eight bytes of `word`: a control character, a
/// quotation mark or a reverse solidus. Bytes of multi-byte characters never are.
const fn needs_escape(word: u64) -> bool {
    any_below(word, 0x20) || any_below(word ^ splat(b'"'), 1) || any_below(word ^ splat(b'\\'), 1)
}

/// What serde_json writes for `byte` inside a string, when it is escaped.
fn escape(byte: u8) -> Option<&'static [u8]> {
    const CONTROL: [&[u8]; 32] = [
        b"\\u0000", b"\\u0001", b"\\u0002", b"\\u0003", b"\\u0004", b"\\u0005", b"\\u0006",
        b"\\u0007", b"\\b", b"\\t", b"\\n", b"\\u000b", b"\\f", b"\\r", b"\\u000e", b"\\u000f",
        b"\\u0010", b"\\u0011", b"\\u0012", b"\\u0013", b"\\u0014", b"\\u0015", b"\\u0016",
        b"\\u0017", b"\\u0018", b"\\u0019", b"\\u001a", b"\\u001b", b"\\u001c", b"\\u001d",
        b"\\u001e", b"\\u001f",
    ];
    match byte {
        b'"' => Some(b"\\\""),
        b'\\' => Some(b"\\\\"),
        _ => CONTROL.get(usize::from(byte)).copied(),
    }
}

/// Appends `value` to `out` as a JSON string, quotation marks included.
pub fn push_string(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // The bytes from `plain` up to `at` need no escape and are not written yet.
    let mut plain = 0;
    let mut at = 0;
    while at < bytes.len() {
        if let Some(word) = bytes
            .get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            && !needs_escape(u64::from_le_bytes(word))
        {
            at += 8;
            continue;
        }
        if let Some(escaped) = bytes.get(at).copied().and_then(escape) {
            out.extend_from_slice(&bytes[plain..at]);
            out.extend_from_slice(escaped);
            plain = at + 1;
        }
        at += 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

/// Appends `,"name":`, the key of an object's member after its first. `name` is one of the
/// model's field names, which need no escape.
pub fn push_key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends a member after an object's first: its key ([`push_key`]) and `value` as serde_json
/// writes it ([`push_value`]).
pub fn push_member<T: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    name: &str,
    value: &T,
) -> Option<()> {
    push_key(out, name);
    push_value(out, value)
}

/// Appends `value` as serde_json writes it (for the small parts of a text written by hand);
/// `None` when its `Serialize` fails, which none of the model's do.
pub fn push_value<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Option<()> {
    serde_json::to_writer(&mut *out, value).ok()
}

/// A JSON text made by hand as a `String`: it holds only what [`push_string`] and
/// [`push_value`] wrote, which is UTF-8.
pub fn into_text(json: Vec<u8>) -> String {
    String::from_utf8(json).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(value: &str) -> String {
        let mut out = Vec::new();
        push_string(&mut out, value);
        into_text(out)
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for value in [
            "",
            "plain words, longer than eight bytes",
            "<p class=\"lead\">A \"quoted\" word</p>\n<p>C:\\path\\to</p>",
            "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f} \u{7f}",
            "文字 and émigré, 🙂 \"x\"",
            "1234567\"",
            "\"1234567",
        ] {
            assert_eq!(
                written(value),
                serde_json::to_string(value).expect("json"),
                "{value:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_is_written_as_serde_json_writes_it(value in "(?s).{0,80}") {
            proptest::prop_assert_eq!(written(&value), serde_json::to_string(&value).expect("json"));
        }

        #[test]
        fn markup_is_written_as_serde_json_writes_it(
            value in "([a-z <>=/\"\\\\\n\t\r]|\u{1}|é|文){0,120}"
        ) {
            proptest::prop_assert_eq!(written(&value), serde_json::to_string(&value).expect("json"));
        }
    }
}
