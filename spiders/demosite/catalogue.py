"""Deterministic generated data for the demo bookshop.

Everything here is derived from a fixed random seed, so every run (on every
machine) produces exactly the same catalogue.
"""

from __future__ import annotations

import os
import random
import re
import unicodedata
from functools import lru_cache

SEED = 20240601

# CRAWLFLEET_DEMO_PRODUCTS makes a bigger shop (the benchmarks' realistic crawl);
# the first 300 books are the same whatever the size.
PRODUCT_COUNT = int(os.environ.get("CRAWLFLEET_DEMO_PRODUCTS") or 300)
PAGE_SIZE = 20
PAGE_COUNT = (PRODUCT_COUNT + PAGE_SIZE - 1) // PAGE_SIZE  # 15

CURRENCY = "GBP"
CURRENCY_SYMBOL = "\u00a3"  # £

#: Path of the page that answers slowly (after SLOW_DELAY seconds), linked from page 1.
SLOW_PATH = "/slow.html"
SLOW_DELAY = 2.0

#: Detail-like paths linked from listing pages that answer 404. They are not
#: product links (they sit outside the ``article.product_pod`` blocks).
BROKEN_LINKS = [
    "/catalogue/the-lost-chapter_9001/index.html",
    "/catalogue/unpublished-manuscript_9002/index.html",
    "/catalogue/out-of-print-atlas_9003/index.html",
]
#: listing page number -> broken paths linked from that page
BROKEN_LINK_PAGES = {3: [BROKEN_LINKS[0]], 8: [BROKEN_LINKS[1]], 13: [BROKEN_LINKS[2]]}

RATING_WORDS = ["One", "Two", "Three", "Four", "Five"]

CATEGORIES = [
    "Fiction",
    "Mystery",
    "History",
    "Science",
    "Poetry",
    "Travel",
    "Cooking",
    "Philosophy",
    "Fantasy",
    "Biography",
]

#: Fixed special titles (product id -> title): non-ASCII text and a title
#: containing markup-like text, which must be HTML-escaped when rendered.
SPECIAL_TITLES = {
    7: "Caf\u00e9 Society in Old Vienna",
    42: "Na\u00efve Se\u00f1or Mu\u00f1oz and the Cr\u00e8me Br\u00fbl\u00e9e",
    123: 'How to Escape <script>alert("xss")</script> & Other Tricks',
    250: "Z\u00fcrich Nights \u2014 A Novel",
}

_ADJECTIVES = [
    "Silent", "Crimson", "Hidden", "Forgotten", "Golden", "Broken", "Distant",
    "Wandering", "Midnight", "Burning", "Quiet", "Electric", "Northern",
    "Hollow", "Velvet", "Paper", "Iron", "Glass", "Secret", "Last",
]
_NOUNS = [
    "Garden", "River", "Kingdom", "Library", "Lighthouse", "Orchard", "Harbour",
    "Mountain", "Engine", "Archive", "Compass", "Island", "Cathedral",
    "Forest", "Theorem", "Voyage", "Mirror", "Clockmaker", "Atlas", "Winter",
]
_PATTERNS = [
    "The {adj} {noun}",
    "{adj} {nouns}",
    "The {noun} of {noun2s}",
    "The {noun} and the {noun2}",
    "Beyond the {adj} {noun}",
    "{nouns} at Dawn",
]
_SENTENCES = [
    "A sweeping story told across three generations.",
    "Meticulously researched and beautifully written.",
    "An unforgettable journey into the unknown.",
    "Part memoir, part field guide, wholly original.",
    "The long-awaited follow-up to a beloved classic.",
    "Readers will not be able to put it down.",
    "A quiet meditation on memory and loss.",
    "Packed with practical advice and clear illustrations.",
    "Sharp, funny and surprisingly moving.",
    "A landmark work that changed its field.",
]


def _plural(noun: str) -> str:
    if noun.endswith("s"):
        return noun + "es"
    if noun.endswith("y"):
        return noun[:-1] + "ies"
    return noun + "s"


def slugify(text: str) -> str:
    """ASCII slug: 'Café Society' -> 'cafe-society'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug or "book"


def detail_path(product_id: int, slug: str) -> str:
    return f"/catalogue/{slug}_{product_id}/index.html"


def page_path(page: int) -> str:
    return f"/catalogue/page-{page}.html"


@lru_cache(maxsize=1)
def _generate() -> tuple[dict, ...]:
    rng = random.Random(SEED)
    seen: set[str] = set(SPECIAL_TITLES.values())
    items = []
    for product_id in range(1, PRODUCT_COUNT + 1):
        if product_id in SPECIAL_TITLES:
            title = SPECIAL_TITLES[product_id]
        else:
            while True:
                pattern = rng.choice(_PATTERNS)
                noun, noun2 = rng.sample(_NOUNS, 2)
                title = pattern.format(
                    adj=rng.choice(_ADJECTIVES),
                    noun=noun,
                    noun2=noun2,
                    nouns=_plural(noun),
                    noun2s=_plural(noun2),
                )
                if title in seen:
                    # add a volume number rather than loop forever
                    title = f"{title}, Volume {rng.randint(2, 9)}"
                if title not in seen:
                    break
            seen.add(title)
        slug = slugify(title)
        price_pence = rng.randint(1000, 5999)
        items.append(
            {
                "id": product_id,
                "title": title,
                "slug": slug,
                "path": detail_path(product_id, slug),
                "price": price_pence / 100,
                "price_text": f"{CURRENCY_SYMBOL}{price_pence // 100}.{price_pence % 100:02d}",
                "currency": CURRENCY,
                "availability": rng.randint(1, 22),
                "rating": rng.randint(1, 5),
                "upc": "%016x" % rng.getrandbits(64),
                "category": rng.choice(CATEGORIES),
                "description": " ".join(rng.sample(_SENTENCES, 3)),
                "page": (product_id - 1) // PAGE_SIZE + 1,
            }
        )
    return tuple(items)


def products() -> list[dict]:
    """All products, in catalogue order (fresh copies, safe to mutate)."""
    return [dict(p) for p in _generate()]


def product_by_id(product_id: int) -> dict | None:
    if 1 <= product_id <= PRODUCT_COUNT:
        return dict(_generate()[product_id - 1])
    return None


def page_products(page: int) -> list[dict]:
    """Products shown on listing page ``page`` (1-based)."""
    if not 1 <= page <= PAGE_COUNT:
        return []
    start = (page - 1) * PAGE_SIZE
    return [dict(p) for p in _generate()[start : start + PAGE_SIZE]]
