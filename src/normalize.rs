//! A parsed feed entry becomes an [`Article`].
//!
//! Normalizing is split in two so an unchanged entry costs almost nothing: [`EntryIdentity`]
//! (key and content hash, from the raw fields) is computed for every entry, and the full
//! conversion (HTML to Markdown and the rest) only for entries whose hash is new.

use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::{Identity, Rewrites, Source};
use crate::model::{Article, Byline, Document, Enclosure, FeedMeta, Section};
use crate::parse::{Entry, Feed, Link, Text};
use crate::text;

/// Bumped when normalization changes output, so stored hashes no longer match and files are
/// re-rendered once.
const NORMALIZE_VERSION: &str = "gazette-normalize-2";

/// Characters of the description a title-less entry takes as its title: the description rule,
/// shorter.
const FALLBACK_TITLE_CHARS: usize = 80;

/// What the feed as a whole contributes to its entries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FeedContext {
    /// The URL the feed was fetched from, after redirects.
    pub fetch_url: Option<Url>,
    /// The feed's own link to its site (RSS `link`, Atom `link rel=alternate`).
    pub site_url: Option<Url>,
    pub language: Option<String>,
    /// RSS "plain text" fields often carry escaped HTML; other formats say what they mean.
    pub markup_in_plain_text: bool,
}

impl FeedContext {
    /// What a relative reference in an entry resolves against, in order: `xml:base`, the
    /// document's URL (RFC 3986, and what keys of archived entries were made with), then the
    /// feed's site for a document read without a URL.
    fn bases<'a>(&'a self, entry: &'a Entry) -> [Option<&'a Url>; 3] {
        [
            entry.base.as_ref(),
            self.fetch_url.as_ref(),
            self.site_url.as_ref(),
        ]
    }

    pub fn new(feed: &Feed, fetch_url: Option<&Url>) -> Self {
        let site_url = pick_link(&feed.links).and_then(|l| resolve(&l.href, &[None, fetch_url]));
        Self {
            fetch_url: fetch_url.cloned(),
            site_url,
            markup_in_plain_text: feed.format.is_rss(),
            language: feed
                .language
                .as_ref()
                .map(|l| l.trim().to_lowercase())
                .filter(|l| !l.is_empty()),
        }
    }
}

/// An entry as fetched, before any rewrite, and what its feed gave it: what state keeps so the
/// article can be normalized again under other settings without fetching it.
#[derive(Debug, serde::Serialize)]
pub struct FetchedEntryRef<'a> {
    pub entry: &'a Entry,
    pub ctx: &'a FeedContext,
}

/// [`FetchedEntryRef`] read back.
#[derive(Debug, serde::Deserialize)]
pub struct FetchedEntry {
    pub entry: Entry,
    pub ctx: FeedContext,
}

impl FetchedEntryRef<'_> {
    /// The entry as serde_json writes it, the texts escaped by [`text::json::push_string`]:
    /// serde_json's own escaping of their HTML was most of this. `None` when a part fails to
    /// serialize, as with serde_json's `to_string` (none of the model's parts do).
    pub fn to_json(&self) -> Option<String> {
        use text::json::{push_key, push_member, push_string, push_value};
        // Every field, so that one added to `Entry` is not left out here.
        let Entry {
            position,
            id,
            title,
            summary,
            content,
            links,
            categories,
            published,
            updated,
            key_date,
            base,
            language,
            authors,
            enclosures,
        } = self.entry;
        let texts: usize = [title, summary, content]
            .into_iter()
            .flatten()
            .map(|text| text.value.len())
            .sum();
        let mut out = Vec::with_capacity(texts + texts / 8 + 1024);
        out.extend_from_slice(b"{\"entry\":{\"position\":");
        push_value(&mut out, position)?;
        push_key(&mut out, "id");
        push_string(&mut out, id);
        for (name, text) in [("title", title), ("summary", summary), ("content", content)] {
            push_key(&mut out, name);
            match text {
                Some(Text { kind, value, base }) => {
                    out.extend_from_slice(b"{\"kind\":");
                    push_value(&mut out, kind)?;
                    push_key(&mut out, "value");
                    push_string(&mut out, value);
                    push_member(&mut out, "base", base)?;
                    out.push(b'}');
                }
                None => out.extend_from_slice(b"null"),
            }
        }
        push_member(&mut out, "links", links)?;
        push_member(&mut out, "categories", categories)?;
        push_member(&mut out, "published", published)?;
        push_member(&mut out, "updated", updated)?;
        push_member(&mut out, "key_date", key_date)?;
        push_member(&mut out, "base", base)?;
        push_member(&mut out, "language", language)?;
        push_member(&mut out, "authors", authors)?;
        push_member(&mut out, "enclosures", enclosures)?;
        out.push(b'}');
        push_member(&mut out, "ctx", self.ctx)?;
        out.push(b'}');
        Some(text::json::into_text(out))
    }
}

