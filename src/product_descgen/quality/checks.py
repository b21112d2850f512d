"""Rule-based checks on a generated description. Each returns ``(code, detail)`` problems.

Used as the quality gate on teacher outputs and on the student's descriptions alike.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import regex
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from product_descgen.prep.inputs import original_description
from product_descgen.quality.claims import ClaimParams, Lexicon, lexicon_for, unsupported_claims
from product_descgen.quality.off_product import OffProductParams

Problem = tuple[str, str]

# A word in a script written with spaces: letters, digits and their marks (Devanagari's vowel
# signs), with inner apostrophes and hyphens. In Chinese and Japanese, written without spaces,
# each character is a token (phrases match wherever they start) and two characters count as a
# word in lengths (:func:`word_count`), about their characters per word.
_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\u30fc\uff70\uff9e\uff9f"  # with the long-vowel marks
_WORD = regex.compile(
    rf"[{_UNSPACED}]|[\p{{L}}\p{{N}}](?:(?![{_UNSPACED}])[\p{{L}}\p{{N}}\p{{M}}'’\-])*"
)
_UNSPACED_CHAR = regex.compile(rf"[{_UNSPACED}]")
UNSPACED_CHARS_PER_WORD = 2
_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")
# a number, and what follows it: a word (``10 mm``, ``10-inch``, ``90 minutes``), % or an inch mark
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)*)(?:\s*-?\s*([A-Za-z]{1,7}\b|%|[\"”]))?")
_MARKUP = {
    "html tag": re.compile(r"</?[A-Za-z][^>]{0,80}>"),
    "bold/italic markdown": re.compile(r"\*\*|__|(?<!\w)\*\w[^*\n]*\*(?!\w)"),
    "markdown heading": re.compile(r"(?m)^\s{0,3}#{1,6}\s"),
    "list bullet": re.compile(r"(?m)^\s*(?:[-*•]|\d+[.)])\s+"),
    "code or link markup": re.compile(r"`|\[[^\]]+\]\([^)]+\)"),
}
_PRICE = re.compile(r"(?i)(?:rs\.?|inr|₹|\$|€|£|usd|eur)\s*\d|\d\s*(?:rupees|dollars|euros)\b")
_FIRST_PERSON = re.compile(
    r"\b(?:I|I'm|I've|I'll|I'd)\b|(?i:\b(?:we|we're|we've|our|ours|my|mine)\b)"
)
_TERMINAL = tuple('.!?)"”’。！？」』）')
_INVISIBLE_ONLY = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad]")
_INVISIBLE = re.compile("[\\s\u200b-\u200f\u2060-\u2064\ufeff\u00ad]+")
_INSTRUCTION = re.compile(
    r"(?i)\b(?:ignore|disregard|forget|override)\b.{0,40}?\b(?:instructions?|prompts?|rules|"
    r"above|previous)\b|\b(?:system|user) prompt\b|\bnew instructions?\b|"
    r"\byou are (?:now )?(?:an? )?(?:ai|assistant|chatbot|language model)\b|<\|[a-z_]+\|>"
)
_LINK = re.compile(
    r"(?i)\bhttps?://\S+|\bwww\.\S+|\b[\w-]+\.(?:com|in|net|org|co|io|ly|shop)(?:/\S*)?\b"
)


class GateParams(BaseModel):
    """Thresholds of the quality checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_words: PositiveInt = 40
    max_words: PositiveInt = 200
    max_paragraphs: PositiveInt = 3
    ngram_size: PositiveInt = 4
    max_ngram_repeats: PositiveInt = 3  # an n-gram seen this often (or more) is a loop
    echo_markers: list[str] = Field(
        default_factory=lambda: [
            "product_data", "<draft", "###", "Original description:", "Attributes:",
            "Audience:", "Rules:", "Return only", "Product description:",
        ]
    )  # fmt: skip
    refusal_patterns: list[str] = Field(
        default_factory=lambda: [
            r"\bas an ai\b", r"\blanguage model\b", r"\bi(?:'m| am) (?:sorry|unable)\b",
            r"\bi can(?:not|'t) (?:help|assist|write|provide)\b",
        ]
    )  # fmt: skip
    check_first_person: bool = True
    # a description whose n-word phrases are mostly the original description's adds nothing
    # (a teacher that returned the original, lightly edited): above this share it is
    # ``copied_original``; 1 turns the check off
    max_copied_share: float = Field(0.5, gt=0.0, le=1.0)
    copied_ngram_size: PositiveInt = 5
    claims: ClaimParams = Field(default_factory=ClaimParams)  # grounded claim check lexicons
    off_product: OffProductParams = Field(default_factory=OffProductParams)

    @model_validator(mode="after")
    def _range(self) -> GateParams:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) > max_words ({self.max_words})")
        return self


