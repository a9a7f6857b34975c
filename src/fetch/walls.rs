//! Anti-bot walls: a server (or the service in front of it) that answers a bot check, a
//! challenge page or a block page instead of the feed. Told apart from a feed that is not one
//! (an HTML page, a moved feed) so that `status` says what happened and what may help, instead
//! of "not a feed" or a bare 403.
//!
//! Recognised by what the services themselves send: a response header some of them set on
//! every challenge, or the markers of their challenge and block pages in the first bytes of the
//! body.

use reqwest::header::HeaderMap;

/// How much of an error response's body is read to look for a wall's page.
pub const PAGE_PREFIX: usize = 16 * 1024;

/// What the advice is, whatever the wall: the ways a feed behind one is usually reached.
pub const HINT: &str = "the site checks for bots; a browser's User-Agent or the site's own \
                        credentials in the source's `headers`, a longer `interval`, or asking \
                        the site to allow this client may help";

/// A wall recognised: the service and what it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wall {
    pub service: &'static str,
    pub answer: &'static str,
}

impl std::fmt::Display for Wall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.service, self.answer)
    }
}

/// Headers services set on their challenges and blocks, and what they mean.
const HEADERS: &[(&str, Wall)] = &[
    (
        "cf-mitigated",
        Wall {
            service: "Cloudflare",
            answer: "challenge",
        },
    ),
    (
        "x-amzn-waf-action",
        Wall {
            service: "AWS WAF",
            answer: "challenge",
        },
    ),
    (
        "x-datadome",
        Wall {
            service: "DataDome",
            answer: "bot check",
        },
    ),
    (
        "x-sucuri-block",
        Wall {
            service: "Sucuri",
            answer: "block",
        },
    ),
];

/// Markers of challenge and block pages (lowercase), and whose pages they are.
const PAGES: &[(&str, Wall)] = &[
    ("/cdn-cgi/challenge-platform/", CLOUDFLARE_CHALLENGE),
    ("_cf_chl_opt", CLOUDFLARE_CHALLENGE),
    ("cf-browser-verification", CLOUDFLARE_CHALLENGE),
    ("<title>just a moment...</title>", CLOUDFLARE_CHALLENGE),
    (
        "attention required! | cloudflare",
        Wall {
            service: "Cloudflare",
            answer: "block page",
        },
    ),
    (
        "captcha-delivery.com",
        Wall {
            service: "DataDome",
            answer: "captcha",
        },
    ),
    (
        "awswaf",
        Wall {
            service: "AWS WAF",
            answer: "challenge",
        },
    ),
    (
        "sucuri website firewall",
        Wall {
            service: "Sucuri",
            answer: "block page",
        },
    ),
    (
        "ddos-guard",
        Wall {
            service: "DDoS-Guard",
            answer: "check",
        },
    ),
    (
        "errors.edgesuite.net",
        Wall {
            service: "Akamai",
            answer: "block page",
        },
    ),
];

const CLOUDFLARE_CHALLENGE: Wall = Wall {
    service: "Cloudflare",
    answer: "challenge",
};

/// The wall a response's headers announce, if any.
pub fn in_headers(headers: &HeaderMap) -> Option<Wall> {
    HEADERS
        .iter()
        .find(|(name, _)| headers.contains_key(*name))
        .map(|(_, wall)| *wall)
}

/// The wall whose page a body is, if any, from its first [`PAGE_PREFIX`] bytes. Only a body
/// that is not a feed is looked at, so a feed that mentions these words stays a feed.
pub fn in_page(body: &[u8]) -> Option<Wall> {
    let head = &body[..body.len().min(PAGE_PREFIX)];
    let text = String::from_utf8_lossy(head).to_lowercase();
    PAGES
        .iter()
        .find(|(marker, _)| text.contains(marker))
        .map(|(_, wall)| *wall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walls_are_told_by_their_headers_and_pages() {
        let mut headers = HeaderMap::new();
        assert_eq!(in_headers(&headers), None);
        headers.insert("cf-mitigated", "challenge".parse().expect("value"));
        assert_eq!(in_headers(&headers), Some(CLOUDFLARE_CHALLENGE));
        let page = b"<!DOCTYPE html><html><head><title>Just a moment...</title>";
        assert_eq!(in_page(page), Some(CLOUDFLARE_CHALLENGE));
        let datadome = b"<html><script src=\"https://ct.captcha-delivery.com/c.js\"></script>";
        assert_eq!(in_page(datadome).map(|w| w.service), Some("DataDome"));
        assert_eq!(in_page(b"<html><title>Our blog</title></html>"), None);
        let wall = in_page(page).expect("a wall");
        assert_eq!(wall.to_string(), "Cloudflare challenge");
    }
}
