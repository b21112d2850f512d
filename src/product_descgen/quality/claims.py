"""Grounded claim check: the factual claims a description makes, each checked against its
product's own text (title, attributes, original description).

A claim is a lexicon term found in the description: a material, colour, brand, audience,
certification, product feature, place, retailer or product type. It is supported when the
product's text names it too (or a variant: plural, British/American spelling, the plain metal
of "stainless steel"); otherwise it is reported with the reason. Numbers and prices are checked
by :mod:`product_descgen.quality.checks`. The catalogue's own brand names extend the built-in
brand list and the material and colour lists (:func:`catalogue_lexicon`).
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import regex
from pydantic import BaseModel, ConfigDict, Field

_W = r"(?<![\w-]){}(?![\w-])"  # a whole word or phrase, hyphenated compounds kept whole


class ClaimParams(BaseModel):
    """The claim lexicons (defaults cover general e-commerce; extend them per catalogue)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    materials: list[str] = Field(default_factory=lambda: [
        "cotton", "polyester", "leather", "genuine leather", "faux leather", "pu leather",
        "stainless steel", "steel", "wood", "wooden", "plastic", "glass", "silk", "wool", "denim",
        "linen", "nylon", "rubber", "ceramic", "aluminium", "silver", "sterling silver", "gold",
        "rose gold", "platinum", "diamond", "diamonds", "brass", "copper", "bamboo", "velvet",
        "suede", "canvas", "silicone", "spandex", "lycra", "rayon", "viscose", "acrylic",
        "porcelain", "iron", "cast iron", "marble", "granite", "jute", "chiffon", "georgette",
        "satin", "fleece", "cashmere", "latex", "titanium", "teak", "oak", "pearl", "pearls",
        "crystal", "crystals", "cubic zirconia", "zircon", "ruby", "emerald", "sapphire",
        "alloy", "zinc", "tungsten", "carbon fibre", "kevlar", "merino", "khadi", "crepe",
    ])  # fmt: skip
    colours: list[str] = Field(default_factory=lambda: [
        "black", "white", "red", "blue", "green", "yellow", "orange", "purple", "pink", "brown",
        "grey", "navy", "beige", "maroon", "ivory", "cream", "teal", "turquoise", "olive",
        "khaki", "magenta", "violet", "lavender", "burgundy", "charcoal", "indigo",
        "multicolour",
    ])  # fmt: skip
    audiences: list[str] = Field(default_factory=lambda: [
        "men", "women", "boys", "girls", "kids", "children", "babies", "infants", "toddlers",
        "unisex", "ladies", "gents", "teens",
    ])  # fmt: skip
    certifications: list[str] = Field(default_factory=lambda: [
        "certified", "certification", "hallmarked", "hallmark", "iso", "isi", "bis", "fda",
        "ce", "fsc", "oeko-tex", "organic", "dermatologically tested", "clinically proven",
        "clinically tested", "vegan", "cruelty-free", "bpa-free", "bpa free", "award-winning",
        "patented", "warranty", "guarantee",
    ])  # fmt: skip
    features: list[str] = Field(default_factory=lambda: [
        "non-slip", "anti-slip", "waterproof", "water-resistant", "water resistant",
        "dishwasher safe", "dishwasher-safe", "microwave safe", "microwave-safe", "rechargeable",
        "wireless", "bluetooth", "stain-resistant", "wrinkle-free", "scratch-resistant",
        "rust-proof", "rustproof", "shatterproof", "hypoallergenic", "nickel-free", "handmade",
        "hand-made", "handcrafted", "eco-friendly", "biodegradable", "anti-bacterial",
        "antibacterial", "uv protection", "machine washable", "noise cancelling", "touchscreen",
    ])  # fmt: skip
    places: list[str] = Field(default_factory=lambda: [
        "india", "china", "italy", "japan", "usa", "america", "uk", "england", "britain",
        "germany", "france", "korea", "switzerland", "swiss", "thailand", "vietnam",
        "bangladesh", "turkey", "spain", "portugal", "mexico", "brazil", "australia",
        "canada", "europe", "paris", "london", "new york", "milan", "tokyo", "dubai",
        "jaipur", "kashmir", "lucknow", "banaras", "varanasi", "mysore",
    ])  # fmt: skip
    retailers: list[str] = Field(default_factory=lambda: [
        "amazon", "flipkart", "ebay", "walmart", "myntra", "snapdeal", "etsy",
        "meesho", "ajio", "nykaa", "aliexpress", "alibaba", "tata cliq", "shopclues",
        "paytm mall", "costco", "best buy", "ikea",
    ])  # fmt: skip
    brands: list[str] = Field(default_factory=lambda: [
        "Nike", "Adidas", "Puma", "Reebok", "Apple", "Samsung", "Sony", "LG", "Philips",
        "Bosch", "Prestige", "Pigeon", "Titan", "Fastrack", "Casio", "Rolex", "Gucci", "Prada",
        "Levi's", "Zara", "H&M", "Tanishq", "Swarovski", "Tupperware", "Milton", "Borosil",
        "Xiaomi", "Lenovo", "Dell", "HP", "Asus", "Canon", "Nikon", "Bata", "Woodland",
        "Lakme", "Maybelline", "L'Oreal", "Nivea", "Dove", "Lego", "Barbie", "Hot Wheels",
    ])  # fmt: skip
    # same-family product types: naming another of the family than the product's is a claim
    product_types: dict[str, list[str]] = Field(default_factory=lambda: {
        "jewellery": ["ring", "necklace", "earring", "bracelet", "bangle", "pendant", "anklet",
                      "brooch", "nose pin", "mangalsutra", "locket", "cufflink",
                      "jhumka", "stud", "kada", "cuff"],
        "footwear": ["shoe", "sandal", "slipper", "sneaker", "boot", "flip flop", "loafer",
                     "moccasin"],
        "bags": ["backpack", "handbag", "wallet", "clutch", "tote", "sling bag", "duffel",
                 "trolley", "briefcase", "pouch"],
        "timepieces": ["watch", "smartwatch", "clock"],
    })  # fmt: skip
    min_brand_chars: int = Field(3, ge=2)  # shorter catalogue brand names are too ambiguous
    # capitalised names inside sentences that the product's text lacks ("Air Max 270"): off for
    # a catalogue in a language that capitalises every noun (German), where each is a "name"
    names: bool = True


