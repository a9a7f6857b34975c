//! A lenient XML reader for feeds: one pass of quick-xml builds a small element tree with
//! namespaces resolved to the vocabularies feeds use.
//!
//! Real feeds are often not well-formed: a bare `&`, an HTML entity such as `&nbsp;` that no DTD
//! declares, a tag closed out of order, a document cut off mid-way. A reader that gives up on
//! the first fault loses whole feeds that every feed reader shows, so faults are mended where
//! the intent is plain (a bare `&` is an ampersand, an unknown entity is decoded as HTML, an end
//! tag closes the nearest open element of its name) and reading stops at the first fault that
//! cannot be mended, keeping what was read before it. Entities declared in a DTD are never
//! expanded (no entity bombs, no external entities).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use url::Url;

/// The vocabularies feeds are written in. Several namespace URIs map to one vocabulary where
/// they are versions of it (RSS 0.90, 1.0 and the UserLand RSS 2.0 namespace are all `Rss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    /// No namespace.
    None,
    Atom,
    /// Atom 0.3 (`http://purl.org/atom/ns#`).
    Atom03,
    Rss,
    /// RSS 0.90's own namespace, kept apart so the version can be told.
    Rss090,
    Rdf,
    Dc,
    Dcterms,
    Content,
    Media,
    Itunes,
    Xhtml,
    /// Feed paging and archiving (RFC 5005): `fh:complete`, `fh:archive`.
    History,
    Other,
}

impl Ns {
    fn from_uri(uri: &str) -> Self {
        let uri = uri.strip_suffix('/').unwrap_or(uri);
        match uri {
            "http://www.w3.org/2005/Atom" => Self::Atom,
            "http://purl.org/atom/ns#" => Self::Atom03,
            "http://my.netscape.com/rdf/simple/0.9" => Self::Rss090,
            "http://purl.org/rss/1.0"
            | "http://backend.userland.com/rss2"
            | "http://backend.userland.com/rss"
            | "http://blogs.law.harvard.edu/tech/rss" => Self::Rss,
            "http://www.w3.org/1999/02/22-rdf-syntax-ns#" => Self::Rdf,
            "http://purl.org/dc/elements/1.1" => Self::Dc,
            "http://purl.org/dc/terms" => Self::Dcterms,
            "http://purl.org/rss/1.0/modules/content" => Self::Content,
            "http://search.yahoo.com/mrss"
            | "https://search.yahoo.com/mrss"
            | "http://video.search.yahoo.com/mrss" => Self::Media,
            "http://www.itunes.com/dtds/podcast-1.0.dtd"
            | "http://www.itunes.com/DTDs/Podcast-1.0.dtd" => Self::Itunes,
            "http://www.w3.org/1999/xhtml" => Self::Xhtml,
            "http://purl.org/syndication/history/1.0" => Self::History,
            // Feeds name RSS's namespace after whatever page documents it
            // (`https://cyber.harvard.edu/rss/rss.html`); modules have their own prefixes.
            _ if uri.to_ascii_lowercase().contains("rss")
                && !uri.contains("/modules/")
                && !uri.contains("mrss") =>
            {
                Self::Rss
            }
            _ => Self::Other,
        }
    }

    /// Feeds that use a prefix without declaring it mean the usual namespace of that prefix.
    fn from_undeclared_prefix(prefix: &str) -> Self {
        match prefix {
            "atom" | "a10" => Self::Atom,
            "dc" => Self::Dc,
            "dcterms" => Self::Dcterms,
            "content" => Self::Content,
            "media" => Self::Media,
            "itunes" => Self::Itunes,
            "rdf" => Self::Rdf,
            "xhtml" => Self::Xhtml,
            _ => Self::Other,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Attr {
    pub ns: Ns,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone)]
pub enum Node {
    Element(Element),
    Text(String),
}

#[derive(Debug, Clone)]
pub struct Element {
    pub ns: Ns,
    /// Local name, without prefix.
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
    /// `xml:base` in scope (this element's or an ancestor's), resolved against the document URL;
    /// `None` when no element up to the root has one.
    pub base: Option<Arc<Url>>,
    /// False when the document ended (or broke off) before the element was closed: its
    /// content may be cut short.
    pub complete: bool,
}

impl Element {
    /// Whether this is `name` in one of `ns`.
    pub fn is(&self, ns: &[Ns], name: &str) -> bool {
        self.name == name && ns.contains(&self.ns)
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element `name` in one of `ns`.
    pub fn child(&self, ns: &[Ns], name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, name))
    }

    /// An attribute without a namespace, as feed vocabularies write theirs.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name == name && matches!(a.ns, Ns::None))
            .map(|a| a.value.as_str())
    }

