//! Links as identities: the same article's link written in different ways (case, default
//! port, tracking parameters, a fragment) is one link.

use url::Url;

/// Query parameters that track clicks, not content.
fn is_tracking(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_")
        || matches!(
            name.as_str(),
            "fbclid"
                | "gclid"
                | "dclid"
                | "msclkid"
                | "mc_cid"
                | "mc_eid"
                | "igshid"
                | "yclid"
                | "_hsenc"
                | "_hsmi"
                | "mkt_tok"
                | "ref_src"
        )
}

/// The link that identifies an article across sources: lower-case scheme and host, no
/// fragment, no tracking parameters, no default port.
pub fn canonical_link(link: &str) -> String {
    let Ok(mut url) = Url::parse(link.trim()) else {
        return link.trim().to_owned();
    };
    url.set_fragment(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !is_tracking(name))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    // `Url` already lower-cases the scheme and host and drops default ports.
    url.to_string()
}

/// [`canonical_link`], also without a trailing slash on the path: what identifies an entry of a
/// source whose `identity` is `link`.
pub fn identity_link(link: &str) -> String {
    let canonical = canonical_link(link);
    let Ok(mut url) = Url::parse(&canonical) else {
        return canonical;
    };
    let path = url.path().to_owned();
    if path.len() > 1 && path.ends_with('/') {
        url.set_path(path.trim_end_matches('/'));
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_link_however_written() {
        let plain = identity_link("https://example.org/news/story-1");
        for written in [
            "HTTPS://Example.ORG:443/news/story-1/",
            "https://example.org/news/story-1?utm_source=rss&utm_medium=feed",
            "https://example.org/news/story-1#comments",
            "https://example.org/news/story-1/?fbclid=abc",
        ] {
            assert_eq!(identity_link(written), plain, "{written}");
        }
        assert_ne!(
            identity_link("https://example.org/news/story-1?id=2"),
            plain
        );
        assert_eq!(
            identity_link("https://example.org/"),
            "https://example.org/"
        );
    }
}