@dataclass(frozen=True)
class Claim:
    """One claim a description makes that its product's text does not support."""

    kind: str
    phrase: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.phrase!r} ({self.reason})"


_SPELLINGS = {
    "aluminum": "aluminium", "gray": "grey", "multicolor": "multicolour", "multi-color":
    "multicolour", "multi-colour": "multicolour", "womens": "women", "mens": "men",
    "woman": "women", "man": "men", "boy": "boys", "girl": "girls", "kid": "kids",
    "child": "children", "baby": "babies", "lady": "ladies", "united states": "usa",
    "united kingdom": "uk", "wood": "wooden", "diamonds": "diamond", "pearls": "pearl",
    "crystals": "crystal", "hand-made": "handmade", "dishwasher-safe": "dishwasher safe",
    "microwave-safe": "microwave safe", "water resistant": "water-resistant",
    "rustproof": "rust-proof", "bpa free": "bpa-free", "antibacterial": "anti-bacterial",
    "anti-slip": "non-slip",
}  # fmt: skip
# a claim the product's text supports through another term
_IMPLIED = {
    "steel": ["stainless steel"], "silver": ["sterling silver"], "gold": ["rose gold"],
    "leather": ["genuine leather", "faux leather", "pu leather"],
    "women": ["ladies"], "ladies": ["women"], "men": ["gents"], "gents": ["men"],
    "kids": ["boys", "girls", "children", "babies"], "children": ["kids", "boys", "girls"],
}  # fmt: skip


MAX_VOCABULARY_WORDS = 2  # longer attribute values are descriptions, not material or colour names
# an age range in the data ("Age Group: 3 - 10 Years", "6-12 months") supports the audiences
# whose ages it lies within: (youngest, oldest) in years
_AGE_RANGE = re.compile(r"(?i)\b(\d{1,2})\s*(?:-|–|to)\s*(\d{1,2})\s*(years?|yrs?|months?)\b")
_AUDIENCE_AGES = {
    "babies": (0, 3), "infants": (0, 2), "toddlers": (1, 4), "kids": (0, 14),
    "children": (0, 14), "teens": (12, 19),
}  # fmt: skip