    /// An attribute in a namespace, such as `rdf:about`.
    pub fn attr_ns(&self, ns: Ns, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name == name && a.ns == ns)
            .map(|a| a.value.as_str())
    }

    pub fn has_element_children(&self) -> bool {
        self.elements().next().is_some()
    }

    /// All the text inside, markup left out.
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.collect_text(&mut out);
        out
    }

    fn collect_text(&self, out: &mut String) {
        for child in &self.children {
            match child {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) => e.collect_text(out),
            }
        }
    }

    /// The trimmed text, `None` when there is none.
    pub fn text_trimmed(&self) -> Option<String> {
        match self.children.as_slice() {
            [] => None,
            [Node::Text(t)] => Some(t.trim()).filter(|t| !t.is_empty()).map(str::to_owned),
            _ => {
                let text = self.text();
                let trimmed = text.trim();
                (!trimmed.is_empty()).then(|| trimmed.to_owned())
            }
        }
    }

    /// The content serialized as HTML: text escaped, child elements written with their local
    /// names (inline XHTML and unescaped HTML in RSS both come out as HTML).
    pub fn inner_html(&self) -> String {
        let mut out = String::new();
        for child in &self.children {
            write_html(child, &mut out);
        }
        out
    }

    /// The base that relative references in this element resolve against.
    pub fn base_url(&self) -> Option<Url> {
        self.base.as_deref().cloned()
    }

    /// `href` made absolute against this element's `xml:base`, when there is one.
    pub fn resolve(&self, href: &str) -> String {
        let href = href.trim();
        match &self.base {
            Some(base) if Url::parse(href).is_err() => base
                .join(href)
                .map_or_else(|_| href.to_owned(), String::from),
            _ => href.to_owned(),
        }
    }
}

/// An HTML element that never has content (`<br>`, `<img>`), written as a start tag in HTML
/// that sits unescaped in a feed. `link`, `meta`, `base` and `source` are left out: feed
/// vocabularies use those names for elements with content.
fn is_void(element: &Element) -> bool {
    let name = element.name.as_str();
    matches!(element.ns, Ns::None | Ns::Xhtml)
        && crate::text::VOID_ELEMENTS.contains(&name)
        && !matches!(name, "link" | "meta" | "base" | "source")
}

fn write_html(node: &Node, out: &mut String) {
    match node {
        Node::Text(t) => escape_into(t, false, out),
        Node::Element(e) => {
            out.push('<');
            out.push_str(&e.name);
            for a in &e.attrs {
                // Namespace declarations and xml:* attributes mean nothing in HTML.
                if a.name == "xml:lang" {
                    continue;
                }
                out.push(' ');
                out.push_str(&a.name);
                out.push_str("=\"");
                escape_into(&a.value, true, out);
                out.push('"');
            }
            out.push('>');
            for child in &e.children {
                write_html(child, out);
            }
            // An unclosed `<br>` in unescaped HTML swallowed what follows it; that is written
            // after it, not inside it.
            if crate::text::VOID_ELEMENTS.contains(&e.name.as_str()) {
                return;
            }
            out.push_str("</");
            out.push_str(&e.name);
            out.push('>');
        }
    }
}

fn escape_into(text: &str, attribute: bool, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
}

/// A read document: its root element and what had to be mended on the way.
#[derive(Debug)]
pub struct Document {
    pub root: Element,
    pub warnings: Vec<String>,
}

