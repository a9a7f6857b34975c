#!/usr/bin/env python3
"""Writes the feedparser expectations of Gazette's conformance test.

Runs Python feedparser 6.0.x over every file in tests/fixtures/conformance/feeds/ and writes
tests/fixtures/conformance/expected.json: per file, the number of entries and, per entry in
document order, its title, link, date and authors, normalized to what Gazette promises (the
rules are listed in tests/fixtures/conformance/README.md and in the functions below).

JSON Feed files (*.json) are left out: feedparser 6 does not read JSON Feed. Their expectations,
and those of files where Gazette departs from feedparser on purpose, are written by hand in
tests/fixtures/conformance/expected-manual.json, which the test lays over this file.

Usage (from the repository root):

    pip install feedparser==6.0.11
    python3 scripts/conformance_oracle.py          # rewrite expected.json
    python3 scripts/conformance_oracle.py --check  # fail if expected.json is out of date

The output depends only on the corpus and on feedparser's version: keys are sorted and nothing
in it comes from the clock or the machine.
"""

import argparse
import html.parser
import json
import re
import sys
import time
from pathlib import Path

import feedparser

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "conformance"
FEEDS = CORPUS / "feeds"
EXPECTED = CORPUS / "expected.json"
MANUAL = CORPUS / "expected-manual.json"

# The URL every file is read as if fetched from: relative links resolve against BASE + name,
# the same URL the test passes to `gazette preview --base`.
BASE = "http://127.0.0.1/conformance/"

HTML_TYPES = {"text/html", "application/xhtml+xml", "html", "xhtml"}


def collapse(text):
    """Runs of whitespace become one space; the ends are trimmed."""
    return re.sub(r"\s+", " ", text).strip()


class _TextOnly(html.parser.HTMLParser):
    """The text of an HTML fragment: tags dropped, entities and character references decoded."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def html_to_text(markup):
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def title_of(entry):
    """feedparser's title; tags stripped and entities decoded when feedparser says it is HTML;
    whitespace collapsed. None when there is none (Gazette then makes one up)."""
    title = entry.get("title")
    if title is None:
        return None
    kind = (entry.get("title_detail") or {}).get("type") or ""
    if kind.lower() in HTML_TYPES:
        title = html_to_text(title)
    title = collapse(title)
    return title or None


def link_of(entry):
    """feedparser's link; None when absent or empty."""
    link = entry.get("link")
    if link is None:
        return None
    link = link.strip()
    return link or None


def date_of(entry):
    """published, else updated, else created, as RFC 3339 UTC; None when none was read."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", parsed)
    return None


def authors_of(entry):
    """feedparser's `authors` (or its single `author_detail`) as {name, email, uri}.

    Gazette's bylines always carry a name: an author without one is named by its email
    address, and one with neither a name nor an email address is left out."""
    people = entry.get("authors")
    if not people:
        detail = entry.get("author_detail")
        people = [detail] if detail else []
    out = []
    for person in people:
        name = collapse(person.get("name") or "") or None
        email = (person.get("email") or "").strip() or None
        uri = (person.get("href") or "").strip() or None
        if name is None:
            name = email
        if name is None:
            continue
        out.append({"name": name, "email": email, "uri": uri})
    return out


def read(path):
    data = path.read_bytes()
    parsed = feedparser.parse(data, response_headers={"content-location": BASE + path.name})
    entries = [
        {
            "title": title_of(entry),
            "link": link_of(entry),
            "date": date_of(entry),
            "authors": authors_of(entry),
        }
        for entry in parsed.entries
    ]
    return {"count": len(entries), "entries": entries}


def render(expected):
    return json.dumps(expected, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if expected.json is out of date")
    args = parser.parse_args()

    if not feedparser.__version__.startswith("6.0."):
        sys.exit(f"feedparser 6.0.x is the oracle; this is {feedparser.__version__}")

    names = sorted(p.name for p in FEEDS.iterdir() if p.is_file())
    manual = json.loads(MANUAL.read_text(encoding="utf-8")) if MANUAL.exists() else {}
    expected = {}
    for name in names:
        if name.endswith(".json"):
            if name not in manual:
                sys.exit(f"{name}: a JSON Feed file needs a hand-written expectation in {MANUAL.name}")
            continue
        expected[name] = read(FEEDS / name)
    stale = sorted(set(manual) - set(names))
    if stale:
        sys.exit(f"{MANUAL.name} names files that are not in the corpus: {', '.join(stale)}")

    text = render(expected)
    if args.check:
        current = EXPECTED.read_text(encoding="utf-8") if EXPECTED.exists() else ""
        if current != text:
            sys.exit(f"{EXPECTED} is out of date; run scripts/conformance_oracle.py")
        print(f"{EXPECTED.name} is up to date ({len(expected)} files)")
        return
    EXPECTED.write_text(text, encoding="utf-8")
    print(f"wrote {EXPECTED.relative_to(ROOT)}: {len(expected)} files, "
          f"{sum(e['count'] for e in expected.values())} entries")


if __name__ == "__main__":
    main()