impl FetchedEntry {
    pub fn from_json(json: &str) -> Option<Self> {
        serde_json::from_str(json).ok()
    }
}

/// The link an archive file shows for an entry (rewrites applied), by which a record rebuilt
/// from the archive is recognised.
pub fn archived_link(entry: &Entry, source: &Source, ctx: &FeedContext) -> String {
    entry_link(entry, ctx)
        .map(|l| Rewrites::apply(&source.rewrites.links, l.as_str()))
        .unwrap_or_default()
}

/// The entry's own title as the archive shows it (rewrites applied); empty when it has none.
fn entry_title(entry: &Entry, source: &Source, ctx: &FeedContext) -> String {
    entry
        .title
        .as_ref()
        .map(|t| {
            text::collapse_whitespace(&Rewrites::apply(
                &source.rewrites.title,
                &plain_text(t, ctx),
            ))
        })
        .unwrap_or_default()
}

/// The description the entry's summary gives, if it has one.
fn summary_description(entry: &Entry, ctx: &FeedContext) -> Option<String> {
    entry
        .summary
        .as_ref()
        .map(|s| text::truncate_at_word(&plain_text(s, ctx), text::DESCRIPTION_MAX_CHARS))
        .filter(|d| !d.is_empty())
}

/// The title an archive file shows for an entry, when it can be told without converting the
/// body (a link-less entry's rebuilt record is recognised by it).
pub fn archived_title(entry: &Entry, source: &Source, ctx: &FeedContext) -> Option<String> {
    let title = entry_title(entry, source, ctx);
    if !title.is_empty() {
        return Some(title);
    }
    let description = summary_description(entry, ctx)?;
    Some(text::truncate_at_word(&description, FALLBACK_TITLE_CHARS)).filter(|t| !t.is_empty())
}

/// The merged feed's id of an entry: its own id when that is an absolute IRI, else a name-based
/// UUID of the source and key.
pub fn atom_id(source: &str, key: &str, entry_id: &str) -> String {
    let entry_id = entry_id.trim();
    if !entry_id.is_empty() && is_absolute_iri(entry_id) {
        entry_id.to_owned()
    } else {
        uuid_urn(&format!("{source}\n{key}"))
    }
}

/// The source feed's metadata for `atom:source`: its id when that is an absolute IRI, else the
/// URL it was fetched from, else a name-based UUID of the source id.
pub fn feed_meta(feed: &Feed, source: &Source, ctx: &FeedContext) -> FeedMeta {
    let id = if is_absolute_iri(&feed.id) {
        feed.id.clone()
    } else {
        match (&source.location, &ctx.fetch_url) {
            (crate::config::Location::Http(_), Some(url)) => url.to_string(),
            _ => uuid_urn(&format!("source\n{}", source.id)),
        }
    };
    let title = feed
        .title
        .as_ref()
        .map(|t| plain_text(t, ctx))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| source.id.clone());
    FeedMeta {
        id,
        title,
        link: ctx.site_url.as_ref().map(Url::to_string),
    }
}

