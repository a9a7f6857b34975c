//! The tree of plain, well-nested HTML, built without html5ever's tokenizer and tree builder.
//!
//! Most feed HTML is paragraphs, emphasis, links, lists and images, every element closed where
//! it was opened. For such HTML the standard's tree construction does nothing but nest each
//! element in the one open around it, so the tree can be built in one pass over the text, at a
//! fraction of what html5ever's general machinery costs (its parse was the largest single cost of
//! converting an article). Anything that would make the standard do more (an element closed out
//! of order, a `<p>` left open where a block starts, a table, a script, a character reference
//! without its semicolon, a NUL) makes [`well_nested`] give up, and the caller parses the HTML
//! with html5ever as before. What [`well_nested`] builds is, node for node, what html5ever's
//! `parse_fragment` in a `<div>` builds: the tests compare the two over generated HTML.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use html5ever::tendril::StrTendril;
use html5ever::{Attribute, LocalName, QualName, ns};
use markup5ever_rcdom::{Handle, Node, NodeData};

/// What the standard's tree construction does with a start tag, for the elements this module
/// takes on. An element missing here is left to html5ever.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Closes an open `<p>` first (none may be open here).
    Block,
    /// A block that closes an open heading when it is the current node.
    Heading,
    /// A block whose first line feed is dropped.
    Pre,
    /// Closes an open `<li>` first (none may be open here).
    ListItem,
    /// `<a>`: closes an open `<a>` first (none may be open here).
    Link,
    /// A formatting element (`<b>`, `<em>`, …) or an ordinary inline one: nested as it comes.
    Inline,
    /// Has no content and no end tag.
    Void,
    /// A void element that closes an open `<p>` first (`<hr>`).
    VoidBlock,
}

fn role(name: &str) -> Option<Role> {
    Some(match name {
        "address" | "article" | "aside" | "blockquote" | "center" | "details" | "div"
        | "figcaption" | "figure" | "footer" | "header" | "hgroup" | "main" | "nav" | "ol"
        | "p" | "section" | "summary" | "ul" => Role::Block,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => Role::Heading,
        "pre" => Role::Pre,
        "li" => Role::ListItem,
        "a" => Role::Link,
        "b" | "big" | "code" | "em" | "i" | "s" | "small" | "strike" | "strong" | "tt" | "u"
        | "abbr" | "bdi" | "bdo" | "cite" | "data" | "del" | "dfn" | "ins" | "kbd" | "mark"
        | "q" | "samp" | "span" | "sub" | "sup" | "time" | "var" => Role::Inline,
        "br" | "img" | "wbr" => Role::Void,
        "hr" => Role::VoidBlock,
        _ => return None,
    })
}

/// Whether the standard counts `name` as special: an `<li>` looking for an open `<li>` to close
/// stops at one (other than `address`, `div` and `p`).
fn stops_list_item_search(name: &str) -> bool {
    !matches!(name, "address" | "div" | "p")
        && !matches!(role(name), Some(Role::Inline | Role::Link) | None)
}

/// The document html5ever's `parse_fragment` in a `<div>` makes of `html` (a document holding
/// one `html` element holding the fragment's nodes), or `None` when `html` is not plain,
/// well-nested HTML and html5ever must parse it.
pub(super) fn well_nested(html: &str) -> Option<Handle> {
    if html.starts_with('\u{feff}') || memchr::memchr(0, html.as_bytes()).is_some() {
        return None;
    }
    // The standard reads every CR and CRLF as one LF, in text and attribute values alike.
    let html: Cow<'_, str> = if memchr::memchr(b'\r', html.as_bytes()).is_some() {
        Cow::Owned(html.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(html)
    };
    let mut builder = Builder::new();
    let mut rest: &str = &html;
    let mut text = String::new();
    while !rest.is_empty() {
        let plain = memchr::memchr2(b'<', b'&', rest.as_bytes()).unwrap_or(rest.len());
        text.push_str(&rest[..plain]);
        rest = &rest[plain..];
        if let Some(after) = rest.strip_prefix('&') {
            rest = push_reference(after, &mut text)?;
            continue;
        }
        let Some(after) = rest.strip_prefix('<') else {
            break;
        };
        match after.as_bytes().first() {
            Some(b) if b.is_ascii_alphabetic() => {
                builder.text(&mut text);
                rest = builder.start_tag(after)?;
            }
            Some(b'/') => {
                builder.text(&mut text);
                rest = builder.end_tag(&after[1..])?;
            }
            Some(b'!') => {
                builder.text(&mut text);
                rest = builder.comment(&after[1..])?;
            }
            Some(b'?') => return None,
            // A `<` that opens nothing is text.
            _ => {
                text.push('<');
                rest = after;
            }
        }
    }
    builder.text(&mut text);
    Some(builder.document)
}

