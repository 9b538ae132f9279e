"""Portal HTML -> clean text (for matching) and sanitised HTML (for display).

Descriptions and conditions arrive as HTML pasted from Word and the portal's editor: inline
styles, `<SPAN class="topicdescriptionkind">` headings, `&nbsp;` runs, U+FEFF and zero-width
characters inside empty `<em></em>`. The text keeps headings, paragraphs and list items on
separate lines (blocks separated by a blank line) so that words from two paragraphs are never
glued together; the HTML keeps only harmless tags and links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

# BOM, zero-width space/joiners, word joiner, soft hyphen: invisible, and they split words.
_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060\u00ad]")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2002\u2003\u2009\u202f]+")

_DROP = {"script", "style", "iframe", "object", "embed", "form", "input", "button", "head",
         "meta", "link", "noscript", "svg", "img"}
_BLOCKS = {"p", "div", "section", "article", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
           "li", "table", "tr", "blockquote", "pre", "dl", "dt", "dd", "header", "footer"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_KEEP = {"p", "br", "ul", "ol", "li", "strong", "b", "em", "i", "u", "a", "h3", "h4", "h5",
         "h6", "table", "thead", "tbody", "tr", "td", "th", "sup", "sub", "blockquote", "pre",
         "code", "dl", "dt", "dd"}
_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_HEADING_CLASS = "topicdescriptionkind"
_LONE_BULLET = re.compile(r"(?m)^-\n+")


@dataclass(frozen=True)
class CleanHTML:
    text: str
    html: str


def strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", text)


def clean_text(text: str) -> str:
    """Plain text: invisible characters removed, spaces collapsed, at most one blank line."""
    lines = [_SPACES.sub(" ", line).strip() for line in strip_invisible(text).splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def clean_html(html: str | None) -> CleanHTML:
    """Parse once, return both the readable text and the sanitised HTML."""
    if not html or not html.strip():
        return CleanHTML("", "")
    soup = BeautifulSoup(strip_invisible(html), "html.parser")
    # one walk instead of several find_all calls: bs4's matching machinery is the slow part
    headings: list[Tag] = []
    doomed: list[Tag | Comment] = []
    for node in soup.descendants:
        if isinstance(node, Comment):
            doomed.append(node)
        elif isinstance(node, Tag):
            if node.name in _DROP:
                doomed.append(node)
            elif _HEADING_CLASS in (node.get("class") or ()):
                headings.append(node)
    for node in doomed:
        if isinstance(node, Tag):
            node.decompose()
        else:
            node.extract()
    for tag in headings:
        # "Expected Outcome:" / "Scope:" labels are headings in all but name.
        tag.name = "h4"
        after = tag.next_sibling
        if isinstance(after, NavigableString) and after.lstrip().startswith(":"):
            # older records write <SPAN class=...>Scope</SPAN>: -- keep the colon in the heading
            tag.append(":")
            after.replace_with(after.lstrip()[1:])
    # "<li><p>x</p></li>" would leave the bullet alone on its line
    text = _LONE_BULLET.sub("- ", clean_text(_text_of(soup)))
    _sanitise(soup)
    return CleanHTML(text=text, html=str(soup).strip())


def _text_of(root: Tag) -> str:
    parts: list[str] = []

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                parts.append(str(child).replace("\n", " "))
            elif isinstance(child, Tag):
                name = child.name
                if name == "br":
                    parts.append("\n")
                    continue
                block = name in _BLOCKS
                gap = "\n\n" if name in _HEADINGS or name == "p" else "\n"
                if block:
                    parts.append(gap)
                if name == "li":
                    parts.append("- ")
                if name in ("td", "th"):
                    parts.append(" ")
                walk(child)
                # consecutive list items stay on consecutive lines
                if block and name != "li":
                    parts.append(gap)

    walk(root)
    return "".join(parts)


def _tags(root: Tag) -> list[Tag]:
    return [node for node in root.descendants if isinstance(node, Tag)]


def _sanitise(soup: BeautifulSoup) -> None:
    for tag in _tags(soup):
        name = tag.name
        if name in ("h1", "h2"):
            tag.name = "h3"
        elif name == "div":
            inner = any(isinstance(c, Tag) and c.name in _BLOCKS for c in tag.descendants)
            tag.name = "div" if inner else "p"
        if tag.name not in _KEEP and tag.name != "div":
            tag.unwrap()
            continue
        href = tag.get("href") if tag.name == "a" else None
        tag.attrs = {}
        if isinstance(href, str) and href.strip().lower().startswith(_SAFE_SCHEMES):
            tag.attrs = {"href": href.strip(), "rel": "noopener noreferrer"}
    empty_prone = {"p", "strong", "b", "em", "i", "u"}
    for tag in _tags(soup):
        if tag.name == "div":
            tag.unwrap()
    # Word leaves empty paragraphs and spans behind; they only add vertical noise.
    for tag in reversed(_tags(soup)):
        if (tag.name in empty_prone and not tag.get_text(strip=True)
                and not any(isinstance(c, Tag) and c.name in ("br", "a") for c in tag.descendants)):
            tag.decompose()