/// Everything in a source's configuration that shapes its archive files; part of every hash,
/// so a configuration change re-renders what it affects.
pub fn source_fingerprint(source: &Source) -> String {
    format!(
        "{NORMALIZE_VERSION}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
        source.author,
        source.tags.join("\u{1e}"),
        source.language.as_deref().unwrap_or_default(),
        source.category_tags,
        source
            .extract
            .as_ref()
            .map(|e| e.written.as_str())
            .unwrap_or_default(),
        source.rewrites.written(),
    )
}

/// An entry's identity: computed from raw fields for every entry on every run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryIdentity {
    pub key: String,
    pub content_hash: String,
}

/// Why an entry is not archived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("{entry} has no title, no link and no text")]
    Empty { entry: String },
}

/// The entry's key and content hash, or why it is skipped.
pub fn identify(entry: &Entry, source: &Source, ctx: &FeedContext) -> Result<EntryIdentity, Skip> {
    fn text_of(t: &Option<Text>) -> &str {
        t.as_ref().map_or("", |t| t.value.as_str())
    }
    let title = text_of(&entry.title);
    let link = entry_link(entry, ctx);
    // Text a title can be made from; markup alone (an image) is none. Asked only of entries
    // with neither title nor link, which are rare, as it parses the HTML.
    let has_text = || {
        [&entry.summary, &entry.content]
            .into_iter()
            .flatten()
            .any(|t| {
                if t.is_html() {
                    !text::html_to_text(&t.value).is_empty()
                } else {
                    !t.is_blank()
                }
            })
    };
    if title.trim().is_empty() && link.is_none() && !has_text() {
        return Err(Skip::Empty {
            entry: entry.label(),
        });
    }
    let guid = Some(entry.id.trim()).filter(|id| !id.is_empty());
    let text = || {
        [&entry.summary, &entry.content]
            .into_iter()
            .flatten()
            .map(|t| t.value.as_str())
            .collect::<Vec<_>>()
            .join("\u{1f}")
    };
    // Known by neither guid nor link: the title and date, and the text when there is no
    // title to tell it apart.
    let by_hash = || {
        let date = entry.key_date.map(|d| d.to_rfc3339()).unwrap_or_default();
        if title.trim().is_empty() {
            format!("sha256:{}", hash_fields(&[title, &date, &text()]))
        } else {
            format!("sha256:{}", hash_fields(&[title, &date]))
        }
    };
    let key = match source.identity {
        Identity::Auto => match (guid, &link) {
            (Some(guid), _) => guid.to_owned(),
            (None, Some(link)) => link.to_string(),
            (None, None) => by_hash(),
        },
        Identity::Guid => guid.map_or_else(by_hash, str::to_owned),
        Identity::Link => match (&link, guid) {
            (Some(link), _) => format!("link:{}", text::links::identity_link(link.as_str())),
            (None, Some(guid)) => guid.to_owned(),
            (None, None) => by_hash(),
        },
        // The words, not where they are: the title and the text as written, whitespace
        // folded.
        Identity::Content => {
            let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
            format!("content:{}", hash_fields(&[&words(title), &words(&text())]))
        }
    };

    let content = entry.content.as_ref();
    let categories: Vec<&str> = entry.categories.iter().map(String::as_str).collect();
    let bylines: Vec<String> = entry
        .authors
        .iter()
        .map(|b| format!("{}\u{1e}{:?}\u{1e}{:?}", b.name, b.email, b.uri))
        .collect();
    let enclosures: Vec<String> = entry
        .enclosures
        .iter()
        .map(|e| format!("{}\u{1e}{:?}\u{1e}{:?}", e.url, e.media_type, e.length))
        .collect();
    let published = entry.published.map(|d| d.to_rfc3339()).unwrap_or_default();
    let updated = entry.updated.map(|d| d.to_rfc3339()).unwrap_or_default();
    let content_hash = hash_fields(&[
        NORMALIZE_VERSION,
        &source.author,
        &source.tags.join("\u{1f}"),
        source.language.as_deref().unwrap_or_default(),
        if source.category_tags {
            "categories"
        } else {
            ""
        },
        ctx.language.as_deref().unwrap_or_default(),
        &key,
        text_of(&entry.title),
        link.as_ref().map(Url::as_str).unwrap_or_default(),
        &published,
        &updated,
        text_of(&entry.summary),
        content.map(|c| c.value.as_str()).unwrap_or_default(),
        content.map_or("", |c| if c.is_html() { "html" } else { "text" }),
        &categories.join("\u{1f}"),
        entry.base.as_ref().map(Url::as_str).unwrap_or_default(),
        &bylines.join("\u{1f}"),
        &enclosures.join("\u{1f}"),
    ]);
    Ok(EntryIdentity { key, content_hash })
}