/// Reads a character reference, `s` being what follows its `&`, in text or in an attribute's
/// value: pushes onto `out` what it stands for (the `&` itself when it starts none) and returns
/// what follows it. `None` for a reference the standard reads in a way this module does not
/// follow (no semicolon after a known name, a number that is replaced).
fn push_reference<'a>(s: &'a str, out: &mut String) -> Option<&'a str> {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b'#') => {
            let (digits, radix) = match bytes.get(1) {
                Some(b'x' | b'X') => (&s[2..], 16),
                _ => (&s[1..], 10),
            };
            let len = digits
                .bytes()
                .take_while(|b| b.is_ascii_digit() || (radix == 16 && b.is_ascii_hexdigit()))
                .count();
            if len == 0 || len > 8 || digits.as_bytes().get(len) != Some(&b';') {
                return None;
            }
            let value = u32::from_str_radix(&digits[..len], radix).ok()?;
            // NUL, C1 controls, surrogates and out-of-range numbers are replaced; leave them
            // to html5ever.
            if value < 0x20 && !matches!(value, 0x09 | 0x0a) || (0x7f..=0x9f).contains(&value) {
                return None;
            }
            out.push(char::from_u32(value)?);
            Some(&digits[len + 1..])
        }
        Some(b) if b.is_ascii_alphanumeric() => {
            let len = bytes
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            let name = &s[..len];
            if bytes.get(len) == Some(&b';')
                && let Some(&(first, second)) = html5ever::data::NAMED_ENTITIES.get(&s[..=len])
                && first != 0
            {
                out.extend(char::from_u32(first));
                out.extend(char::from_u32(second).filter(|_| second != 0));
                return Some(&s[len + 1..]);
            }
            // A known name without its semicolon, as a prefix of a longer word, is read as the
            // reference in text and not in attributes: leave it to html5ever.
            let known_prefix = (1..=len).any(|end| {
                html5ever::data::NAMED_ENTITIES
                    .get(&name[..end])
                    .is_some_and(|&(first, _)| first != 0)
            });
            if known_prefix {
                return None;
            }
            out.push('&');
            Some(s)
        }
        _ => {
            out.push('&');
            Some(s)
        }
    }
}

/// The tree being built and the elements open in it.
struct Builder {
    document: Handle,
    /// Open elements, outermost first: the fragment's `html` element, then those inside it.
    open: Vec<(Handle, LocalName)>,
    open_paragraphs: usize,
    open_links: usize,
    /// The last start tag was `<pre>`: a line feed right after it is dropped.
    after_pre: bool,
}

impl Builder {
    fn new() -> Self {
        let document = Node::new(NodeData::Document);
        let html = element(LocalName::from("html"), Vec::new());
        append(&document, html.clone());
        Self {
            document,
            open: vec![(html, LocalName::from("html"))],
            open_paragraphs: 0,
            open_links: 0,
            after_pre: false,
        }
    }

    fn current(&self) -> &(Handle, LocalName) {
        // The `html` element is never closed, so the stack is never empty.
        &self.open[self.open.len() - 1]
    }

    /// Appends the pending `text` to the current element, merged into a text node that ends
    /// its children, as html5ever merges it.
    fn text(&mut self, text: &mut String) {
        let mut pending: &str = text;
        if std::mem::take(&mut self.after_pre) {
            pending = pending.strip_prefix('\n').unwrap_or(pending);
        }
        if pending.is_empty() {
            text.clear();
            return;
        }
        let parent = &self.current().0;
        let last = parent.children.borrow().last().cloned();
        match last.as_ref().map(|node| &node.data) {
            Some(NodeData::Text { contents }) => contents.borrow_mut().push_slice(pending),
            _ => append(
                parent,
                Node::new(NodeData::Text {
                    contents: RefCell::new(StrTendril::from_slice(pending)),
                }),
            ),
        }
        text.clear();
    }

