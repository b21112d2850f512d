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
# Where a block ends, and where a line breaks (<br>) inside one, in the parsed text: characters
# of Unicode's private-use area, removed from the input first.
_BLOCK, _LINE = "\ue000", "\ue001"
_BREAK_SPLIT = re.compile(f"([{_BLOCK}{_LINE}])")
_STRAY_END = re.compile(r"(?i)<\s*/\s*(p|div|li)\s*>")  # one without its start tag too
_LINE_BREAK = re.compile(r"(?i)<\s*br\b[^>]*>")  # replaced before parsing: linear in their number
_MARK_ENTITY = re.compile(r"(?i)&#(?:x0*e00[01]|0*5734[45]);")  # a marker written as an entity
_ENDERS = tuple(".!?:;,…")  # a line ending in one of these needs no full stop
NAME_AND_VALUE = 2  # a table row of two cells reads "name: value"


def _inline(element: Any) -> str:
    """An element's text on one line (the blocks and breaks inside it become spaces)."""
    text = element.get_text()
    return collapse_whitespace(text.replace(_BLOCK, " ").replace(_LINE, " "))


def _name_and_value(parts: list[str]) -> str:
    """A row's cells, or a term and its definition: two as "name: value" (a name's own colon
    not doubled), more joined by commas."""
    parts = [p for p in parts if p]
    if len(parts) == NAME_AND_VALUE:
        return f"{parts[0].rstrip(' :')}: {parts[1]}"
    return ", ".join(parts)


def _close_cells(soup: Any) -> None:
    """Table cells and rows as HTML5 builds them where end tags are left out (html.parser
    nests "<td>Colour<td>Red" as a cell in a cell): a cell or row opened inside another is
    moved after it, and cells outside any row get one, as a browser's table shows them."""
    for tag in soup.find_all(["tr", "td", "th"]):  # document order: outer ones first
        closes = ("tr", "td", "th") if tag.name == "tr" else ("td", "th")
        holder = None  # the outermost element of its own table that it closes
        for parent in tag.parents:
            if parent.name == "table":
                break
            holder = parent if parent.name in closes else holder
        if holder is not None:
            holder.insert_after(tag.extract())
    for cell in soup.find_all(["td", "th"]):
        if cell.parent.name in ("table", "thead", "tbody", "tfoot"):
            row = cell.wrap(soup.new_tag("tr"))
            for sibling in row.find_next_siblings():  # elements: the spaces between are left
                if sibling.name not in ("td", "th"):
                    break
                row.append(sibling.extract())


def _pairs(soup: Any) -> None:
    """Each table row as its cells' :func:`_name_and_value`; each definition term joined to
    its definition ("<dt>Width</dt><dd>50 cm</dd>": "Width: 50 cm")."""
    for row in reversed(soup.find_all("tr")):  # a table nested in a cell first
        row.string = _name_and_value(
            [_inline(c) for c in row.find_all(["td", "th"], recursive=False)]
        )
    for term in soup.find_all("dt"):
        definition = term.find_next_sibling()
        if definition is not None and definition.name == "dd":
            term.string = _name_and_value([_inline(term), _inline(definition)])
            definition.decompose()


def _lines(shown: str, sentences: bool) -> str:
    """The parsed text's lines, one per block or line break. ``sentences``: a line ending
    without punctuation gets a full stop, unless only a <br> parts it from a next line that
    goes on in lower case (a sentence broken mid-way)."""
    parts = _BREAK_SPLIT.split(shown)
    lines: list[str] = []
    block_after: list[bool] = []
    marks = [*parts[1::2], _BLOCK]
    for piece, mark, before in zip(parts[0::2], marks, [_BLOCK, *marks], strict=False):
        if piece.strip():
            lines.append(piece.strip())
            block_after.append(mark == _BLOCK)
        elif lines and (mark == _BLOCK or before == _LINE):  # two <br> in a row end a block
            block_after[-1] = True
    if not sentences or not lines:
        return "\n".join(lines)
    ended = []
    for line, block, after in zip(lines, block_after, [*lines[1:], ""], strict=True):
        goes_on = not block and after[:1].islower()
        ended.append(line if line.endswith(_ENDERS) or goes_on else f"{line}.")
    return "\n".join(ended)


def strip_markup(text: str, sentences: bool = False) -> str:
    """The text a browser shows for ``text``: tags removed, each block (paragraph, heading,
    list item, table row) and each <br> line on a line of its own, a table row's two cells and
    a definition list's term and definition as "name: value"; comments and what scripts and
    styles hold (code, not text about the product) dropped; entities decoded. ``sentences``
    (a description): lines end with a full stop (:func:`_lines`), so list items and headings
    stay apart once lines are joined. Parsed as HTML5 does (Python's ``html.parser`` under
    Beautiful Soup), so a ``<`` before a digit or a space is text: "<40 dB ... >10 h" keeps
    everything between (as in a browser, "<iPhone 12" opens a tag and "</2" a comment: their
    text is lost)."""
    if "<" not in text and "&" not in text:
        return text.replace("\xa0", " ")
    from bs4 import BeautifulSoup, Comment, MarkupResemblesLocatorWarning

    text = _MARK_ENTITY.sub("", text.replace(_BLOCK, "").replace(_LINE, ""))
    text = _LINE_BREAK.sub(_LINE, _STRAY_END.sub(_BLOCK, text))
    with warnings.catch_warnings():  # a short text can look like a file name or a URL
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(text, "html.parser")
    for code in soup(["script", "style"]):
        code.decompose()
    for comment in soup.find_all(string=lambda node: isinstance(node, Comment)):
        comment.extract()
    _close_cells(soup)
    for block in soup.find_all(_BLOCKS):
        block.insert_before(_BLOCK)
        block.insert_after(_BLOCK)
    _pairs(soup)
    shown = soup.get_text().replace("\xa0", " ")
    return _lines(shown, sentences) if _BREAK_SPLIT.search(shown) else shown


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