/// The full article. `first_seen` is the date of entries that carry none.
/// `full_text` is the article's own page's text, when the source extracts it; it replaces the
/// feed's content, and its relative links resolve against the article's page.
pub fn normalize(
    entry: &Entry,
    identity: EntryIdentity,
    source: &Source,
    ctx: &FeedContext,
    first_seen: DateTime<Utc>,
    full_text: Option<&str>,
) -> Article {
    let link = entry_link(entry, ctx);
    // Relative references in content resolve against xml:base when the feed gives one (Atom),
    // else against the article's own page, which is what RSS publishers mean.
    let body_base = |text: &Text| {
        text.base
            .clone()
            .or_else(|| entry.base.clone())
            .or_else(|| link.clone())
            .or_else(|| ctx.site_url.clone())
            .or_else(|| ctx.fetch_url.clone())
    };

    let body = match (&entry.content, &entry.summary) {
        _ if full_text.is_some() => {
            let page_base = link
                .clone()
                .or_else(|| entry.base.clone())
                .or_else(|| ctx.site_url.clone())
                .or_else(|| ctx.fetch_url.clone());
            text::html_to_markdown(full_text.unwrap_or_default(), page_base.as_ref())
        }
        (Some(content), _) if !content.is_blank() => {
            if content.is_html() {
                text::html_to_markdown(&content.value, body_base(content).as_ref())
            } else {
                text::text_to_markdown(&content.value)
            }
        }
        (_, Some(summary)) if summary.is_html() => {
            text::html_to_markdown(&summary.value, body_base(summary).as_ref())
        }
        (_, Some(summary)) => text::text_to_markdown(&summary.value),
        _ => String::new(),
    };

    let description =
        summary_description(entry, ctx).unwrap_or_else(|| text::description_from_markdown(&body));

    let mut title = entry_title(entry, source, ctx);
    if title.is_empty() {
        title = text::truncate_at_word(&description, FALLBACK_TITLE_CHARS);
    }
    if title.is_empty() {
        title = text::truncate_at_word(
            &text::html_to_text(&text::markdown_to_html(&body)),
            FALLBACK_TITLE_CHARS,
        );
    }
    let link_text = link
        .as_ref()
        .map(|l| Rewrites::apply(&source.rewrites.links, l.as_str()))
        .unwrap_or_default();
    if title.is_empty() {
        title = link_text.clone();
    }

    let language = source
        .language
        .clone()
        .or_else(|| {
            entry
                .language
                .as_ref()
                .map(|l| l.trim().to_lowercase())
                .filter(|l| !l.is_empty())
        })
        .or_else(|| ctx.language.clone())
        .unwrap_or_else(|| "en".to_owned());

    let categories = entry.categories.iter().map(String::as_str);
    let tags = normalize_tags(
        source
            .tags
            .iter()
            .map(String::as_str)
            .chain(categories.filter(|_| source.category_tags)),
    );

    let atom_id = atom_id(&source.id, &identity.key, &entry.id);

    Article {
        source: source.id.clone(),
        key: identity.key,
        atom_id,
        guid: Some(entry.id.trim().to_owned()).filter(|id| !id.is_empty()),
        content_hash: identity.content_hash,
        bylines: bylines(entry, ctx),
        enclosures: enclosures(entry, ctx),
        doc: Document {
            link: link_text,
            date: entry.date().unwrap_or(first_seen).trunc_subsecs(3),
            description,
            tags,
            author: source.author.clone(),
            translations: Vec::new(),
            original: Section {
                language,
                title,
                body,
            },
        },
    }
}