    /// Reads a start tag, `s` following its `<`, and returns what follows the tag.
    fn start_tag<'a>(&mut self, s: &'a str) -> Option<&'a str> {
        let (name, rest) = tag_name(s)?;
        let role = role(&name)?;
        let (attrs, self_closing, rest) = attributes(rest)?;
        if self_closing && !matches!(role, Role::Void | Role::VoidBlock) {
            return None;
        }
        if matches!(
            role,
            Role::Block | Role::Heading | Role::Pre | Role::ListItem | Role::VoidBlock
        ) && self.open_paragraphs > 0
        {
            return None;
        }
        match role {
            Role::Heading if self::role(&self.current().1) == Some(Role::Heading) => return None,
            Role::ListItem => {
                for (_, open) in self.open.iter().rev() {
                    if &**open == "li" {
                        return None;
                    }
                    if stops_list_item_search(open) {
                        break;
                    }
                }
            }
            Role::Link if self.open_links > 0 => return None,
            _ => {}
        }
        let local = LocalName::from(&*name);
        let node = element(local.clone(), attrs);
        append(&self.current().0, node.clone());
        if !matches!(role, Role::Void | Role::VoidBlock) {
            self.open_paragraphs += usize::from(&*local == "p");
            self.open_links += usize::from(role == Role::Link);
            self.open.push((node, local));
        }
        if role == Role::Pre {
            if rest.starts_with('&') {
                return None;
            }
            self.after_pre = true;
        }
        Some(rest)
    }

    /// Reads an end tag, `s` following its `</`: it must close the current element.
    fn end_tag<'a>(&mut self, s: &'a str) -> Option<&'a str> {
        let (name, rest) = tag_name(s)?;
        let rest = rest.trim_start_matches(is_html_space).strip_prefix('>')?;
        if self.open.len() < 2 || *self.current().1 != *name {
            return None;
        }
        self.after_pre = false;
        if let Some((_, local)) = self.open.pop() {
            self.open_paragraphs -= usize::from(&*local == "p");
            self.open_links -= usize::from(&*local == "a");
        }
        Some(rest)
    }

    /// Reads a comment, `s` following its `<!`.
    fn comment<'a>(&mut self, s: &'a str) -> Option<&'a str> {
        let body = s.strip_prefix("--")?;
        if body.starts_with('>') || body.starts_with("->") {
            return None;
        }
        let end = body.find("-->")?;
        let contents = &body[..end];
        if contents.contains("--!") {
            return None;
        }
        self.after_pre = false;
        append(
            &self.current().0,
            Node::new(NodeData::Comment {
                contents: StrTendril::from_slice(contents),
            }),
        );
        Some(&body[end + 3..])
    }
}

fn element(name: LocalName, attrs: Vec<Attribute>) -> Handle {
    Node::new(NodeData::Element {
        name: QualName::new(None, ns!(html), name),
        attrs: RefCell::new(attrs),
        template_contents: RefCell::new(None),
        mathml_annotation_xml_integration_point: false,
    })
}

fn append(parent: &Handle, child: Handle) {
    child.parent.set(Some(Rc::downgrade(parent)));
    parent.children.borrow_mut().push(child);
}

/// What HTML's tokenizer counts as whitespace (CR is gone by now).
fn is_html_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | ' ')
}

/// A tag's name, lowercased, and what follows it. Letters and digits only.
fn tag_name(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let len = s.bytes().take_while(u8::is_ascii_alphanumeric).count();
    let rest = &s[len..];
    if len == 0
        || !matches!(rest.chars().next(), Some(c) if is_html_space(c) || c == '/' || c == '>')
    {
        return None;
    }
    let name = &s[..len];
    let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    };
    Some((name, rest))
}

/// A start tag's attributes (a repeated name keeps its first value, as the standard says),
/// whether it ends in `/>`, and what follows its `>`.
fn attributes(mut s: &str) -> Option<(Vec<Attribute>, bool, &str)> {
    let mut attrs: Vec<Attribute> = Vec::new();
    loop {
        s = s.trim_start_matches(is_html_space);
        if let Some(rest) = s.strip_prefix('>') {
            return Some((attrs, false, rest));
        }
        if let Some(rest) = s.strip_prefix("/>") {
            return Some((attrs, true, rest));
        }
        let len = s
            .bytes()
            .take_while(|b| {
                b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'<' | b'=' | b'/' | b'>')
            })
            .count();
        if len == 0 {
            return None;
        }
        let name = s[..len].to_ascii_lowercase();
        s = s[len..].trim_start_matches(is_html_space);
        let value = if let Some(rest) = s.strip_prefix('=') {
            let rest = rest.trim_start_matches(is_html_space);
            let (value, after) = attribute_value(rest)?;
            // A quoted value must be followed by a space, `/>` or `>`.
            if !(after.starts_with(is_html_space)
                || after.starts_with('>')
                || after.starts_with("/>"))
            {
                return None;
            }
            s = after;
            value
        } else {
            // No value: what follows starts another attribute or ends the tag.
            String::new()
        };
        if !attrs.iter().any(|attr| *attr.name.local == *name) {
            attrs.push(Attribute {
                name: QualName::new(None, ns!(), LocalName::from(name)),
                value: StrTendril::from(value),
            });
        }
    }
}