MIN_SENTENCE_WORDS = 3  # shorter repeated fragments ("Yes.") are not a repeated sentence


def words(text: str) -> list[str]:
    """The text's word tokens (a Chinese or Japanese character each)."""
    return _WORD.findall(text)


def _unspaced(tokens: list[str]) -> int:
    return sum(1 for t in tokens if _UNSPACED_CHAR.fullmatch(t))


def word_count(text: str) -> int:
    """How many words the text has, two Chinese or Japanese characters counting as one."""
    tokens = words(text)
    unspaced = _unspaced(tokens)
    return len(tokens) - unspaced + math.ceil(unspaced / UNSPACED_CHARS_PER_WORD)


def check_empty(text: str) -> list[Problem]:
    return [] if words(text) else [("empty", "no words")]


def check_truncated(text: str, finish_reason: str | None) -> list[Problem]:
    if finish_reason == "length":
        return [("truncated", "hit the token limit")]
    stripped = text.rstrip()
    if stripped and not stripped.endswith(_TERMINAL):
        return [("truncated", f"ends mid-sentence: ...{stripped[-30:]!r}")]
    return []


def check_length(text: str, params: GateParams) -> list[Problem]:
    n = word_count(text)
    problems = []
    if n < params.min_words:
        problems.append(("too_short", f"{n} words < {params.min_words}"))
    if n > params.max_words:
        problems.append(("too_long", f"{n} words > {params.max_words}"))
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(paragraphs) > params.max_paragraphs:
        problems.append(("too_many_paragraphs", f"{len(paragraphs)} > {params.max_paragraphs}"))
    return problems


def check_repetition(text: str, params: GateParams) -> list[Problem]:
    problems = []
    sentences = [
        s.strip().casefold() for s in _SENTENCE.split(text) if word_count(s) >= MIN_SENTENCE_WORDS
    ]
    repeated = [s for s, n in Counter(sentences).items() if n > 1]
    if repeated:
        problems.append(("repeated_sentence", repeated[0][:80]))
    tokens = [w.casefold() for w in words(text)]
    # a phrase of ngram_size words: twice as many tokens in Chinese or Japanese characters
    mostly_unspaced = _unspaced(tokens) * 2 > len(tokens)
    size = params.ngram_size * (UNSPACED_CHARS_PER_WORD if mostly_unspaced else 1)
    grams = Counter(tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1))
    looping = [g for g, n in grams.items() if n >= params.max_ngram_repeats]
    if looping:
        problems.append(("ngram_loop", f"{' '.join(looping[0])!r} x{grams[looping[0]]}"))
    return problems


def _squeezed(text: str) -> str:
    """Casefolded, without whitespace or invisible characters: ``< product_data>`` and
    ``<product\u200b_data>`` read as ``<product_data>``."""
    return _INVISIBLE.sub("", text).casefold()


def copied_share(text: str, original: str, n: int) -> float:
    """The share of ``text``'s distinct ``n``-word phrases (casefolded) found in ``original``."""

    def phrases(value: str) -> set[tuple[str, ...]]:
        tokens = [w.casefold() for w in words(value)]
        return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}

    own = phrases(text)
    return len(own & phrases(original)) / len(own) if own else 0.0


def check_copied_original(text: str, source: str, params: GateParams) -> list[Problem]:
    """The description mostly repeats the original description of its product (``source``:
    the model input it was written from)."""
    n = params.copied_ngram_size
    share = copied_share(text, original_description(source), n)
    if share > params.max_copied_share:
        return [("copied_original", f"{share:.0%} of its {n}-word phrases are the original's")]
    return []


def check_echo(text: str, params: GateParams) -> list[Problem]:
    squeezed = _squeezed(text)
    found = [m for m in params.echo_markers if _squeezed(m) in squeezed]
    return [("echoed_prompt", f"contains {found[0]!r}")] if found else []


def check_injection(text: str) -> list[Problem]:
    """Instruction-like text (``Ignore previous instructions``, talk of prompts or of being an
    AI) and links: neither belongs in a product description."""
    problems = []
    match = _INSTRUCTION.search(_INVISIBLE_ONLY.sub("", text))
    if match:
        problems.append(("instructions", match.group(0)[:60]))
    link = _LINK.search(text)
    if link:
        problems.append(("link", link.group(0)[:60]))
    return problems


