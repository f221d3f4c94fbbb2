#!/usr/bin/env python3
"""Checks every link in the built book (docs/book) and in the README: a relative link must name
a file that exists, and a `#fragment` an id in that file. External links (http, https, mailto)
are not fetched: CI has no internet, and the book must read offline.

Usage: scripts/check-book-links.py [BOOK_DIR]   (default docs/book, after `mdbook build docs`)
Exit 0 when every link resolves, 1 listing each broken one (file: link) otherwise."""

import html.parser
import pathlib
import re
import sys
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if value and ((tag == "a" and name == "href") or (tag in ("img", "script", "link") and name in ("src", "href"))):
                self.links.append(value)


def parse(path, cache={}):
    if path not in cache:
        parser = Links()
        parser.feed(path.read_text(encoding="utf-8"))
        cache[path] = parser
    return cache[path]


def external(link):
    return re.match(r"^[a-z][a-z0-9+.-]*:", link) is not None


def check_book(book):
    broken = []
    for page in sorted(book.rglob("*.html")):
        for link in parse(page).links:
            if external(link):
                continue
            target, _, fragment = urllib.parse.unquote(link).partition("#")
            path = (page.parent / target).resolve() if target else page
            if path.is_dir():
                path = path / "index.html"
            if not path.is_file():
                broken.append(f"{page.relative_to(book)}: {link} (no such file)")
            elif fragment and path.suffix == ".html" and fragment not in parse(path).ids:
                broken.append(f"{page.relative_to(book)}: {link} (no id `{fragment}`)")
    return broken


def check_readme():
    readme = ROOT / "README.md"
    broken = []
    for link in re.findall(r"\]\(([^)\s]+)\)", readme.read_text(encoding="utf-8")):
        target = link.partition("#")[0]
        if external(link) or not target:
            continue
        if not (ROOT / target).exists():
            broken.append(f"README.md: {link} (no such file)")
    return broken


def main():
    book = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "book"
    if not (book / "index.html").is_file():
        sys.exit(f"error: {book} holds no built book: run `mdbook build docs` first")
    broken = check_book(book) + check_readme()
    for line in broken:
        print(f"broken link: {line}")
    pages = len(list(book.rglob("*.html")))
    print(f"{pages} pages checked: {len(broken)} broken links" if broken else f"{pages} pages checked: every link resolves")
    sys.exit(1 if broken else 0)


main()
