//! Bylines as each format writes them.

use super::xml::{Element, Ns};
use crate::model::Byline;

/// RSS `<author>`: an email address, by the spec, usually with the name beside it
/// (`jo@example.org (Jo Doe)`, `Jo Doe <jo@example.org>`), often only a name.
pub(super) fn from_rss_author(element: &Element) -> Option<Byline> {
    parse_contact(&element.text_trimmed()?)
}

/// `dc:creator`, `itunes:author`: a name, sometimes written like an RSS author.
pub(super) fn from_name(element: &Element) -> Option<Byline> {
    parse_contact(&element.text_trimmed()?)
}

/// Atom `<author>` (and Atom 0.3's, which says `url` for `uri`).
pub(super) fn from_atom(element: &Element) -> Option<Byline> {
    const ATOM: &[Ns] = &[Ns::None, Ns::Atom, Ns::Atom03];
    let field = |name: &str| {
        element
            .child(ATOM, name)
            .and_then(Element::text_trimmed)
            .map(|t| crate::text::collapse_whitespace(&t))
    };
    let name = field("name");
    let email = field("email");
    let uri = field("uri")
        .or_else(|| field("url"))
        .map(|u| element.resolve(&u));
    match (name, email, uri) {
        (None, None, None) => {
            // `<author>Jo Doe</author>`, as some feeds write it.
            if element.has_element_children() {
                None
            } else {
                parse_contact(&element.text_trimmed()?)
            }
        }
        (name, email, uri) => Some(Byline {
            name: name.or_else(|| email.clone()).unwrap_or_default(),
            email,
            uri,
        }),
    }
}

/// A name and email address written in one string; the name alone when there is no address.
pub(super) fn parse_contact(text: &str) -> Option<Byline> {
    let text = crate::text::collapse_whitespace(text);
    if text.is_empty() {
        return None;
    }
    // `jo@example.org (Jo Doe)`, or `Jo Doe (mailto:jo@example.org)`
    if let Some((before, after)) = text.split_once('(')
        && let Some(inside) = after.strip_suffix(')')
    {
        let (before, inside) = (before.trim(), inside.trim());
        let unmailto = |s: &'_ str| s.trim_start_matches("mailto:").to_owned();
        if is_email(&unmailto(before)) && !inside.is_empty() {
            return Some(byline(inside, Some(&unmailto(before))));
        }
        if is_email(&unmailto(inside)) && !before.is_empty() {
            return Some(byline(before, Some(&unmailto(inside))));
        }
    }
    // `Jo Doe <jo@example.org>`
    if let Some((before, after)) = text.split_once('<')
        && let Some(email) = after.strip_suffix('>')
    {
        let email = email.trim().trim_start_matches("mailto:");
        let name = before.trim().trim_matches('"').trim();
        if is_email(email) {
            return Some(byline(
                if name.is_empty() { email } else { name },
                Some(email),
            ));
        }
    }
    let bare = text.trim_start_matches("mailto:");
    if is_email(bare) {
        return Some(byline(bare, Some(bare)));
    }
    Some(byline(&text, None))
}

fn byline(name: &str, email: Option<&str>) -> Byline {
    Byline {
        name: name.to_owned(),
        email: email.map(str::to_owned),
        uri: None,
    }
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !text.contains(char::is_whitespace)
        && !domain.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_in_the_forms_feeds_write() {
        let read = |t: &str| parse_contact(t).expect("byline");
        let jo = read("jo@example.org (Jo Doe)");
        assert_eq!(
            (jo.name.as_str(), jo.email.as_deref()),
            ("Jo Doe", Some("jo@example.org"))
        );
        let jo = read("Jo Doe <jo@example.org>");
        assert_eq!(
            (jo.name.as_str(), jo.email.as_deref()),
            ("Jo Doe", Some("jo@example.org"))
        );
        let bare = read("jo@example.org");
        assert_eq!(bare.email.as_deref(), Some("jo@example.org"));
        let mailto = read("Simon St.Laurent (mailto:simonstl@example.com)");
        assert_eq!(
            (mailto.name.as_str(), mailto.email.as_deref()),
            ("Simon St.Laurent", Some("simonstl@example.com"))
        );
        let name = read("  Jo   (the editor) ");
        assert_eq!((name.name.as_str(), name.email), ("Jo (the editor)", None));
        assert_eq!(parse_contact("  "), None);
    }
}