def _number_keys(text: str) -> tuple[set[str], set[str]]:
    """The numbers of ``text``, and those followed by a unit (``10in``: its canonical name)."""
    numbers, with_units = set(), set()
    for number, word in _NUMBER.findall(text):
        value = number.replace(",", "")
        numbers.add(value)
        unit = _UNITS.get(word.casefold())
        if unit:
            with_units.add(f"{value}{unit}")
    return numbers, with_units


def unsupported_numbers(text: str, source: str) -> tuple[list[str], list[str]]:
    """Numbers in ``text`` that ``source`` lacks, and number+unit pairs (``350 ml``) whose number
    ``source`` has but with another unit (an invented number is reported once, as a number)."""
    src_numbers, src_units = _number_keys(source)
    out_numbers, out_units = _number_keys(text)
    invented = sorted(out_numbers - src_numbers)
    wrong = sorted(
        unit
        for unit in out_units - src_units
        if re.match(r"^[\d.]+", unit).group(0) not in invented
    )
    return invented, wrong


def check_unsupported_numbers(text: str, source: str) -> list[Problem]:
    """Numbers, and number+unit pairs (``350 ml``), in ``text`` that ``source`` lacks."""
    invented, wrong = unsupported_numbers(text, source)
    if invented:
        return [("unsupported_number", ", ".join(invented[:5]))]
    if wrong:
        return [("unsupported_unit", ", ".join(wrong[:5]))]
    return []


def _aliases(**units: str) -> dict[str, str]:
    """Each spelling of a unit -> its canonical name (``inch=\"in inches\"``)."""
    return {
        alias: name for name, spellings in units.items() for alias in [name, *spellings.split()]
    }


# Units a number is checked with, each spelling under one name: "10 in", '10"' and "10-inch" agree.
_UNITS = _aliases(
    mm="",
    cm="",
    m="",
    km="",
    ft="feet foot",
    mg="",
    oz="",
    ml="",
    kw="",
    mah="",
    gb="",
    tb="",
    mb="",
    hz="",
    mhz="",
    ghz="",
    kg="kgs",
    lb="lbs",
    g="gm gms gram grams",
    l="ltr litre liter litres liters",
    w="watt watts",
    v="volt volts",
    **{"%": ""},
    **{"in": 'inch inches " ”'},
    h="hr hrs hour hours",
    min="mins minute minutes",
    sec="secs second seconds",
    day="days",
    month="months",
    year="yr yrs years",
)


def check_markup(text: str) -> list[Problem]:
    found = [name for name, pattern in _MARKUP.items() if pattern.search(text)]
    return [("markup", found[0])] if found else []


def check_price(text: str) -> list[Problem]:
    match = _PRICE.search(text)
    return [("price", match.group(0))] if match else []


def check_refusal(text: str, params: GateParams) -> list[Problem]:
    for pattern in params.refusal_patterns:
        match = re.search(pattern, text, flags=re.IGNORECASE)
        if match:
            return [("refusal", match.group(0))]
    return []


def check_first_person(text: str) -> list[Problem]:
    match = _FIRST_PERSON.search(text)
    return [("first_person", match.group(0))] if match else []


def check_claims(text: str, source: str, lexicon: Lexicon) -> list[Problem]:
    """Claims (materials, colours, brands, audience, ...) the product's text does not support:
    ``unsupported_<kind>`` with the claim and why."""
    return [(f"unsupported_{c.kind}", str(c)) for c in unsupported_claims(text, source, lexicon)]


def check_description(
    text: str | None,
    source: str,
    params: GateParams,
    finish_reason: str | None = None,
    lexicon: Lexicon | None = None,
) -> list[Problem]:
    """Every problem of a generated description, given the product input it was written from.
    ``lexicon``: the claim lexicon with the catalogue's brands (default: ``params.claims``)."""
    if text is None or not words(text):
        return [("empty", "no words")]
    problems = [
        *check_truncated(text, finish_reason),
        *check_length(text, params),
        *check_repetition(text, params),
        *check_echo(text, params),
        *check_copied_original(text, source, params),
        *check_injection(text),
        *check_unsupported_numbers(text, source),
        *check_claims(text, source, lexicon or lexicon_for(params.claims)),
        *check_markup(text),
        *check_price(text),
        *check_refusal(text, params),
    ]
    if params.check_first_person:
        problems += check_first_person(text)
    return problems
