//! Cleaning a parsed HTML document in place, so that feed HTML is parsed once on its way to
//! Markdown: the tree the converter reads is the tree that was cleaned, instead of sanitized
//! HTML written out and parsed again (and a third time to find tracking pixels). Parsing is most
//! of what converting an article costs.
//!
//! The rules are those the archive has always been written with: elements of [`KEPT`] stay with
//! the attributes [`allowed_attribute`] lets through, elements of `DROP_WITH_CONTENT` go with
//! everything inside them, any other element is replaced by its content; comments go; links and
//! images keep only addresses with a [`SAFE_SCHEMES`] scheme, and relative ones are resolved
//! against the base; images of one pixel are tracking pixels and go. Markdown read back as
//! HTML for a feed or a page is sanitized again on the way out, so these rules shape the
//! archive's text; they are not what keeps a reader safe.

use std::rc::Rc;

use markup5ever_rcdom::{Handle, NodeData, RcDom};
use url::Url;

use super::DROP_WITH_CONTENT;

/// Elements that stay (with their allowed attributes); any other element gives way to its
/// content. Sorted, and looked up by [`is_kept`].
const KEPT: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "area",
    "article",
    "aside",
    "b",
    "bdi",
    "bdo",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "data",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "map",
    "mark",
    "nav",
    "ol",
    "p",
    "pre",
    "q",
    "rp",
    "rt",
    "rtc",
    "ruby",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "time",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
];

/// Whether `tag` is one of [`KEPT`]: a binary search, since every element of every article is
/// looked up, and a scan compared most of them with dozens of names.
fn is_kept(tag: &str) -> bool {
    KEPT.binary_search(&tag).is_ok()
}

/// Besides [`DROP_WITH_CONTENT`], the elements whose text is code, not prose.
const DROP_ALSO: &[&str] = &["script", "style"];

/// Schemes a link or an image may keep; any other absolute address (`javascript:`, `data:`)
/// is removed, the element's text stays.
const SAFE_SCHEMES: &[&str] = &[
    "bitcoin",
    "ftp",
    "ftps",
    "geo",
    "http",
    "https",
    "im",
    "irc",
    "ircs",
    "magnet",
    "mailto",
    "mms",
    "mx",
    "news",
    "nntp",
    "openpgp4fpr",
    "sip",
    "sms",
    "smsto",
    "ssh",
    "tel",
    "url",
    "webcal",
    "wtai",
    "xmpp",
];

const HTML_NAMESPACE: &str = "http://www.w3.org/1999/xhtml";

/// Whether `attribute` may stay on `element`.
fn allowed_attribute(element: &str, attribute: &str) -> bool {
    const TABLE_ALIGN: &[&str] = &["align", "char", "charoff"];
    let listed: &[&str] = match element {
        "a" => &["href", "hreflang"],
        "bdo" => &["dir"],
        "blockquote" | "q" => &["cite"],
        "col" | "colgroup" => &["align", "char", "charoff", "span"],
        "del" | "ins" => &["cite", "datetime"],
        "hr" => &["align", "size", "width"],
        "img" => &["align", "alt", "height", "src", "width"],
        "ol" => &["start"],
        "table" => &["align", "char", "charoff", "summary"],
        "tbody" | "thead" | "tr" => TABLE_ALIGN,
        "td" => &["align", "char", "charoff", "colspan", "headers", "rowspan"],
        "th" => &[
            "align", "char", "charoff", "colspan", "headers", "rowspan", "scope",
        ],
        _ => &[],
    };
    matches!(attribute, "lang" | "title") || listed.contains(&attribute)
}

/// Attributes that hold an address.
fn is_address(attribute: &str) -> bool {
    matches!(attribute, "href" | "src")
}

/// The address an attribute keeps: absolute ones with a safe scheme as they are, relative ones
/// resolved against `base` (as they are without one); `None` removes the attribute.
fn kept_address(value: &str, base: Option<&Url>) -> Option<Option<String>> {
    if let Some(resolved) = base.and_then(|base| joined_plain_path(base, value)) {
        return Some(Some(resolved));
    }
    match Url::parse(value) {
        Ok(url) => SAFE_SCHEMES.contains(&url.scheme()).then_some(None),
        Err(url::ParseError::RelativeUrlWithoutBase) => match base {
            Some(base) => base.join(value).ok().map(|url| Some(url.into())),
            None => Some(None),
        },
        Err(_) => None,
    }
}

