//! Response bytes to the feed-rs model (RSS 0.9x/1.0/2.0, Atom, JSON Feed).

use feed_rs::model::Feed;
use url::Url;

/// Parses a feed document from its raw bytes.
///
/// feed-rs invents ids for entries that have none (some random, so they change on every parse);
/// here a missing id stays empty, so normalization can fall back to the link or a content hash
/// that is stable across runs.
pub fn parse_feed(body: &[u8], base: Option<&Url>) -> Result<Feed, String> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(base.map(Url::as_str))
        .sanitize_content(false)
        .id_generator(|_links, _title, _uri| String::new())
        .build();
    parser.parse(body).map_err(|e| match e {
        feed_rs::parser::ParseFeedError::ParseError(kind) => format!("not a feed: {kind}"),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ids_stay_empty_and_garbage_is_an_error() {
        let rss = br#"<rss version="2.0"><channel><title>t</title>
            <item><title>a</title><link>https://example.org/a</link></item></channel></rss>"#;
        let feed = parse_feed(rss, None).expect("valid RSS");
        assert_eq!(feed.id, "");
        assert_eq!(feed.entries[0].id, "");
        let err = parse_feed(b"<html><body>not a feed</body></html>", None).expect_err("html");
        assert!(err.contains("not a feed"), "{err}");
        assert!(parse_feed(b"<rss version=\"2.0\"><channel><item>", None).is_err());
    }
}