# an open-ended age ("4 years and above", "Ages 4 and up", "8+ years"): from that age on
_AGE_FROM = re.compile(
    r"(?i)\b(\d{1,2})\s*(?:\+\s*(years?|yrs?|months?)?|(years?|yrs?|months?)\s*(?:and|&|or)\s*"
    r"(?:above|up|older|over)\b|and\s*(?:above|up|older|over)\b)"
)


def _ages_support(term: str, source: str) -> bool:
    """Whether an age range in ``source`` lies within the ages ``term`` names, or an
    open-ended age in ``source`` starts within them ("kids" for "4 years and above")."""
    if term not in _AUDIENCE_AGES:
        return False
    low, high = _AUDIENCE_AGES[term]
    for first, last, unit in _AGE_RANGE.findall(source):
        scale = 12 if unit.casefold().startswith("month") else 1
        if low <= int(first) / scale and int(last) / scale <= high:
            return True
    for start, unit, other_unit in _AGE_FROM.findall(source):
        scale = 12 if (unit or other_unit).casefold().startswith("month") else 1
        if low <= int(start) / scale < high:
            return True
    return False


def _squash(term: str) -> str:
    return re.sub(r"[\s-]+", "", term)


def _norm(phrase: str) -> str:
    term = re.sub(r"\s+", " ", phrase.casefold().replace("’", "'")).strip().removesuffix("'s")
    return _SPELLINGS.get(term, term)


@dataclass(frozen=True)
class Lexicon:
    """Every claim term with its kind, compiled for matching."""

    kinds: dict[str, str]  # canonical term -> kind
    families: dict[str, str]  # canonical product type -> its family
    pattern: re.Pattern[str]
    brand_pattern: re.Pattern[str] | None  # brand names match case-sensitively
    # words the catalogue's prose uses in lower case: a capitalised name inside a sentence that
    # is none of these (and not in the product's text) is an unknown name (empty: not checked)
    ordinary: frozenset[str] = frozenset()

    def names(self, text: str) -> list[str]:
        """Capitalised names inside sentences that are not ordinary words: brand and model
        names, places, people ("Hermes", "Air Max 270", "Kolhapur")."""
        if not self.ordinary:
            return []
        found = []
        for match in _NAME.finditer(text):
            phrase = match.group(1)
            tokens = [t for t in re.split(r"[\s-]+", phrase) if t]
            if any(t.casefold() not in self.ordinary and _LETTERS.fullmatch(t) for t in tokens):
                found.append(phrase)
        return found

    @functools.cached_property
    def squashed(self) -> dict[str, str]:
        """Each term without spaces and hyphens ("scratchresistant"), to its canonical form."""
        return {_squash(term): term for term in self.kinds}

    def canonical(self, phrase: str) -> str | None:
        term = _norm(phrase)
        for candidate in (term, re.sub(r"es$", "", term), re.sub(r"s$", "", term)):
            if candidate in self.kinds:
                return candidate
            if _squash(candidate) in self.squashed:
                return self.squashed[_squash(candidate)]
        return None

    def find(self, text: str) -> list[tuple[str, str, str]]:
        """``(kind, canonical term, phrase as written)`` for every term in ``text``."""
        found = []
        for match in self.pattern.finditer(text):
            term = self.canonical(match.group(0))
            if term is not None:
                found.append((self.kinds[term], term, match.group(0)))
        if self.brand_pattern is not None:
            found += [("brand", m.group(0), m.group(0)) for m in self.brand_pattern.finditer(text)]
        return found


# a capitalised word (and the capitalised or numeric words after it) after a lower-case word
# (in any script with letter case: "Lyon", "Zürich", accents composed or not)
_NAME = regex.compile(
    r"(?<=[\p{Ll},;] )(\p{Lu}[\p{L}\p{M}'’-]{2,}(?:\s+(?:\p{Lu}[\p{L}\p{M}'’-]+|\d+))*)"
)
_ORDINARY = regex.compile(r"\b\p{Ll}[\p{Ll}\p{M}]*\b")  # a word in lower case, any script
_LETTERS = regex.compile(r"[\p{L}\p{M}]+")  # a word of letters (and combining accents)


def _flexible(term: str) -> str:
    """A pattern of ``term`` with any spacing, and a hyphen, a space or nothing where it has
    either ("scratch resistant" for "scratch-resistant", "non slip" for "non-slip")."""
    return re.sub(r"(?:\\-|\\ )+", r"[-\\s]*", re.escape(term))