/// `base` joined with `value` when `value` is a plain absolute path (`/a/b-c.html`) and `base`
/// an `http(s)` address: the base's scheme, host and port with the path as it is, which is what
/// the URL parser makes of it, without parsing it. Links within a site are mostly such paths,
/// and joined by the parser they were half of what cleaning an article cost. `None` for
/// anything the parser would change or read otherwise: another scheme, a `//host`, a query or
/// fragment, a dot segment, a character it encodes.
fn joined_plain_path(base: &Url, value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let plain = bytes.first() == Some(&b'/')
        && bytes.get(1) != Some(&b'/')
        && memchr::memmem::find(bytes, b"/.").is_none()
        && bytes.iter().all(|&b| b < 128 && (PLAIN_PATH >> b) & 1 == 1);
    if !plain || !matches!(base.scheme(), "http" | "https") || !base.has_host() {
        return None;
    }
    let origin = &base[..url::Position::BeforePath];
    let mut joined = String::with_capacity(origin.len() + value.len());
    joined.push_str(origin);
    joined.push_str(value);
    Some(joined)
}

/// The ASCII characters a plain path may hold, as a bit per character: letters, digits and the
/// punctuation the URL parser leaves as it is in a path (`%` is not among them: `%2e` is a dot).
const PLAIN_PATH: u128 = {
    let mut mask = 0;
    let mut b = 0;
    while b < 128 {
        if (b as u8).is_ascii_alphanumeric() {
            mask |= 1 << b;
        }
        b += 1;
    }
    let punctuation = b"/-_.~!$&()*+,;=:@";
    let mut i = 0;
    while i < punctuation.len() {
        mask |= 1 << punctuation[i];
        i += 1;
    }
    mask
};

/// A width or height that makes an image a tracking pixel.
fn is_pixel_size(value: &str) -> bool {
    value
        .trim()
        .trim_end_matches("px")
        .parse::<u32>()
        .is_ok_and(|px| px <= 1)
}

/// `html` parsed as the content of a `<div>`: a document whose one element, `html`, holds the
/// fragment's nodes. A fragment, not a document: a feed's HTML is a part of a page, and parsed
/// as a whole page a leading `<frameset>` or `<title>` would move or drop what follows.
pub(super) fn parse_fragment(html: &str) -> Handle {
    super::fragment::well_nested(html).unwrap_or_else(|| html5ever_fragment(html))
}

/// [`parse_fragment`] by html5ever, for any HTML.
pub(super) fn html5ever_fragment(html: &str) -> Handle {
    use html5ever::tendril::TendrilSink;
    use html5ever::{QualName, local_name, ns};
    let context = QualName::new(None, ns!(html), local_name!("div"));
    html5ever::parse_fragment(
        RcDom::default(),
        html5ever::ParseOpts::default(),
        context,
        Vec::new(),
        false,
    )
    .one(html)
    .document
}

/// Cleans a document made by [`parse_fragment`] in place under the rules above.
pub(super) fn clean_fragment(document: &Handle, base: Option<&Url>) {
    let roots: Vec<Handle> = document.children.borrow().clone();
    for root in roots {
        clean_children(&root, base, false);
        // Whitespace before the first text or element goes, as it does when HTML is read as a
        // page: a line must not start with spaces that hide a `1.` or a `#` from the
        // converter's escaping.
        let mut children = root.children.borrow_mut();
        if let Some(NodeData::Text { contents }) = children.first().map(|first| &first.data) {
            let mut text = contents.borrow_mut();
            let trimmed = text.trim_start_matches(HTML_WHITESPACE).len();
            let cut = text.len() - trimmed;
            if trimmed == 0 {
                drop(text);
                children.remove(0);
            } else if cut > 0 {
                text.pop_front(u32::try_from(cut).unwrap_or(0));
            }
        }
    }
}