/// Reads `doc` (UTF-8) into a tree. Errors only when no root element could be read or the
/// nesting passes `max_depth`.
/// Why a text is not read as XML at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Deeper nesting than any feed needs: refused before it costs memory or stack.
    #[error("elements nest deeper than {max} levels")]
    TooDeep { max: usize },
    /// Broken before a single element was read.
    #[error("not XML: {message} at byte {at}")]
    NotXml { message: String, at: u64 },
    /// Text, or nothing, without an element.
    #[error("not XML: no root element")]
    NoRoot,
}

pub fn read(doc: &str, max_depth: usize, doc_url: Option<&Url>) -> Result<Document, XmlError> {
    let mut reader = Reader::from_str(doc);
    let config = reader.config_mut();
    config.allow_dangling_amp = true;
    config.allow_unmatched_ends = true;
    config.check_end_names = false;
    config.check_comments = false;
    config.trim_text(false);

    let mut builder = Builder {
        dropped: 0,
        stack: Vec::new(),
        scopes: Vec::new(),
        root: None,
        entities: HashMap::new(),
        doc_url: doc_url.cloned().map(Arc::new),
    };
    let mut warnings = Vec::new();
    loop {
        let position = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(start)) => {
                let (element, declared) = builder.element(&start);
                if is_void(&element) {
                    // An unclosed `<br>` in careless HTML must not nest what follows.
                    builder.attach(Node::Element(element));
                } else {
                    if builder.stack.len() >= max_depth {
                        return Err(XmlError::TooDeep { max: max_depth });
                    }
                    builder.stack.push(element);
                    builder.scopes.push(declared);
                }
            }
            Ok(Event::Empty(start)) => {
                let (element, _) = builder.element(&start);
                builder.attach(Node::Element(element));
            }
            Ok(Event::End(end)) => {
                let name = end.name();
                builder.close(name.local_name().into_inner());
            }
            Ok(Event::Text(text)) => builder.text(&text),
            Ok(Event::CData(cdata)) => builder.text(&cdata),
            Ok(Event::GeneralRef(reference)) => {
                let name = reference.to_string();
                let decoded = builder.entity(&name);
                builder.text(&decoded);
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                if builder.root.is_none() && builder.stack.is_empty() {
                    return Err(XmlError::NotXml {
                        message: e.to_string(),
                        at: position,
                    });
                }
                warnings.push(format!(
                    "the XML is broken at byte {position} ({e}); what comes before was read"
                ));
                break;
            }
        }
        if builder.root.is_some() {
            // Whatever follows the root element is not part of the document.
            break;
        }
    }
    if !builder.stack.is_empty() && builder.root.is_none() {
        if warnings.is_empty() {
            warnings.push("the document ends before its elements are closed".to_owned());
        }
        builder.close_all();
    }
    if builder.dropped > 0 {
        warnings.push(format!(
            "{} elements beyond the first {MAX_CHILDREN} in one element were not read",
            builder.dropped
        ));
    }
    let root = builder.root.ok_or(XmlError::NoRoot)?;
    Ok(Document { root, warnings })
}

/// Child elements kept per element: far more entries than any feed carries (the parse caps keep
/// the newest thousand), few enough that a document of millions of tiny entries stays small.
const MAX_CHILDREN: usize = 20_000;

struct Builder {
    /// Elements left out because their parent had [`MAX_CHILDREN`] already.
    dropped: usize,
    stack: Vec<Element>,
    /// The namespaces each open element declares, beside `stack`.
    scopes: Vec<Vec<(String, Ns)>>,
    root: Option<Element>,
    /// Entities that are not XML's own, decoded once per document.
    entities: HashMap<String, String>,
    doc_url: Option<Arc<Url>>,
}