def _alternation(terms: Iterable[str]) -> str:
    ordered = sorted(set(terms), key=len, reverse=True)  # longest first: "stainless steel"
    return "|".join(_flexible(t) for t in ordered)


def build_lexicon(
    params: ClaimParams, extra_brands: Iterable[str] = (), ordinary: Iterable[str] = ()
) -> Lexicon:
    """The lexicon of ``params`` with the catalogue's own brand names added; ``ordinary``: the
    catalogue's lower-case words, which turn on the unknown-name check."""
    kinds: dict[str, str] = {}
    for kind, terms in (
        ("material", params.materials), ("colour", params.colours),
        ("audience", params.audiences), ("certification", params.certifications),
        ("feature", params.features), ("place", params.places), ("retailer", params.retailers),
    ):  # fmt: skip
        for term in terms:
            kinds.setdefault(_norm(term), kind)
    families = {_norm(t): family for family, ts in params.product_types.items() for t in ts}
    for term in families:
        kinds.setdefault(term, "product_type")
    surface = set(kinds) | {s for s, n in _SPELLINGS.items() if n in kinds}
    surface |= {t + end for t in families for end in ("s", "es")}
    surface |= {t + "'s" for t, k in kinds.items() if k == "audience"}
    pattern = re.compile(_W.format(f"(?:{_alternation(surface)})"), re.IGNORECASE)
    brands = {
        b.strip() for b in [*params.brands, *extra_brands]
        if len(b.strip()) >= params.min_brand_chars and _norm(b) not in kinds
    }  # fmt: skip
    brand_pattern = re.compile(_W.format(f"(?:{_alternation(brands)})")) if brands else None
    return Lexicon(kinds, families, pattern, brand_pattern, frozenset(ordinary))


@functools.lru_cache(maxsize=8)
def _lexicon_of(params_json: str) -> Lexicon:
    return build_lexicon(ClaimParams.model_validate_json(params_json))


def lexicon_for(params: ClaimParams) -> Lexicon:
    """The lexicon of ``params`` alone (built once per distinct settings)."""
    return _lexicon_of(params.model_dump_json())


def default_lexicon() -> Lexicon:
    return lexicon_for(ClaimParams())


def uncommon_names(
    brands: Iterable[str], texts: Iterable[str], max_word_share: float = 0.01
) -> list[str]:
    """The names (brands, attribute values) fit to be claims: those that are not ordinary
    words, i.e. whose lower-case form appears in fewer than ``max_word_share`` of the
    catalogue's texts (attribute lines capitalise values; prose uses ordinary words in lower
    case: "clear", "other")."""
    texts = [t for t in texts if isinstance(t, str)]
    names = {b.strip() for b in brands if isinstance(b, str) and b.strip()}
    keep = []
    for name in sorted(names):
        pattern = re.compile(_W.format(re.escape(name.lower())))  # as an ordinary word
        share = sum(bool(pattern.search(t)) for t in texts) / max(len(texts), 1)
        if share < max_word_share:
            keep.append(name)
    return keep


def attribute_brands(attributes: Iterable[str | dict | None]) -> list[str]:
    """Brand names from the products' attributes (JSON text or mappings; keys naming a brand)."""
    return [
        str(v) for record in _attribute_dicts(attributes) for k, v in record.items()
        if "brand" in str(k).casefold() and v
    ]  # fmt: skip


_VOCABULARY_KEYS = {"materials": re.compile(r"(?i)material|fabric"),
                    "colours": re.compile(r"(?i)colou?r|shade")}  # fmt: skip


def _attribute_dicts(attributes: Iterable[str | dict | None]) -> list[dict]:
    out = []
    for raw in attributes:
        value = raw
        if isinstance(raw, str):
            try:
                value = json.loads(raw)
            except ValueError:
                continue
        if isinstance(value, dict):
            out.append(value)
    return out


def attribute_vocabulary(attributes: Iterable[str | dict | None]) -> dict[str, list[str]]:
    """Material and colour names the catalogue's own attributes use (``Material: Mahogany``,
    ``Color: Peach, Mint``): short alphabetic values, split on commas, slashes and "and"."""
    found: dict[str, set[str]] = {kind: set() for kind in _VOCABULARY_KEYS}
    for record in _attribute_dicts(attributes):
        for key, value in record.items():
            for kind, pattern in _VOCABULARY_KEYS.items():
                if not pattern.search(str(key)):
                    continue
                for part in re.split(r"\s*(?:,|/|&|\band\b)\s*", str(value)):
                    if 0 < len(part.split()) <= MAX_VOCABULARY_WORDS and re.fullmatch(
                        r"[A-Za-z][A-Za-z -]+", part
                    ):
                        found[kind].add(part.strip().casefold())
    return {kind: sorted(values) for kind, values in found.items()}