/// What HTML counts as whitespace.
const HTML_WHITESPACE: [char; 5] = ['\t', '\n', '\x0c', '\r', ' '];

/// Cleans what is inside `parent` (not `parent` itself), depth first. `in_link`: `parent` is
/// inside a link, and a link in a link gives way to its text (Markdown cannot nest them).
fn clean_children(parent: &Handle, base: Option<&Url>, in_link: bool) {
    let children = std::mem::take(&mut *parent.children.borrow_mut());
    let mut kept: Vec<Handle> = Vec::with_capacity(children.len());
    for child in children {
        match &child.data {
            NodeData::Text { .. } => push_node(&mut kept, child, parent),
            NodeData::Element { name, attrs, .. } => {
                let tag = &*name.local;
                if tag == "noscript" {
                    noscript_pictures(&child, &mut kept, parent, base);
                    continue;
                }
                // No kept element is dropped: most elements are kept, and need no look at the
                // dropped ones.
                let stays = is_kept(tag);
                if !stays && (DROP_WITH_CONTENT.contains(&tag) || DROP_ALSO.contains(&tag)) {
                    continue;
                }
                let link = tag == "a";
                clean_children(&child, base, in_link || link);
                if &*name.ns == HTML_NAMESPACE && stays && !(link && in_link) {
                    let mut attrs = attrs.borrow_mut();
                    if tag == "img" {
                        lazy_source(&mut attrs);
                    }
                    attrs.retain_mut(|attr| {
                        let attribute = &*attr.name.local;
                        if !allowed_attribute(tag, attribute) {
                            return false;
                        }
                        if !is_address(attribute) {
                            return true;
                        }
                        match kept_address(&attr.value, base) {
                            Some(Some(resolved)) => {
                                attr.value = resolved.into();
                                true
                            }
                            Some(None) => true,
                            None => false,
                        }
                    });
                    let pixel = tag == "img"
                        && attrs.iter().any(|attr| {
                            matches!(&*attr.name.local, "width" | "height")
                                && is_pixel_size(&attr.value)
                        });
                    drop(attrs);
                    if !pixel {
                        push_node(&mut kept, child, parent);
                    }
                } else {
                    // The element gives way to its (already cleaned) content.
                    let grandchildren = std::mem::take(&mut *child.children.borrow_mut());
                    for grandchild in grandchildren {
                        push_node(&mut kept, grandchild, parent);
                    }
                }
            }
            NodeData::Comment { .. }
            | NodeData::Doctype { .. }
            | NodeData::ProcessingInstruction { .. }
            | NodeData::Document => {}
        }
    }
    *parent.children.borrow_mut() = kept;
}

/// Keeps the pictures of a `<noscript>` fallback, which lazy-loading pages give readers without
/// scripts (the archive is one): its `<img>`s, cleaned like any, replace the placeholder
/// picture just before it (one left without an address), or stand where it was. Anything else
/// in it ("enable JavaScript") goes. Parsed as a browser with scripts parses it, its content is
/// text, read here as HTML.
fn noscript_pictures(
    noscript: &Handle,
    kept: &mut Vec<Handle>,
    parent: &Handle,
    base: Option<&Url>,
) {
    let markup: String = noscript
        .children
        .borrow()
        .iter()
        .filter_map(|child| match &child.data {
            NodeData::Text { contents } => Some(contents.borrow().to_string()),
            _ => None,
        })
        .collect();
    // Parsed without scripts (scraper's pages), the pictures are elements already. The parsed
    // document lives to the end: dropping an rcdom node empties every node below it.
    let parsed;
    let holders: Vec<Handle> = if markup.contains("<img") || markup.contains("<IMG") {
        parsed = parse_fragment(&markup);
        parsed.children.borrow().clone()
    } else {
        vec![noscript.clone()]
    };
    let mut pictures = Vec::new();
    for holder in &holders {
        clean_children(holder, base, false);
        collect_images(holder, &mut pictures);
    }
    if pictures.is_empty() {
        return;
    }
    // The placeholder: the last picture kept, whitespace aside, when it has no address.
    let last = kept.iter().rposition(|node| match &node.data {
        NodeData::Text { contents } => !contents.borrow().trim().is_empty(),
        _ => true,
    });
    if let Some(at) = last {
        match image_source(&kept[at]) {
            Some(None) => {
                kept.remove(at);
            }
            // The picture loaded without scripts too: not twice.
            Some(Some(loaded)) => {
                pictures.retain(|p| image_source(p) != Some(Some(loaded.clone())))
            }
            None => {}
        }
    }
    for picture in pictures {
        push_node(kept, picture, parent);
    }
}