/// An attribute's value (quoted or not, references decoded) and what follows it.
fn attribute_value(s: &str) -> Option<(String, &str)> {
    let (quote, body) = match s.as_bytes().first()? {
        b'"' => (Some(b'"'), &s[1..]),
        b'\'' => (Some(b'\''), &s[1..]),
        b'>' => return None,
        _ => (None, s),
    };
    let mut value = String::new();
    let mut rest = body;
    loop {
        let stop = rest.bytes().position(|b| match quote {
            Some(q) => b == q || b == b'&',
            None => {
                b == b'&'
                    || b == b'>'
                    || matches!(b, b'\t' | b'\n' | b'\x0c' | b' ')
                    || matches!(b, b'"' | b'\'' | b'<' | b'=' | b'`')
            }
        })?;
        value.push_str(&rest[..stop]);
        rest = &rest[stop..];
        if let Some(after) = rest.strip_prefix('&') {
            rest = push_reference(after, &mut value)?;
            continue;
        }
        return match quote {
            Some(_) => Some((value, &rest[1..])),
            None if matches!(rest.as_bytes()[0], b'"' | b'\'' | b'<' | b'=' | b'`') => None,
            None => Some((value, rest)),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    /// Everything a tree holds, one node per line, indented by depth; and whether each node's
    /// parent pointer leads back to the node that holds it.
    fn dump(node: &Handle, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        match &node.data {
            NodeData::Document => {
                let _ = writeln!(out, "{pad}#document");
            }
            NodeData::Element {
                name,
                attrs,
                template_contents,
                ..
            } => {
                let _ = write!(out, "{pad}<{:?} {}", name.ns, name.local);
                for attr in attrs.borrow().iter() {
                    let _ = write!(
                        out,
                        " {:?}:{}={:?}",
                        attr.name.ns, attr.name.local, &*attr.value
                    );
                }
                let _ = writeln!(out, "> template: {}", template_contents.borrow().is_some());
            }
            NodeData::Text { contents } => {
                let _ = writeln!(out, "{pad}{:?}", &**contents.borrow());
            }
            NodeData::Comment { contents } => {
                let _ = writeln!(out, "{pad}<!--{:?}-->", &**contents);
            }
            other => {
                let _ = writeln!(out, "{pad}{other:?}");
            }
        }
        for child in node.children.borrow().iter() {
            let parent = child.parent.take();
            let held = parent.as_ref().and_then(std::rc::Weak::upgrade);
            if !held.is_some_and(|held| Rc::ptr_eq(&held, node)) {
                let _ = writeln!(out, "{pad}  (parent pointer lost)");
            }
            child.parent.set(parent);
            dump(child, depth + 1, out);
        }
    }

    fn tree(document: &Handle) -> String {
        let mut out = String::new();
        dump(document, 0, &mut out);
        out
    }

    /// The fast tree of `html`, checked against html5ever's; `None` when the fast path gave up.
    fn same_tree(html: &str) -> Option<String> {
        let fast = well_nested(html)?;
        let expected = tree(&crate::text::clean::html5ever_fragment(html));
        let built = tree(&fast);
        assert_eq!(built, expected, "the trees of {html:?} differ");
        Some(built)
    }

    #[test]
    fn plain_article_html_takes_the_fast_path_and_matches_html5ever() {
        let inputs = [
            "<p>Paragraph 1 of story 7. <strong>Key phrase</strong> appears, with a \
             <a href=\"/related/7-1\">related link</a> and some <em>emphasis</em>.</p>\n<p>Two</p>",
            "<h2 id=\"x\">Title &amp; more</h2><ul>\r\n<li>One <code>a &lt; b</code></li><li>Two</li></ul>",
            "<figure><img src=\"a.png\" alt='An \"image\"' width=600 /><figcaption>Caption&nbsp;here\
             </figcaption></figure><hr><blockquote><p>Quoted &#8220;words&#x201D;</p></blockquote>",
            "<pre>\nfn main() {}\n</pre><p>Text after</p>",
            "Loose text, a < b & c, <!-- a comment --> then <br/>a break <BR> and <B>bold</B>",
            "<div><p>in a div</p>tail <span lang=en class=\"a b\" class=c>span</span></div>",
            "",
        ];
        for html in inputs {
            assert!(
                same_tree(html).is_some(),
                "{html:?} did not take the fast path"
            );
        }
    }

    #[test]
    fn what_the_standard_reads_another_way_is_left_to_html5ever() {
        let inputs = [
            // A block inside an open paragraph closes it.
            "<p>one<p>two",
            "<p>one<div>two</div></p>",
            // Elements closed out of order.
            "<b><i>x</b></i>",
            "<a href=x>one<a href=y>two</a></a>",
            // A list item inside an open list item closes it.
            "<ul><li>one<li>two</ul>",
            // Tables move what is misplaced in them; scripts read raw text.
            "<table><tr><td>x</td></tr></table>",
            "<script>if (a < b) {}</script>",
            // References without a semicolon, replaced numbers.
            "AT&T &copy 2024",
            "<a href=\"?a=1&copy=2\">x</a>",
            "&#128;",
            "&#0;",
            "x\0y",
            // Self-closing non-void elements, bogus comments, end tags closing nothing.
            "<p/>text",
            "<!DOCTYPE html><p>x</p>",
            "<?php echo 1; ?>",
            "text</p>",
            "<br></br>",
            "<custom-element>x</custom-element>",
        ];
        for html in inputs {
            assert!(well_nested(html).is_none(), "{html:?} took the fast path");
        }
    }

    /// The texts of a feed file that look like markup: every XML text and CDATA section, or
    /// every JSON string. Read without the crate's parser, which the text rules sit below.
    fn marked_up_texts(body: &[u8]) -> Vec<String> {
        use quick_xml::events::Event;
        let mut texts = Vec::new();
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
            let mut pending = vec![json];
            while let Some(value) = pending.pop() {
                match value {
                    serde_json::Value::String(text) => texts.push(text),
                    serde_json::Value::Array(items) => pending.extend(items),
                    serde_json::Value::Object(fields) => pending.extend(fields.into_values()),
                    _ => {}
                }
            }
        } else {
            let mut reader = quick_xml::Reader::from_reader(body);
            reader.config_mut().check_end_names = false;
            let mut buf = Vec::new();
            // Ill-formed files are read past their errors, as far as the reader gets.
            let mut errors = 0;
            // The reader gives a text in pieces, split at each reference.
            let mut text = String::new();
            loop {
                match reader.read_event_into(&mut buf) {
                    Ok(Event::Text(piece)) => text.push_str(&piece[..]),
                    Ok(Event::GeneralRef(name)) => {
                        text.push('&');
                        text.push_str(&name[..]);
                        text.push(';');
                    }
                    Ok(Event::CData(cdata)) => texts.push(cdata[..].to_owned()),
                    Ok(Event::Eof) => break,
                    Err(_) if errors < 100 => errors += 1,
                    Err(_) => break,
                    Ok(_) => texts.push(crate::text::decode_entities(&std::mem::take(&mut text))),
                }
                buf.clear();
            }
        }
        texts.retain(|text| crate::text::looks_like_markup(text));
        texts
    }

    /// Every text with markup in the repository's feeds (the demo feeds, the reference entry
    /// and the conformance corpus) that takes the fast path builds html5ever's tree, and most
    /// take it.
    #[test]
    fn the_html_of_the_repositorys_feeds_builds_the_tree_html5ever_builds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in [
            "feeds",
            "tests/fixtures",
            "tests/fixtures/conformance/feeds",
        ] {
            for entry in std::fs::read_dir(root.join(dir)).expect("feeds").flatten() {
                if entry.path().is_file() {
                    files.push(entry.path());
                }
            }
        }
        let (mut fast, mut total) = (0, 0);
        for file in files {
            let body = std::fs::read(&file).expect("feed");
            for text in marked_up_texts(&body) {
                total += 1;
                fast += usize::from(same_tree(&text).is_some());
            }
        }
        assert!(total > 40, "only {total} texts with markup found");
        assert!(
            fast * 2 > total,
            "only {fast} of {total} took the fast path"
        );
    }

    /// Random HTML made of the pieces feed HTML is made of, well nested or not: whenever the
    /// fast path builds a tree, it is html5ever's.
    #[test]
    fn generated_html_builds_the_tree_html5ever_builds() {
        // What plain feed HTML is made of, and (picked less often) what it seldom holds.
        const NAMES: &[&str] = &[
            "p",
            "div",
            "blockquote",
            "ul",
            "ol",
            "li",
            "h1",
            "h3",
            "pre",
            "a",
            "b",
            "strong",
            "em",
            "i",
            "code",
            "span",
            "sup",
            "br",
            "img",
            "hr",
            "wbr",
            "figure",
            "figcaption",
            "P",
            "Strong",
            "section",
            "u",
        ];
        const ODD_NAMES: &[&str] = &["table", "td", "font", "dd", "script", "noscript", "x-y"];
        const ATTRIBUTES: &[&str] = &[
            "",
            "",
            " href=\"/x?a=1&amp;b=2\"",
            " href='https://example.org/a b'",
            " href=plain",
            " title=\"say &quot;hi&quot; &#169; &#xA9;\"",
            " class=a class=b",
            " hidden",
            " src=\"a.png\" width=\"1\"",
            " HREF=\"upper\"",
            " href = \"spaced\"",
            " data-x=\"&bogus;\"",
            " x=y/",
            " id=\"multi\nline\"",
        ];
        const ODD_ATTRIBUTES: &[&str] = &[
            " alt=\"&notit; &copy\"",
            " a=\"x\"b",
            " /",
            " a=\"x",
            " =x",
            " x=`y`",
        ];
        const TEXTS: &[&str] = &[
            "word",
            "word",
            "Some words.",
            " ",
            "  ",
            "\n",
            "\t",
            "*",
            "_",
            "[x]",
            "\\",
            "# ",
            "1. ",
            "- ",
            "+ ",
            "> ",
            "=",
            "`",
            "&amp;",
            "&lt;",
            "&gt;",
            "&",
            "& ",
            "&copy;",
            "&nbsp;",
            "&#38;",
            "&#x41;",
            "&#10;",
            "&bogus;",
            "<",
            "< b",
            "a<3",
            "é",
            "中文",
            "\r\n",
            "\r",
            "<!-- c -->",
            "<!-- a --- -->",
            "\u{a0}",
            "🙂",
        ];
        const ODD_TEXTS: &[&str] = &[
            "&copy",
            "&#0;",
            "&#128;",
            "&ampx",
            "<!--->",
            "<!DOCTYPE x>",
            "<?x?>",
            "</>",
            "</ p>",
            "\0",
        ];
        let pick = |rng: &mut fastrand::Rng,
                    usual: &'static [&'static str],
                    odd: &'static [&'static str]| {
            if rng.u8(0..40) == 0 {
                odd[rng.usize(..odd.len())]
            } else {
                usual[rng.usize(..usual.len())]
            }
        };
        let mut rng = fastrand::Rng::with_seed(20261206);
        let (mut fast, mut total) = (0, 0);
        for _ in 0..20_000 {
            let mut html = String::new();
            let mut open: Vec<&str> = Vec::new();
            for _ in 0..rng.usize(1..24) {
                match rng.u8(0..10) {
                    0..=2 => {
                        let name = pick(&mut rng, NAMES, ODD_NAMES);
                        let attrs = pick(&mut rng, ATTRIBUTES, ODD_ATTRIBUTES);
                        let close = if rng.u8(0..8) == 0 { "/>" } else { ">" };
                        let _ = write!(html, "<{name}{attrs}{close}");
                        if !matches!(name, "br" | "img" | "hr" | "wbr") {
                            open.push(name);
                        }
                    }
                    3..=4 => {
                        // Mostly the element that is open, sometimes another.
                        let name = if rng.u8(0..6) == 0 {
                            NAMES[rng.usize(..NAMES.len())]
                        } else {
                            match open.pop() {
                                Some(name) => name,
                                None => continue,
                            }
                        };
                        let _ = write!(html, "</{name}>");
                    }
                    _ => html.push_str(pick(&mut rng, TEXTS, ODD_TEXTS)),
                }
            }
            if rng.bool() {
                while let Some(name) = open.pop() {
                    let _ = write!(html, "</{name}>");
                }
            }
            total += 1;
            fast += usize::from(same_tree(&html).is_some());
        }
        // The generator must reach the fast path often enough for the comparison to mean
        // something, and the fallback too.
        assert!(
            fast * 5 > total,
            "only {fast} of {total} took the fast path"
        );
        assert!(
            fast * 10 < total * 9,
            "{fast} of {total} took the fast path"
        );
    }
}