/// Trimmed, lowercased, whitespace collapsed, de-duplicated in first-seen order.
pub fn normalize_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let tag = text::collapse_whitespace(&tag.to_lowercase());
        if !tag.is_empty() && !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
}

/// The entry's page: its alternate link, made absolute against xml:base, else the document's
/// URL, else the feed's site link.
pub fn entry_link(entry: &Entry, ctx: &FeedContext) -> Option<Url> {
    let link = pick_link(&entry.links)?;
    resolve(&link.href, &ctx.bases(entry))
}

/// Bylines and enclosures kept per article: more is a feed gone wrong (or hostile), and every
/// one of them is written into every feed the article appears in.
const MAX_PER_ENTRY: usize = 32;

/// Bylines with entities decoded, empty and repeated ones left out, links made absolute.
fn bylines(entry: &Entry, ctx: &FeedContext) -> Vec<Byline> {
    let bases = ctx.bases(entry);
    let mut out: Vec<Byline> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for author in entry.authors.iter().take(MAX_PER_ENTRY) {
        let name = text::decode_entities(&author.name);
        if name.is_empty() || !seen.insert((name.clone(), author.email.clone())) {
            continue;
        }
        out.push(Byline {
            name,
            // Atom (and readers) want an address with an `@`; anything else is no address.
            email: author
                .email
                .clone()
                .filter(|e| e.contains('@') && !e.starts_with('@')),
            uri: author
                .uri
                .as_deref()
                .and_then(|u| resolve(u, &bases))
                .map(String::from),
        });
    }
    out
}

/// Enclosures with absolute web URLs, each once.
fn enclosures(entry: &Entry, ctx: &FeedContext) -> Vec<Enclosure> {
    let mut out: Vec<Enclosure> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for enclosure in entry.enclosures.iter().take(MAX_PER_ENTRY) {
        let Some(url) = resolve(&enclosure.url, &ctx.bases(entry)) else {
            continue;
        };
        if seen.insert(url.to_string()) {
            out.push(Enclosure {
                url: url.into(),
                // A media type is `type/subtype`; anything else says nothing.
                media_type: enclosure.media_type.clone().filter(|t| {
                    t.split_once('/')
                        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
                }),
                length: enclosure.length,
            });
        }
    }
    out
}

/// The plain text of a feed text construct. Atom and JSON Feed plain text is taken as written;
/// RSS "plain text" is decoded as HTML when it carries tags, else only its entities are.
fn plain_text(text: &Text, ctx: &FeedContext) -> String {
    if text.is_html() || (ctx.markup_in_plain_text && text::looks_like_markup(&text.value)) {
        text::html_to_text(&text.value)
    } else if ctx.markup_in_plain_text {
        text::decode_entities(&text.value)
    } else {
        text::collapse_whitespace(&text.value)
    }
}

/// The link to the article page: `alternate`, else one without a relation (which Atom reads
/// as `alternate`); never `related`, `via`, comments, the feed itself, an edit URI or an
/// enclosure.
fn pick_link(links: &[Link]) -> Option<&Link> {
    let candidates = || {
        links.iter().filter(|l| {
            matches!(l.rel.as_deref(), None | Some("alternate")) && !l.href.trim().is_empty()
        })
    };
    // A page beats a video or PDF alternate; an explicit `alternate` beats an implied one.
    let is_page = |l: &&Link| l.media_type.as_deref().is_none_or(|t| t.contains("html"));
    let explicit = |l: &&Link| l.rel.is_some();
    candidates()
        .find(|l| is_page(l) && explicit(l))
        .or_else(|| candidates().find(is_page))
        .or_else(|| candidates().find(explicit))
        .or_else(|| candidates().next())
}