def _nfc(text: str) -> str:
    """Unicode's composed form: an accent written apart from its letter reads as the letter."""
    return unicodedata.normalize("NFC", text)


def catalogue_lexicon(params: ClaimParams, products: pd.DataFrame) -> Lexicon:
    """The lexicon extended with the catalogue's own vocabulary: the material and colour names
    and the brand names (ordinary words left out) of ``products`` (``attributes`` and
    ``input_text`` columns)."""
    if "attributes" not in products or products.empty:
        return lexicon_for(params)
    vocabulary = attribute_vocabulary(products["attributes"])
    texts = list(products.get("input_text", []))
    extended = params.model_copy(update={
        "materials": [*params.materials, *uncommon_names(vocabulary["materials"], texts)],
        "colours": [*params.colours, *uncommon_names(vocabulary["colours"], texts)],
    })  # fmt: skip
    brands = uncommon_names(attribute_brands(products["attributes"]), texts)
    ordinary = {
        w.casefold() for t in texts if isinstance(t, str) for w in _ORDINARY.findall(_nfc(t))
    }
    return build_lexicon(extended, brands, ordinary if params.names else set())


# an attribute line of the model input ("- Microwave Safe: No") whose value denies what its key
# names, or states nothing ("- Diamond Clarity: NA"): neither supports the terms of its key
_ATTRIBUTE_LINE = re.compile(r"(?m)^- ([^:\n]+):[ \t]*(.*?)[ \t]*$")
DENYING_VALUES = frozenset({"no", "none", "false", "not included", "without"})
EMPTY_VALUES = frozenset({"na", "n/a", "n.a.", "not applicable", "not available", "-", ""})
MIN_NAME_WORDS = 2  # one-word attribute names ("Type: None") are too common words to look for
# a negation right before a phrase, or one word before it ("not fully"), within one clause
_GAP = r"[^\w.!?:;,\n]+"
_NEGATION = (
    r"(?i)\b(?:not|no|never|without|isn't|doesn't|aren't|don't)\b"
    rf"(?:{_GAP}\w+)?{_GAP}(?:{{}})"
)


@dataclass(frozen=True)
class Denials:
    """A product's text without its denying or empty attribute lines (``source``), the claim
    terms each denying line names (``terms``: ``{"microwave safe": "Microwave Safe: No"}``)
    and the denying lines by their attribute name (``names``: ``{"belt included": ...}``)."""

    source: str
    terms: dict[str, str]
    names: dict[str, str]
    pairs: tuple[tuple[str, str], ...] = ()  # (name, value) of the lines taken out

    def without_pairs(self, text: str) -> str:
        """``text`` without these lines' pairs (:func:`_without_pairs`)."""
        return _without_pairs(text, self.pairs)


def _without_pairs(text: str, pairs: Iterable[tuple[str, str]]) -> str:
    """``text`` without the ``(name, value)`` pairs as a specification table flattened into
    prose says them ("... Scratch Resistant No Clasp Type Buckle ..."): reciting the data."""
    for key, value in pairs:
        said = _W.format(rf"{_flexible(key)}\s*[:-]?\s*{re.escape(value)}")
        text = re.sub(said, " ", text, flags=re.IGNORECASE)
    return text


def split_denials(source: str, lexicon: Lexicon) -> Denials:
    """The denying (``Microwave Safe: No``) and empty (``NA``) attribute lines of ``source``,
    taken out of it, with the same pairs in its prose (a flattened specification table)."""
    terms: dict[str, str] = {}
    names: dict[str, str] = {}
    dropped: list[tuple[str, str]] = []

    def drop(line: re.Match[str]) -> str:
        key, value = line.group(1).strip(), line.group(2).casefold()
        if value not in DENYING_VALUES and value not in EMPTY_VALUES:
            return line.group(0)
        if value:
            dropped.append((key, line.group(2)))
        if value in DENYING_VALUES:
            said = f"{key}: {line.group(2)}"
            for _, term, _ in lexicon.find(key):
                terms.setdefault(term, said)
            if len(key.split()) >= MIN_NAME_WORDS:
                names.setdefault(key.casefold(), said)
        return ""

    kept = _without_pairs(_ATTRIBUTE_LINE.sub(drop, source), dropped)
    # what the product's text says it is not supports nothing either ("Not microwave safe.")
    for negated in (lexicon.pattern.pattern, *(_flexible(name) for name in names)):
        kept = re.sub(_NEGATION.format(negated), " ", kept)
    return Denials(kept, terms, names, tuple(dropped))