impl Builder {
    /// The element a start tag opens, and the namespaces it declares.
    fn element(&self, start: &BytesStart<'_>) -> (Element, Vec<(String, Ns)>) {
        let qname = start.name();
        // Only an explicit xml:base sets a base: without one, relative references resolve the
        // way each format's reader decides.
        let mut base = self.stack.last().and_then(|parent| parent.base.clone());
        let mut declared = Vec::new();
        let mut raw_attrs = Vec::new();
        for attr in start.attributes().with_checks(false).flatten() {
            let key = attr.key;
            let value = decode_references(&attr.value, &self.entities).into_owned();
            if key.as_ref() == "xml:base" {
                let joined = match base.as_ref().or(self.doc_url.as_ref()) {
                    Some(parent) => parent.join(value.trim()).ok(),
                    None => Url::parse(value.trim()).ok(),
                };
                if let Some(url) = joined {
                    base = Some(Arc::new(url));
                }
            } else if key.as_ref() == "xmlns" {
                declared.push((String::new(), Ns::from_uri(value.trim())));
            } else if let Some(prefix) = key.as_ref().strip_prefix("xmlns:") {
                declared.push((prefix.to_owned(), Ns::from_uri(value.trim())));
            } else {
                raw_attrs.push((key, value));
            }
        }
        let ns = self.resolve(
            qname.prefix().map(|p| p.into_inner()).unwrap_or(""),
            &declared,
        );
        let name = qname.local_name().into_inner().to_owned();
        let attrs = raw_attrs
            .into_iter()
            .map(|(key, value)| {
                let ns = match key.prefix().map(|p| p.into_inner()) {
                    None => Ns::None,
                    Some("xml") => Ns::Other,
                    Some(prefix) => self.resolve(prefix, &declared),
                };
                let name = if key.as_ref() == "xml:lang" {
                    "xml:lang".to_owned()
                } else {
                    key.local_name().into_inner().to_owned()
                };
                Attr { ns, name, value }
            })
            .collect();
        (
            Element {
                ns,
                name,
                attrs,
                children: Vec::new(),
                base,
                complete: true,
            },
            declared,
        )
    }

    /// The vocabulary `prefix` (empty: the default namespace) names here: declared on this
    /// element, else on the nearest open element that declares it. The bindings live beside
    /// the open elements, so an end tag that closes several of them (or none) keeps them right.
    fn resolve(&self, prefix: &str, declared: &[(String, Ns)]) -> Ns {
        let bound = declared
            .iter()
            .chain(self.scopes.iter().rev().flatten())
            .find(|(p, _)| p == prefix)
            .map(|(_, ns)| *ns);
        match bound {
            Some(ns) => ns,
            None if prefix.is_empty() => Ns::None,
            None => Ns::from_undeclared_prefix(prefix),
        }
    }
    fn attach(&mut self, node: Node) {
        match (self.stack.last_mut(), node) {
            (Some(parent), Node::Element(_)) if parent.children.len() >= MAX_CHILDREN => {
                self.dropped += 1;
            }
            (Some(parent), mut node) => {
                // Elements are done growing once attached; their spare capacity would be
                // most of the tree's memory in a feed of many small entries.
                if let Node::Element(e) = &mut node {
                    e.children.shrink_to_fit();
                }
                parent.children.push(node);
            }
            (None, Node::Element(e)) => self.root = Some(e),
            (None, Node::Text(_)) => {}
        }
    }

    fn text(&mut self, text: &str) {
        let Some(parent) = self.stack.last_mut() else {
            return;
        };
        match parent.children.last_mut() {
            Some(Node::Text(t)) => t.push_str(text),
            _ => parent.children.push(Node::Text(text.to_owned())),
        }
    }

    /// An end tag closes the nearest open element of its name, and the ones opened inside it;
    /// an end tag that matches nothing open is ignored.
    fn close(&mut self, local: &str) {
        let Some(at) = self.stack.iter().rposition(|e| e.name == local) else {
            return;
        };
        while self.stack.len() > at {
            self.scopes.pop();
            if let Some(mut element) = self.stack.pop() {
                for child in &mut element.children {
                    if let Node::Text(text) = child
                        && let Some(repaired) = undo_double_utf8(text)
                    {
                        *text = repaired;
                    }
                }
                self.attach(Node::Element(element));
            }
        }
    }