/// The absolute http(s) URL `href` names; other schemes (`javascript:`, `data:`, `file:`) are
/// never an article's link.
fn resolve(href: &str, bases: &[Option<&Url>]) -> Option<Url> {
    let href = href.trim();
    let url = match Url::parse(href) {
        Ok(url) => Some(url),
        Err(_) => bases.iter().flatten().find_map(|base| base.join(href).ok()),
    }?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// An absolute IRI that can stand in an Atom id as it is: parseable, and free of characters
/// RFC 3987 does not allow (controls, spaces, `"<>\^`{|}`).
fn is_absolute_iri(id: &str) -> bool {
    !id.is_empty()
        && !id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "\"<>\\^`{|}".contains(c))
        && Url::parse(id).is_ok()
}

fn uuid_urn(name: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
        .urn()
        .to_string()
}

fn hash_fields(fields: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;
    use crate::config::Source;
    use crate::parse::parse_feed;

    fn source() -> Source {
        Source {
            tags: vec![" World ".to_owned()],
            ..Source::adhoc(
                "ex",
                Location::Http(Url::parse("https://example.org/feed.xml").expect("url")),
            )
        }
    }

    fn articles(xml: &str) -> Vec<Result<Article, Skip>> {
        let base = Url::parse("https://example.org/feed.xml").expect("url");
        let feed = parse_feed(xml.as_bytes(), None, Some(&base), &Default::default())
            .expect("feed")
            .feed;
        let ctx = FeedContext::new(&feed, Some(&base));
        let seen = DateTime::<Utc>::UNIX_EPOCH;
        feed.entries
            .iter()
            .map(|e| {
                identify(e, &source(), &ctx).map(|id| normalize(e, id, &source(), &ctx, seen, None))
            })
            .collect()
    }

    #[test]
    fn rss_item_fields() {
        let out = articles(
            r#"<rss version="2.0"><channel><title>T</title><link>https://example.org/</link><language>de-DE</language>
            <item><title>Rust &amp;amp; &lt;b&gt;Wasm&lt;/b&gt;</title><link>/a</link>
              <category>World</category><category>Tech</category>
              <description>&lt;p&gt;Short &amp;amp; sweet&lt;/p&gt;</description>
              <pubDate>Mon, 13 May 2024 10:00:53 +0100</pubDate></item>
            <item><description>No title here, only words to borrow</description><guid>g1</guid><link>https://example.org/b</link></item>
            </channel></rss>"#,
        );
        let a = out[0].as_ref().expect("first");
        assert_eq!(a.doc.original.title, "Rust & Wasm");
        assert_eq!(a.doc.link, "https://example.org/a");
        assert_eq!(a.key, "https://example.org/a");
        assert_eq!(a.doc.tags, vec!["world", "tech"]);
        assert_eq!(a.doc.description, "Short & sweet");
        assert_eq!(a.doc.original.language, "de-de");
        assert_eq!(a.doc.date.to_rfc3339(), "2024-05-13T09:00:53+00:00");
        assert!(a.atom_id.starts_with("urn:uuid:"), "{}", a.atom_id);
        let b = out[1].as_ref().expect("borrowed title");
        assert_eq!(b.doc.original.title, "No title here, only words to borrow");
        assert_eq!(b.doc.date, DateTime::<Utc>::UNIX_EPOCH);
    }

    #[test]
    fn only_empty_entries_are_skipped_and_keys_are_stable() {
        let xml = r#"<rss version="2.0"><channel><title>T</title>
            <item><description>An orphan paragraph that says what happened, and then some more words than a title holds</description></item>
            <item><title>Only a title</title></item>
            <item><guid isPermaLink="false">x</guid><category>c</category></item>
            <item><description>Another orphan</description></item></channel></rss>"#;
        let out = articles(xml);
        let orphan = out[0].as_ref().expect("description only");
        assert_eq!(
            orphan.doc.original.title,
            "An orphan paragraph that says what happened, and then some more words than a…"
        );
        assert!(orphan.key.starts_with("sha256:"));
        let key = out[1].as_ref().expect("title only").key.clone();
        assert!(key.starts_with("sha256:"));
        assert_eq!(articles(xml)[1].as_ref().expect("again").key, key);
        assert_eq!(
            out[2],
            Err(Skip::Empty {
                entry: "entry \"x\"".to_owned()
            })
        );
        assert_ne!(out[3].as_ref().expect("another").key, orphan.key);
    }

    #[test]
    fn atom_ids_that_are_iris_are_kept() {
        let out = articles(
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:x</id><updated>2024-01-01T00:00:00Z</updated>
            <entry><id>tag:example.org,2024:1</id><title>A</title><updated>2024-01-01T00:00:00Z</updated></entry></feed>"#,
        );
        assert_eq!(
            out[0].as_ref().expect("a").atom_id,
            "tag:example.org,2024:1"
        );
    }

    #[test]
    fn plain_text_is_taken_as_written_outside_rss() {
        let atom = articles(
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:x</id><updated>2024-01-01T00:00:00Z</updated>
            <entry><id>urn:e</id><title type="text">Why &lt;div&gt; soup &amp;amp; you</title><updated>2024-01-01T00:00:00Z</updated>
            <summary type="text">Use &lt;main&gt; not &lt;div&gt;</summary></entry></feed>"#,
        );
        let a = atom[0].as_ref().expect("atom entry");
        assert_eq!(a.doc.original.title, "Why <div> soup &amp; you");
        assert_eq!(a.doc.description, "Use <main> not <div>");
        let rss = articles(
            r#"<rss version="2.0"><channel><title>T</title>
            <item><guid>g</guid><title>Why Vec&lt;T&gt; beats LinkedList&lt;T&gt; &amp;amp; more</title></item></channel></rss>"#,
        );
        assert_eq!(
            rss[0].as_ref().expect("rss").doc.original.title,
            "Why Vec<T> beats LinkedList<T> & more"
        );
    }

    #[test]
    fn only_web_links_are_article_links() {
        let out = articles(
            r#"<rss version="2.0"><channel><title>T</title>
            <item><guid>g</guid><title>A</title><link>javascript:alert(document.domain)</link></item></channel></rss>"#,
        );
        assert_eq!(out[0].as_ref().expect("a").doc.link, "");
    }

    #[test]
    fn comment_links_are_not_the_article_link() {
        let out = articles(
            r#"<rss version="2.0" xmlns:wfw="http://wellformedweb.org/CommentAPI/"><channel><title>T</title>
            <item><guid>g</guid><title>A</title><comments>https://example.org/1#comments</comments>
            <wfw:commentRss>https://example.org/1/feed</wfw:commentRss><link>https://example.org/1</link></item></channel></rss>"#,
        );
        assert_eq!(
            out[0].as_ref().expect("a").doc.link,
            "https://example.org/1"
        );
    }

    #[test]
    fn ids_that_are_not_clean_iris_get_a_uuid() {
        let out = articles(
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:x</id><updated>2024-01-01T00:00:00Z</updated>
            <entry><id>http://example.org/a|b{c}</id><title>A</title><updated>2024-01-01T00:00:00Z</updated></entry></feed>"#,
        );
        assert!(out[0].as_ref().expect("a").atom_id.starts_with("urn:uuid:"));
    }

    #[test]
    fn relative_xml_base_resolves_against_the_document() {
        let out = articles(
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:x</id><updated>2024-01-01T00:00:00Z</updated>
            <entry xml:base="blog/"><id>urn:e</id><title>A</title><updated>2024-01-01T00:00:00Z</updated>
            <link href="posts/1.html"/><content type="html" xml:base="/media/">&lt;img src="img.png" alt="i"&gt;</content></entry></feed>"#,
        );
        let a = out[0].as_ref().expect("a");
        assert_eq!(a.doc.link, "https://example.org/blog/posts/1.html");
        assert_eq!(
            a.doc.original.body,
            "![i](https://example.org/media/img.png)"
        );
    }

    #[test]
    fn hash_changes_with_content_only() {
        let xml = |body: &str| {
            format!(
                r#"<rss version="2.0"><channel><title>T</title><item><guid>g</guid><title>A</title><description>{body}</description></item></channel></rss>"#
            )
        };
        let hash = |x: &str| articles(x)[0].as_ref().expect("a").content_hash.clone();
        assert_eq!(hash(&xml("one")), hash(&xml("one")));
        assert_ne!(hash(&xml("one")), hash(&xml("two")));
    }

    /// The hand-written JSON of a fetched entry is serde_json's, byte for byte, over every
    /// field (the derived `Serialize` is the reference), and reads back to the same entry.
    mod fetched_entry_json {
        use super::*;
        use crate::parse::TextKind;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = Option<Text>> {
            proptest::option::of((
                any::<bool>(),
                "(?s).{0,40}",
                proptest::option::of(Just(Url::parse("https://example.org/a/").expect("url"))),
            ))
            .prop_map(|t| {
                t.map(|(html, value, base)| Text {
                    kind: if html {
                        TextKind::Html
                    } else {
                        TextKind::Plain
                    },
                    value,
                    base,
                })
            })
        }

        fn date() -> impl Strategy<Value = Option<DateTime<Utc>>> {
            proptest::option::of((0i64..4_000_000_000, 0u32..1_000_000_000))
                .prop_map(|d| d.and_then(|(s, n)| DateTime::from_timestamp(s, n)))
        }

        prop_compose! {
            fn entry()(
                position in 0usize..100_000,
                id in "(?s).{0,20}",
                (title, summary, content) in (text(), text(), text()),
                links in proptest::collection::vec(
                    ("[a-z:/.\"]{0,12}", proptest::option::of("[a-z]{0,8}"),
                     proptest::option::of("[a-z/]{0,8}"), proptest::option::of(any::<u64>())),
                    0..3,
                ),
                categories in proptest::collection::vec("(?s).{0,10}", 0..3),
                (published, updated, key_date) in (date(), date(), date()),
                base in proptest::option::of(Just(Url::parse("https://example.org/").expect("url"))),
                language in proptest::option::of("[a-z-]{0,5}"),
                authors in proptest::collection::vec(
                    ("(?s).{0,10}", proptest::option::of("[a-z@.]{0,8}"),
                     proptest::option::of("[a-z:/.]{0,8}")),
                    0..2,
                ),
                enclosures in proptest::collection::vec(
                    ("[a-z:/.]{0,12}", proptest::option::of("[a-z/]{0,8}"),
                     proptest::option::of(any::<u64>())),
                    0..2,
                ),
            ) -> Entry {
                Entry {
                    position,
                    id,
                    title,
                    summary,
                    content,
                    links: links
                        .into_iter()
                        .map(|(href, rel, media_type, length)| Link { href, rel, media_type, length })
                        .collect(),
                    categories,
                    published,
                    updated,
                    key_date,
                    base,
                    language,
                    authors: authors
                        .into_iter()
                        .map(|(name, email, uri)| Byline { name, email, uri })
                        .collect(),
                    enclosures: enclosures
                        .into_iter()
                        .map(|(url, media_type, length)| Enclosure { url, media_type, length })
                        .collect(),
                }
            }
        }

        proptest! {
            #[test]
            fn is_serde_jsons_and_reads_back(
                entry in entry(),
                fetch_url in proptest::option::of(Just(Url::parse("https://example.org/feed").expect("url"))),
                language in proptest::option::of("[a-z]{0,3}"),
                markup_in_plain_text in any::<bool>(),
            ) {
                let ctx = FeedContext { fetch_url, site_url: None, language, markup_in_plain_text };
                let fetched = FetchedEntryRef { entry: &entry, ctx: &ctx };
                let json = fetched.to_json().expect("json");
                prop_assert_eq!(&json, &serde_json::to_string(&fetched).expect("serde_json"));
                let read = FetchedEntry::from_json(&json).expect("reads back");
                prop_assert_eq!(read.entry, entry);
            }
        }
    }
}