/// The `<img>` elements at or below `node`, in document order.
fn collect_images(node: &Handle, into: &mut Vec<Handle>) {
    for child in node.children.borrow().iter() {
        match &child.data {
            NodeData::Element { name, .. } if &*name.local == "img" => into.push(child.clone()),
            _ => collect_images(child, into),
        }
    }
}

/// `Some(src)` for an `<img>` (`None` inside when it has no address), `None` for anything else.
fn image_source(node: &Handle) -> Option<Option<String>> {
    match &node.data {
        NodeData::Element { name, attrs, .. } if &*name.local == "img" => Some(
            attrs
                .borrow()
                .iter()
                .find(|a| &*a.name.local == "src")
                .map(|a| a.value.to_string()),
        ),
        _ => None,
    }
}

/// Attributes lazy-loading scripts read the real picture from, in the order tried.
const LAZY_SOURCES: &[&str] = &["data-src", "data-lazy-src", "data-original", "data-url"];

/// Gives a lazy-loaded picture its real address: when `src` is missing, empty or a `data:`
/// placeholder, the first of [`LAZY_SOURCES`], else the largest candidate of `srcset` (or
/// `data-srcset`), becomes `src`. Without it the archive would keep a blank placeholder.
fn lazy_source(attrs: &mut Vec<html5ever::Attribute>) {
    let placeholder = |value: &str| {
        let value = value.trim();
        value.is_empty() || value.starts_with("data:")
    };
    let named = |attrs: &[html5ever::Attribute], name: &str| {
        attrs
            .iter()
            .find(|a| &*a.name.local == name)
            .map(|a| a.value.to_string())
    };
    if named(attrs, "src").is_some_and(|src| !placeholder(&src)) {
        return;
    }
    let real = LAZY_SOURCES
        .iter()
        .find_map(|name| named(attrs, name).filter(|v| !placeholder(v)))
        .or_else(|| {
            ["srcset", "data-srcset"]
                .iter()
                .find_map(|name| named(attrs, name).and_then(|set| largest_candidate(&set)))
        });
    let Some(real) = real else {
        return;
    };
    match attrs.iter_mut().find(|a| &*a.name.local == "src") {
        Some(src) => src.value = real.into(),
        None => {
            if let Some(mut src) = attrs.first().cloned() {
                src.name.local = "src".into();
                src.value = real.into();
                attrs.push(src);
            }
        }
    }
}

/// The candidate of a `srcset` with the largest width (`800w`) or density (`2x`); the last one
/// when none says.
fn largest_candidate(srcset: &str) -> Option<String> {
    srcset
        .split(',')
        .filter_map(|candidate| {
            let mut parts = candidate.split_whitespace();
            let url = parts.next()?;
            let size = parts
                .next()
                .and_then(|d| d.trim_end_matches(['w', 'x']).parse::<f64>().ok())
                .unwrap_or(0.0);
            Some((size, url.to_owned()))
        })
        .filter(|(_, url)| !url.starts_with("data:"))
        .fold(
            None,
            |best: Option<(f64, String)>, (size, url)| match best {
                Some((best_size, _)) if best_size > size => best,
                _ => Some((size, url)),
            },
        )
        .map(|(_, url)| url)
}

/// Appends `node` to `kept` as a child of `parent`; text that follows text joins it, as it would
/// if the cleaned HTML were written out and parsed again.
fn push_node(kept: &mut Vec<Handle>, node: Handle, parent: &Handle) {
    if let (Some(last), NodeData::Text { contents }) = (kept.last(), &node.data)
        && let NodeData::Text {
            contents: last_contents,
        } = &last.data
    {
        last_contents.borrow_mut().push_tendril(&contents.borrow());
        return;
    }
    node.parent.set(Some(Rc::downgrade(parent)));
    kept.push(node);
}