    fn close_all(&mut self) {
        while let Some(mut element) = self.stack.pop() {
            self.scopes.pop();
            element.complete = false;
            self.attach(Node::Element(element));
        }
    }

    fn entity(&mut self, name: &str) -> String {
        if let Some(c) = builtin_entity(name) {
            return c.to_string();
        }
        if let Some(known) = self.entities.get(name) {
            return known.clone();
        }
        if self.entities.len() >= MAX_ENTITY_NAMES {
            // A document of countless made-up entities is not worth an HTML parse each.
            return format!("&{name};");
        }
        let decoded = html_entity(name);
        self.entities.insert(name.to_owned(), decoded.clone());
        decoded
    }
}

/// Text that was UTF-8, read as Windows-1252 (or Latin-1) and encoded as UTF-8 again before it
/// reached the feed (`FÃ³rmula` for `Fórmula`), as feeds built by pasting between systems
/// carry it. Turned back only when every character maps to one Windows-1252 byte and those
/// bytes are valid UTF-8 with more than ASCII in it, which text meant as written almost never is.
fn undo_double_utf8(text: &str) -> Option<String> {
    // Every multi-byte UTF-8 sequence starts with a byte that reads as one of `Â` to `ô`.
    if !text.chars().any(|c| ('\u{c2}'..='\u{f4}').contains(&c)) {
        return None;
    }
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    if unmappable {
        return None;
    }
    let repaired = std::str::from_utf8(&bytes).ok()?;
    (repaired != text).then(|| repaired.to_owned())
}

/// XML's own entities and character references.
fn builtin_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => number.parse::<u32>().ok(),
            };
            // A reference to a character XML cannot hold is kept as a replacement character
            // rather than dropping the text around it.
            Some(
                code.and_then(char::from_u32)
                    .filter(|c| *c != '\0')
                    .unwrap_or('\u{fffd}'),
            )
        }
    }
}

/// An entity no DTD is read for (`&nbsp;`, `&eacute;`): feeds mean HTML's. Unknown names stay
/// as written.
fn html_entity(name: &str) -> String {
    let written = format!("&{name};");
    if name.len() > 32 || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return written;
    }
    let fragment = scraper::Html::parse_fragment(&written);
    let decoded: String = fragment.root_element().text().collect();
    // HTML also decodes a known prefix (`&notit;` as `¬it;`); only a whole name counts here.
    if decoded.is_empty() || decoded.contains(';') || decoded.chars().count() > 2 {
        written
    } else {
        decoded
    }
}

/// Distinct entity names decoded per document (and per attribute value); HTML has about 2,000,
/// and feeds use a handful.
const MAX_ENTITY_NAMES: usize = 256;