def _supported(kind: str, term: str, in_source: set[str], source: str) -> bool:
    """Whether the product's text supports a claim term: it names the term, a term implying
    it, a longer term it is a word of ("glass" of "mineral glass"), or (an audience) an age
    range within the audience's ages."""
    return (
        term in in_source
        or any(v in in_source for v in _IMPLIED.get(term, []))
        or any(re.search(rf"\b{re.escape(term)}\b", t) for t in in_source)
        or (kind == "audience" and _ages_support(term, source))
    )


def _denied_names(text: str, denials: Denials, reasons: set[str]) -> list[Claim]:
    """The names of denying attributes that ``text`` says ("belt included" for ``Belt Included:
    No``); not after a negation, nor where the rest of the data says it too, nor where a claim
    already has that line as its reason."""
    claims = []
    for name, said in denials.names.items():
        reason = f"the product's data says {said!r}"
        pattern = re.compile(_W.format(_flexible(name)), re.IGNORECASE)
        match = pattern.search(text)
        if not match or reason in reasons or pattern.search(denials.source):
            continue
        if not _negated(match.group(0), text):
            claims.append(Claim("attribute", match.group(0), reason))
    return claims


def _negated(phrase: str, text: str) -> bool:
    """Whether ``text`` says ``phrase`` after a negation ("not microwave safe")."""
    return re.search(_NEGATION.format(_flexible(phrase)), text) is not None


def unsupported_claims(text: str, source: str, lexicon: Lexicon | None = None) -> list[Claim]:
    """The claims in ``text`` that ``source`` (the product's own text) does not support. An
    attribute whose value denies its key (``Microwave Safe: No``) or is empty (``NA``) supports
    nothing; a claim its line denies says so. A term right after a negation is no claim, in
    the text ("not microwave safe") as in the product's text (where it supports nothing)."""
    lexicon = lexicon or default_lexicon()
    text, source = _nfc(text), _nfc(source)  # "é" one character or "e" with an accent alike
    denials = split_denials(source, lexicon)
    source, denied = denials.source, denials.terms
    text = denials.without_pairs(text)  # a text reciting "Belt Included No" claims nothing
    in_source = {term for _, term, _ in lexicon.find(source)}
    own_types = {t for t in in_source if t in lexicon.families}
    own_families = {lexicon.families[t] for t in own_types}
    claims: dict[tuple[str, str], Claim] = {}
    for kind, term, phrase in lexicon.find(text):
        if kind == "product_type":
            family = lexicon.families[term]
            if term in own_types or family not in own_families:
                continue  # the product's own type, or another family's (a pairing suggestion)
            own = sorted(t for t in own_types if lexicon.families[t] == family)
            reason = f"the product is a {' / '.join(own)}"
        elif kind == "brand":
            if _squash(term.casefold()) in _squash(source.casefold()):  # "Ray Ban", "RayBan"
                continue
            reason = "a brand the product's data does not name"
        elif _supported(kind, term, in_source, source) or _negated(phrase, text):
            continue  # a text saying what the product is not ("do not iron") claims nothing
        elif term in denied:
            reason = f"the product's data says {denied[term]!r}"
        else:
            reason = "not in the product's data"
        claims.setdefault((kind, term), Claim(kind, phrase, reason))
    for claim in _denied_names(text, denials, {c.reason for c in claims.values()}):
        claims.setdefault(("attribute", claim.phrase.casefold()), claim)
    found = {phrase.casefold() for *_, phrase in lexicon.find(text)}
    for name in lexicon.names(text):
        if name.casefold() in source.casefold() or any(f in name.casefold() for f in found):
            continue
        claims.setdefault(("name", name), Claim("name", name, "a name the product's data lacks"))
    return list(claims.values())
