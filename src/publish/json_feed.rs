//! JSON Feed 1.1 of the same entries as the merged Atom feed.

use serde_json::{Value, json};

use super::atom::{FeedItem, content_html};
use crate::config::FeedConfig;
use crate::format::format_date;

/// The entry's own authors, else the source's author key.
fn authors(item: &FeedItem) -> Vec<Value> {
    if item.bylines.is_empty() {
        return vec![json!({"name": item.doc.author})];
    }
    item.bylines
        .iter()
        .map(|b| match &b.uri {
            Some(url) => json!({"name": b.name, "url": url}),
            None => json!({"name": b.name}),
        })
        .collect()
}

pub fn render(config: &FeedConfig, title: &str, feed_url: &str, items: &[FeedItem]) -> Vec<u8> {
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
                "authors": authors(item),
                "attachments": item.enclosures.iter().map(|e| {
                    let mut attachment = json!({
                        "url": e.url,
                        "mime_type": e.media_type.as_deref().unwrap_or("application/octet-stream"),
                    });
                    if let Some(length) = e.length {
                        attachment["size_in_bytes"] = json!(length);
                    }
                    attachment
                }).collect::<Vec<_>>(),
                "language": doc.translations.first().unwrap_or(&doc.original).language,
            })
        })
        .collect();
    let feed = json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "feed_url": feed_url,
        "authors": [{"name": config.author}],
        "items": items,
    });
    let mut out = serde_json::to_vec_pretty(&feed).unwrap_or_default();
    out.push(b'\n');
    out
}