/// Decodes references in an attribute value, with the same rules as in text.
fn decode_references<'a>(raw: &'a str, entities: &HashMap<String, String>) -> Cow<'a, str> {
    if !raw.contains('&') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut looked_up = 0usize;
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after
            .char_indices()
            .take(34)
            .find(|(_, c)| *c == ';' || c.is_whitespace() || *c == '&')
            .filter(|(_, c)| *c == ';');
        match end {
            Some((end, _)) => {
                let name = &after[..end];
                match builtin_entity(name) {
                    Some(c) => out.push(c),
                    None => match entities.get(name) {
                        Some(known) => out.push_str(known),
                        None if looked_up < MAX_ENTITY_NAMES => {
                            looked_up += 1;
                            out.push_str(&html_entity(name));
                        }
                        None => {
                            out.push('&');
                            out.push_str(name);
                            out.push(';');
                        }
                    },
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(xml: &str) -> Element {
        read(xml, 64, None).expect("document").root
    }

    #[test]
    fn namespaces_resolve_to_vocabularies() {
        let r = root(
            r#"<rss xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:a="http://www.w3.org/2005/Atom"><channel>
            <dc:creator>x</dc:creator><a:link href="h"/><media:content url="u"/></channel></rss>"#,
        );
        let channel = r.child(&[Ns::None], "channel").expect("channel");
        let names: Vec<(Ns, &str)> = channel
            .elements()
            .map(|e| (e.ns, e.name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                (Ns::Dc, "creator"),
                (Ns::Atom, "link"),
                (Ns::Media, "content")
            ]
        );
    }

    #[test]
    fn faults_are_mended() {
        let r = root(
            "<rss><title>Fish & Chips&nbsp;&eacute;&#233;&#x41;&bogus;</title><b><i>x</b>tail",
        );
        let title = r.child(&[Ns::None], "title").expect("title");
        assert_eq!(title.text(), "Fish & Chips\u{a0}ééA&bogus;");
        assert_eq!(r.child(&[Ns::None], "b").expect("b").text(), "x");
    }

    #[test]
    fn attribute_references_and_xml_base() {
        let base = Url::parse("https://example.org/feed.xml").expect("url");
        let doc = read(
            r#"<feed xml:base="/blog/"><entry xml:base="2024/"><link href="a?x=1&amp;y=2&z"/></entry></feed>"#,
            16,
            Some(&base),
        )
        .expect("doc");
        let entry = doc.root.child(&[Ns::None], "entry").expect("entry");
        let link = entry.child(&[Ns::None], "link").expect("link");
        assert_eq!(link.attr("href"), Some("a?x=1&y=2&z"));
        assert_eq!(
            link.resolve("a"),
            "https://example.org/blog/2024/a".to_owned()
        );
    }

    #[test]
    fn depth_is_capped_and_junk_is_an_error() {
        let deep = "<a>".repeat(100);
        assert_eq!(
            read(&deep, 50, None).err(),
            Some(XmlError::TooDeep { max: 50 })
        );
        assert!(read(&deep, 200, None).is_ok());
        for junk in ["", "just text"] {
            assert_eq!(
                read(junk, 50, None).err(),
                Some(XmlError::NoRoot),
                "{junk:?}"
            );
        }
        let broken = read("<a x=\"1>", 50, None).expect_err("broken");
        assert!(
            matches!(broken, XmlError::NotXml { at: 0, .. }),
            "{broken:?}"
        );
    }

    #[test]
    fn namespaces_survive_mismatched_end_tags_and_open_line_breaks() {
        let r = root(
            r#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:m="http://search.yahoo.com/mrss/"><entry>
            <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">a<br>b<br>c</p></div></content>
            <title>The real title</title><m:content url="u"/></entry></feed>"#,
        );
        let entry = r.child(&[Ns::Atom], "entry").expect("entry");
        assert!(entry.child(&[Ns::Atom], "title").is_some(), "{entry:?}");
        assert!(entry.child(&[Ns::Media], "content").is_some(), "{entry:?}");
        let many = format!("<rss><d>{}</d><after/></rss>", "line<br>".repeat(400));
        let r = read(&many, 16, None).expect("line breaks do not nest");
        assert!(r.root.child(&[Ns::None], "after").is_some());
    }

    #[test]
    fn text_encoded_twice_is_decoded_once() {
        let (moscow, _, _) = encoding_rs::WINDOWS_1252.decode("«Москва»".as_bytes());
        let r = root(&format!(
            "<rss><a>Grupo FÃ³rmula</a><b>itâ€™s</b><c>café ü</c><d>{moscow}</d></rss>"
        ));
        let text = |n: &str| r.child(&[Ns::None], n).expect("element").text();
        assert_eq!(text("a"), "Grupo Fórmula");
        assert_eq!(text("b"), "it’s");
        assert_eq!(text("c"), "café ü");
        assert_eq!(text("d"), "«Москва»");
    }

    #[test]
    fn inline_markup_serializes_as_html() {
        let r = root(
            r#"<c xmlns:x="http://www.w3.org/1999/xhtml"><x:p class="a&quot;">1 &lt; 2<x:br/></x:p></c>"#,
        );
        assert_eq!(r.inner_html(), r#"<p class="a&quot;">1 &lt; 2<br></p>"#);
    }
}