#[cfg(test)]
mod tests {
    use super::super::html_to_markdown;
    use super::{KEPT, is_kept};
    use url::Url;

    #[test]
    fn kept_elements_are_sorted_for_their_search() {
        assert!(KEPT.is_sorted(), "KEPT must stay sorted");
        assert!(KEPT.iter().all(|tag| is_kept(tag)));
        assert!(!is_kept("script") && !is_kept("font") && !is_kept(""));
        // Dropped elements are looked for only among those not kept.
        assert!(
            super::DROP_WITH_CONTENT
                .iter()
                .chain(super::DROP_ALSO.iter())
                .all(|tag| !is_kept(tag))
        );
    }

    /// Path segments, among them what the URL parser changes: dot segments, characters it
    /// encodes, a query, a fragment, a backslash; an empty one makes a `//`.
    const SEGMENTS: &[&str] = &[
        "a",
        "B-c",
        "x.y",
        "~u",
        "p:q@r",
        "s!$&'()*+,;=",
        "",
        ".",
        "..",
        "%2e",
        "a b",
        "q?x",
        "f#g",
        "\\",
        "\u{e9}",
        "t|u",
        "v^w",
        "`",
        "{x}",
        "<y>",
        "\"z\"",
    ];

    proptest::proptest! {
        /// A plain path joined without the parser is what the parser makes of it, for bases
        /// with and without a port, user or path, and for paths the parser would change
        /// (which must not take the short way).
        #[test]
        fn a_plain_path_is_joined_as_the_parser_joins_it(
            base in "https?://(user:pw@)?(example\\.org|127\\.0\\.0\\.1|[a-z]{1,8}\\.test)(:[0-9]{1,5})?(/[a-z.]{0,6}){0,3}(\\?q=1)?(#f)?",
            segments in proptest::collection::vec(proptest::sample::select(SEGMENTS), 0..6),
        ) {
            let value = format!("/{}", segments.join("/"));
            let Ok(base) = Url::parse(&base) else {
                return Ok(());
            };
            if let Some(joined) = super::joined_plain_path(&base, &value) {
                let parsed = base.join(&value).map(String::from);
                proptest::prop_assert_eq!(Ok(joined), parsed);
            }
        }
    }

    #[test]
    fn plain_paths_take_the_short_way_and_others_do_not() {
        let base = Url::parse("http://127.0.0.1:8080/feeds/one.xml").expect("base");
        assert_eq!(
            super::joined_plain_path(&base, "/related/1-2").as_deref(),
            Some("http://127.0.0.1:8080/related/1-2")
        );
        for other in [
            "//cdn.example.org/x",
            "/a/../b",
            "/a/./b",
            "/a b",
            "/a?b",
            "/a#b",
            "a/b",
            "",
        ] {
            assert_eq!(super::joined_plain_path(&base, other), None, "{other:?}");
        }
        let file = Url::parse("file:///srv/feed.xml").expect("base");
        assert_eq!(super::joined_plain_path(&file, "/related/1-2"), None);
    }

    fn md(html: &str) -> String {
        let base = Url::parse("https://example.org/posts/one.html").ok();
        html_to_markdown(html, base.as_ref())
    }

    #[test]
    fn noscript_fallbacks_give_lazy_pictures_their_address() {
        // The placeholder before it is replaced by the picture inside.
        assert_eq!(
            md(
                r#"<p>Before.</p><img src="data:image/gif;base64,R0lGOD" alt="">
                <noscript><img src="/full.jpg" alt="The harbour"></noscript><p>After.</p>"#
            ),
            "Before.\n\n![The harbour](https://example.org/full.jpg)\n\nAfter."
        );
        // Alone, it stands where it was; its words for readers without scripts go.
        assert_eq!(
            md(
                r#"<figure><noscript>Enable JavaScript. <img src="a.png" alt="A"></noscript></figure>"#
            ),
            "![A](https://example.org/posts/a.png)"
        );
        // A picture that loaded is not replaced, and a noscript without one says nothing.
        assert_eq!(
            md(
                r#"<img src="/real.jpg" alt="R"><noscript><img src="/real.jpg" alt="R"></noscript><noscript>Turn scripts on.</noscript>"#
            ),
            "![R](https://example.org/real.jpg)"
        );
    }

