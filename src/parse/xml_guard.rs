//! Defences against hostile XML before the parser sees it.
//!
//! A document type declaration is where entity bombs (billion laughs) and external entities
//! (XXE, e.g. `SYSTEM "file:///etc/passwd"`) are defined. Feeds have no use for one, so it is
//! removed: references to its entities are then unknown and stay literal text. Nesting depth is
//! bounded so that a deep document cannot exhaust the parser's stack or memory.

use std::borrow::Cow;

/// Removes a `<!DOCTYPE ...>` (with its internal subset) from the document's prolog.
pub fn strip_doctype(doc: &[u8]) -> Cow<'_, [u8]> {
    let Some(start) = find(doc, b"<!DOCTYPE").or_else(|| find(doc, b"<!doctype")) else {
        return Cow::Borrowed(doc);
    };
    // Only the prolog may hold one; past the root element's start it is text or an error anyway.
    let root = doc
        .iter()
        .enumerate()
        .position(|(i, &b)| b == b'<' && doc.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic()));
    if root.is_some_and(|root| root < start) {
        return Cow::Borrowed(doc);
    }
    let mut depth = 0usize;
    let mut quote = None;
    let mut end = doc.len();
    for (i, &b) in doc.iter().enumerate().skip(start + 2) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'[') => depth += 1,
            (None, b']') => depth = depth.saturating_sub(1),
            (None, b'>') if depth == 0 => {
                end = i + 1;
                break;
            }
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(doc.len() - (end - start));
    out.extend_from_slice(&doc[..start]);
    out.extend_from_slice(&doc[end..]);
    Cow::Owned(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Fails when elements nest deeper than `max`.
pub fn check_depth(doc: &[u8], max: usize) -> Result<(), String> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < doc.len() {
        if doc[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &doc[i..];
        let skip_to = |terminator: &[u8]| {
            find(rest, terminator).map_or(doc.len(), |p| i + p + terminator.len())
        };
        i = if rest.starts_with(b"<!--") {
            skip_to(b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_to(b"]]>")
        } else if rest.starts_with(b"<?") {
            skip_to(b"?>")
        } else if rest.starts_with(b"<!") {
            skip_to(b">")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            skip_to(b">")
        } else {
            let end = tag_end(rest).map_or(doc.len(), |p| i + p);
            if end < doc.len() && doc[end - 1] != b'/' {
                depth += 1;
                if depth > max {
                    return Err(format!("elements are nested more than {max} deep"));
                }
            }
            end + 1
        };
    }
    Ok(())
}

/// The index of the `>` closing a start tag, skipping quoted attribute values.
fn tag_end(tag: &[u8]) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in tag.iter().enumerate() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctype_with_internal_subset_is_removed() {
        let doc = br#"<?xml version="1.0"?>
<!DOCTYPE rss [ <!ENTITY lol "lol"> <!ENTITY x SYSTEM "file:///etc/passwd"> ]>
<rss version="2.0"><channel><title>&lol;</title></channel></rss>"#;
        let out = strip_doctype(doc);
        let text = std::str::from_utf8(&out).expect("utf-8");
        assert!(
            !text.contains("DOCTYPE") && !text.contains("passwd"),
            "{text}"
        );
        assert!(text.contains("<title>&lol;</title>"));
        assert!(matches!(
            strip_doctype(b"<rss><channel/></rss>"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("{}{}", "<a>".repeat(300), "</a>".repeat(300));
        assert!(check_depth(deep.as_bytes(), 256).is_err());
        assert!(check_depth(deep.as_bytes(), 300).is_ok());
        let flat = format!(
            "<r>{}</r>",
            "<a x=\"1>2\"/><!-- <b> --><![CDATA[<c>]]>".repeat(1000)
        );
        assert!(check_depth(flat.as_bytes(), 2).is_ok());
    }
}
