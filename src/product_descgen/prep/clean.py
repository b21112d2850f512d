"""Text cleaning for raw catalogue text: markup, entities, whitespace, boilerplate, repeats."""

from __future__ import annotations

import re
import warnings
from typing import Any

from product_descgen.prep.config import CleaningParams

# Sentence or line boundaries: repeated blocks in raw catalogues are split by either.
_SEGMENT_SPLIT = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2060\ufeff]")
_WS = re.compile(r"\s+")
_KEY_EDGE = re.compile(r"^[\s:;,.\-]+|[\s:;,.\-]+$")


# Elements a browser shows on lines of their own: their text is not run into the next's.
_BLOCKS = [
    "address", "article", "aside", "blockquote", "caption", "dd", "div", "dl", "dt",
    "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
    "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
]  # fmt: skip
_BREAK = "\ue000"  # marks a block's end in the parsed text (a private-use character)
_BREAKS = re.compile(rf"\s*{_BREAK}[\s{_BREAK}]*")
_ENDERS = ".!?:;,…"  # a block ending in one of these needs no full stop
_BLOCK_END = re.compile(r"(?i)<\s*(br|/p|/div|/li)\s*/?\s*>")  # a stray one too ("a</p>b")


def _cells(row: Any) -> str:
    """A table row's text: a pair of cells as "name: value", more cells joined by commas."""
    cells = [
        collapse_whitespace(c.get_text(" ")) for c in row.find_all(["td", "th"], recursive=False)
    ]
    cells = [c for c in cells if c]
    return ": ".join(cells) if len(cells) == 2 else ", ".join(cells)  # noqa: PLR2004


def _terms(soup: Any) -> None:
    """Each definition term joined to its definition: "<dt>Width</dt><dd>50 cm</dd>" is
    "Width: 50 cm"."""
    for term in soup.find_all("dt"):
        definition = term.find_next_sibling()
        if definition is not None and definition.name == "dd":
            text = collapse_whitespace(definition.get_text(" "))
            definition.decompose()
            term.append(f": {text}")


def strip_markup(text: str, sentences: bool = False) -> str:
    """The text a browser shows for ``text``: tags removed, each block (paragraph, heading,
    list item, table row, line break) on a line of its own, a table row's two cells and a
    definition list's term and definition as "name: value"; comments and what scripts and
    styles hold (code, not text about the product) dropped; entities decoded. ``sentences``
    (a description): a block that ends without punctuation ends with a full stop, so list
    items and headings stay apart once lines are joined. Parsed as HTML5 does (Python's
    ``html.parser`` under Beautiful Soup), so a ``<`` before a digit or a space is text: "<40
    dB ... >10 h" keeps everything between (as in a browser, "<iPhone 12" opens a tag and
    "</2" a comment: their text is lost)."""
    if "<" not in text and "&" not in text:
        return text.replace("\xa0", " ")
    from bs4 import BeautifulSoup, Comment, MarkupResemblesLocatorWarning

    with warnings.catch_warnings():  # a short text can look like a file name or a URL
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(_BLOCK_END.sub(_BREAK, text), "html.parser")
    for code in soup(["script", "style"]):
        code.decompose()
    for comment in soup.find_all(string=lambda node: isinstance(node, Comment)):
        comment.extract()
    for row in soup.find_all("tr"):
        row.string = _cells(row)
    _terms(soup)
    for block in soup.find_all(_BLOCKS):
        block.insert_before(_BREAK)
        block.insert_after(_BREAK)
    shown = soup.get_text().replace("\xa0", " ")

    def line_end(match: re.Match) -> str:
        if match.start() == 0:  # the whitespace before a break is part of its match
            return ""
        end = "" if not sentences or shown[match.start() - 1] in _ENDERS else "."
        return end if match.end() == len(shown) else f"{end}\n"

    return _BREAKS.sub(line_end, shown).strip() if _BREAK in shown else shown


def remove_boilerplate(text: str, patterns: list[str], title: str) -> str:
    """Drop every match of the (case-insensitive) patterns; ``{title}`` means the title."""
    for pattern in patterns:
        regex = pattern.replace("{title}", re.escape(title))
        text = re.sub(regex, "\n", text, flags=re.IGNORECASE)
    return text


def _segment_key(segment: str) -> str:
    return _WS.sub(" ", segment).strip(" .!?").casefold()


def dedupe_segments(text: str) -> str:
    """Keep the first occurrence of each sentence or line (compared case-insensitively)."""
    seen: set[str] = set()
    kept = []
    for segment in _SEGMENT_SPLIT.split(text):
        key = _segment_key(segment)
        if key and key not in seen:
            seen.add(key)
            kept.append(segment.strip())
    return "\n".join(kept)


def strip_title_prefix(text: str, title: str) -> str:
    """Drop the title when the text merely opens by repeating it."""
    stripped = text.lstrip()
    if title and stripped.casefold().startswith(title.casefold()):
        rest = stripped[len(title) :]
        if not rest or not rest[0].isalnum():  # a whole-word repeat, not "Cup" in "Cupboard"
            return rest.lstrip(" \t:-,.|\n")
    return text


def collapse_whitespace(text: str) -> str:
    """Tabs, newlines and runs of spaces become single spaces; control and invisible format
    characters (NUL, escape codes, zero-width spaces) are dropped."""
    return _WS.sub(" ", _CONTROL.sub("", text)).strip()


def clean_description(text: str, title: str, params: CleaningParams) -> str:
    """The full cleaning chain for an original description."""
    text = strip_markup(text, sentences=True)
    text = remove_boilerplate(text, params.boilerplate_patterns, title)
    if params.strip_title_prefix:
        text = strip_title_prefix(text, title)
    if params.dedupe_sentences:
        text = dedupe_segments(text)
    return collapse_whitespace(text)


def normalise_key(key: str) -> str:
    """``'  color: '`` -> ``'Color'``: single spaces, no edge punctuation, capital first letter."""
    key = _KEY_EDGE.sub("", _WS.sub(" ", strip_markup(key)))
    return key[:1].upper() + key[1:]


def clean_attributes(attributes: dict[str, str]) -> dict[str, str]:
    """Clean values, normalise keys and merge keys that differ only in case or spacing."""
    out: dict[str, str] = {}
    by_fold: dict[str, str] = {}
    for raw_key, raw_value in attributes.items():
        key = normalise_key(raw_key)
        value = collapse_whitespace(strip_markup(raw_value))
        if not key or not value:
            continue
        key = by_fold.setdefault(key.casefold(), key)
        if key in out and value.casefold() not in out[key].casefold():
            out[key] = f"{out[key]}; {value}"
        else:
            out.setdefault(key, value)
    return out


def clean_product(product: dict[str, Any], params: CleaningParams) -> dict[str, Any]:
    """A cleaned copy of one canonical product (the input is not modified)."""
    title = collapse_whitespace(strip_markup(product["title"]))
    return {
        **product,
        "title": title,
        "category": collapse_whitespace(product["category"]),
        "attributes": clean_attributes(product["attributes"]),
        "description": clean_description(product["description"], title, params),
    }


def content_key(product: dict[str, Any]) -> tuple[str, str, str]:
    """What makes two products exact duplicates: same title, attributes and description."""
    attrs = "\n".join(f"{k}={v}" for k, v in sorted(product["attributes"].items()))
    return (product["title"].casefold(), attrs.casefold(), product["description"].casefold())
