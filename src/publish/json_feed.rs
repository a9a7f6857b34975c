//! JSON Feed 1.1 of the same entries as the merged Atom feed.

use serde_json::{Value, json};

use super::archive::format_date;
use super::atom::{FeedItem, content_html};
use crate::config::FeedConfig;

pub fn render(config: &FeedConfig, feed_url: &str, items: &[FeedItem]) -> Vec<u8> {
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            let doc = &item.doc;
            json!({
                "id": item.atom_id,
                "url": doc.link,
                "title": doc.title(),
                "summary": doc.description,
                "content_html": content_html(doc),
                "date_published": format_date(&doc.date),
                "date_modified": format_date(&item.updated.max(doc.date)),
                "tags": doc.tags,
                "authors": [{"name": doc.author}],
                "language": doc.translations.first().unwrap_or(&doc.original).language,
            })
        })
        .collect();
    let feed = json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": config.title,
        "feed_url": feed_url,
        "authors": [{"name": config.author}],
        "items": items,
    });
    let mut out = serde_json::to_vec_pretty(&feed).unwrap_or_default();
    out.push(b'\n');
    out
}
