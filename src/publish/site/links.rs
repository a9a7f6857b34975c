//! Where the reader pages link to: absolute paths from the server's root when the daemon serves
//! them, relative file paths when `build --site` writes them (so the folder works anywhere,
//! opened from disk included).

/// How one page links to the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// What leads from this page to the site's root: `/`, or `../` once per folder deep.
    root: String,
    /// What a folder's address ends with: nothing on a server, `index.html` in files.
    index: &'static str,
    /// Whether the daemon serves the page (there is a search page, the Markdown files and the
    /// JSON Feed), or it is a file.
    server: bool,
}

use crate::publish::feeds::url_segment as segment;

impl Links {
    /// A page served by the daemon.
    pub fn server() -> Self {
        Self {
            root: "/".to_owned(),
            index: "",
            server: true,
        }
    }

    /// A page written as the file at `path` (relative to the site's folder).
    pub fn file(path: &str) -> Self {
        Self {
            root: "../".repeat(path.matches('/').count()),
            index: "index.html",
            server: false,
        }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn index(&self) -> &'static str {
        self.index
    }

    pub fn has_search(&self) -> bool {
        self.server
    }

    pub fn is_server(&self) -> bool {
        self.server
    }

    /// The page of the article archived at `path` (`ft/2024/05/13/slug.md`).
    pub fn article(&self, path: &str) -> String {
        format!("{}{}", self.root, article_file(path))
    }

    /// The article's Markdown file, which only the server offers.
    pub fn markdown(&self, path: &str) -> Option<String> {
        self.server.then(|| {
            let encoded: Vec<String> = path.split('/').map(segment).collect();
            format!("{}articles/{}", self.root, encoded.join("/"))
        })
    }

    pub fn tag(&self, tag: &str) -> String {
        format!("{}tags/{}/{}", self.root, segment(tag), self.index)
    }

    pub fn source(&self, id: &str) -> String {
        format!("{}sources/{}/{}", self.root, segment(id), self.index)
    }

    pub fn month(&self, year: i32, month: u32) -> String {
        format!("{}archive/{year:04}/{month:02}/{}", self.root, self.index)
    }

    /// Page `n` of the listing at `base` (`tags/world/`, or empty for the index).
    pub fn list_page(&self, base: &str, n: usize) -> String {
        if n <= 1 {
            format!("{}{base}{}", self.root, self.index)
        } else {
            format!("{}{base}page/{n}/{}", self.root, self.index)
        }
    }

    /// A feed file, by its path relative to the merged feed's folder (`tags/world.xml`).
    pub fn feed(&self, relative: &str) -> String {
        let encoded: Vec<String> = relative.split('/').map(segment).collect();
        format!("{}{}", self.root, encoded.join("/"))
    }

    /// Page `n` of the results for `query`.
    pub fn search(&self, query: &str, n: usize) -> String {
        let mut address = format!("{}search?q={}", self.root, segment(query));
        if n > 1 {
            address.push_str(&format!("&page={n}"));
        }
        address
    }
}

/// Where an article's page lives, relative to the root: `articles/ft/2024/05/13/slug.html`,
/// each part percent-encoded.
pub fn article_file(path: &str) -> String {
    let stem = path.strip_suffix(".md").unwrap_or(path);
    let encoded: Vec<String> = stem.split('/').map(segment).collect();
    format!("articles/{}.html", encoded.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_and_file_links() {
        let server = Links::server();
        assert_eq!(
            server.article("ft/2024/a b.md"),
            "/articles/ft/2024/a%20b.html"
        );
        assert_eq!(server.tag("中文"), "/tags/%E4%B8%AD%E6%96%87/");
        assert_eq!(server.list_page("", 1), "/");
        assert_eq!(server.list_page("tags/x/", 3), "/tags/x/page/3/");
        let file = Links::file("tags/x/page/2/index.html");
        assert_eq!(file.root(), "../../../../");
        assert_eq!(file.tag("x"), "../../../../tags/x/index.html");
        assert_eq!(
            Links::file("index.html").list_page("", 2),
            "page/2/index.html"
        );
        assert_eq!(file.markdown("a.md"), None);
    }
}