    #[test]
    fn code_and_embedded_documents_go_with_their_content() {
        assert_eq!(
            md("<p>a<script>x()</script><style>p{}</style><iframe>f</iframe>b</p>"),
            "ab"
        );
        assert_eq!(md("<svg><text>drawn</text></svg><p>kept</p>"), "kept");
    }

    #[test]
    fn other_elements_give_way_to_their_content() {
        assert_eq!(
            md("<custom-el><b>bold</b> text</custom-el>"),
            "**bold** text"
        );
        assert_eq!(
            md("<font color=red>red</font> and <video>v</video>"),
            "red and v"
        );
    }

    #[test]
    fn addresses_are_resolved_or_removed() {
        assert_eq!(
            md(r#"<a href="../x?a=1&amp;b=2">rel</a> <a href="javascript:alert(1)">js</a>"#),
            "[rel](https://example.org/x?a=1&b=2) js"
        );
        assert_eq!(
            md(r#"<img src="data:image/png;base64,AA" alt="inline"><img src="/i.png" alt="i">"#),
            "![i](https://example.org/i.png)"
        );
        assert_eq!(
            html_to_markdown(r#"<a href="rel/x">no base</a>"#, None),
            "[no base](rel/x)"
        );
    }

    #[test]
    fn lazy_loaded_pictures_keep_their_real_address() {
        assert_eq!(
            md(r#"<img src="data:image/gif;base64,R0lGOD" data-src="/real.jpg" alt="lazy">"#),
            "![lazy](https://example.org/real.jpg)"
        );
        assert_eq!(
            md(r#"<img data-lazy-src="/other.jpg" alt="no src">"#),
            "![no src](https://example.org/other.jpg)"
        );
        assert_eq!(
            md(r#"<img srcset="/s.jpg 300w, /l.jpg 1200w, /m.jpg 800w" alt="set">"#),
            "![set](https://example.org/l.jpg)"
        );
        assert_eq!(
            md(r#"<img src="/kept.jpg" data-src="/other.jpg" alt="real">"#),
            "![real](https://example.org/kept.jpg)"
        );
    }

    #[test]
    fn tracking_pixels_go_and_pictures_stay() {
        assert_eq!(
            md(r#"<p>x<img src="/p.gif" width="1" height="1"><img src="/q.gif" height="0px"></p>"#),
            "x"
        );
        assert_eq!(
            md(r#"<img src="/big.jpg" width="640" alt="big">"#),
            "![big](https://example.org/big.jpg)"
        );
    }

    #[test]
    fn only_allowed_attributes_reach_the_converter() {
        // A class would name a code block's language; the archive never kept one.
        assert_eq!(
            md(r#"<pre><code class="language-rust">let x = 1;</code></pre>"#),
            "```\nlet x = 1;\n```"
        );
        // Adjacent emphasis with the same allowed attributes merges, whatever else they had.
        assert_eq!(md(r#"<b onclick="x()">a</b><b style="c">b</b>"#), "**ab**");
    }

    #[test]
    fn a_link_inside_a_link_gives_way_to_its_text() {
        // Only table foster-parenting builds such a tree; Markdown cannot nest links.
        let out = md(r#"<a href="/outer"><table><a href="/inner">inner</a></table>x</a>"#);
        assert!(!out.contains("[["), "{out}");
    }

    #[test]
    fn a_fragment_is_not_a_page() {
        // Read as a page, a leading frameset would replace the body and its text.
        assert_eq!(md("<frameset><p>kept</p>"), "kept");
        assert_eq!(md("<title>t</title><p>body</p>"), "body");
        // Leading whitespace does not hide a list-like line from the escaping.
        assert_eq!(md("  \n 1. one"), "1\\. one");
    }
}
