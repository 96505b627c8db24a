"""Static world: categories, countries, the product catalogue and pools of names and cities.

Everything here is built once per seed.  Faker is only used to fill small pools of names and
cities per country; rows are then sampled from the pools with numpy, which scales to millions.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

CATEGORIES: tuple[str, ...] = (
    "electronics",
    "fashion",
    "home",
    "beauty",
    "sports",
    "toys",
    "grocery",
    "books",
)
CHANNELS: tuple[str, ...] = ("web", "app", "store", "marketplace")
TOPICS: tuple[str, ...] = ("delivery", "quality", "price", "service", "size_fit", "packaging")
DEVICES: tuple[str, ...] = ("desktop", "mobile", "tablet")
REFERRERS: tuple[str | None, ...] = ("google", "direct", "email", "social", "affiliate", None)
REFERRER_P: tuple[float, ...] = (0.32, 0.24, 0.08, 0.1, 0.06, 0.2)
EVENT_TYPES: tuple[str, ...] = ("page_view", "product_view", "search", "add_to_cart", "checkout")

# median price, log-sd, max quantity per line
_CATEGORY_PRICES = {
    "electronics": (95.0, 0.9, 2),
    "fashion": (38.0, 0.7, 3),
    "home": (42.0, 0.8, 3),
    "beauty": (16.0, 0.6, 4),
    "sports": (45.0, 0.8, 2),
    "toys": (24.0, 0.7, 3),
    "grocery": (6.0, 0.6, 8),
    "books": (14.0, 0.4, 3),
}
CATEGORY_MAX_QTY = np.array([_CATEGORY_PRICES[c][2] for c in CATEGORIES], dtype=np.int64)
CATEGORY_SHARE = np.array([0.14, 0.2, 0.14, 0.1, 0.1, 0.08, 0.14, 0.1])

PRODUCT_NOUNS: dict[str, tuple[str, ...]] = {
    "electronics": ("headphones", "charger", "speaker", "keyboard", "monitor", "camera"),
    "fashion": ("jacket", "dress", "jeans", "sneakers", "shirt", "sweater"),
    "home": ("lamp", "cushion", "pan", "towel set", "vase", "kettle"),
    "beauty": ("moisturiser", "shampoo", "serum", "lipstick", "perfume", "face mask"),
    "sports": ("yoga mat", "running shoes", "water bottle", "dumbbells", "backpack", "tent"),
    "toys": ("puzzle", "building set", "doll", "board game", "toy car", "plush bear"),
    "grocery": ("coffee", "tea", "olive oil", "chocolate", "pasta", "granola"),
    "books": ("novel", "cookbook", "notebook", "travel guide", "comic", "biography"),
}


@dataclass(frozen=True)
class Country:
    code: str
    locale: str
    tz: str
    weight: float
    phone_prefix: str
    phone_digits: int
    domains: tuple[str, ...]


COUNTRIES: tuple[Country, ...] = (
    Country("GB", "en_GB", "Europe/London", 0.2, "+44 7", 9, ("btinternet.com", "sky.com")),
    Country("DE", "de_DE", "Europe/Berlin", 0.18, "+49 15", 9, ("web.de", "gmx.de", "t-online.de")),
    Country("FR", "fr_FR", "Europe/Paris", 0.14, "+33 6", 8, ("orange.fr", "free.fr", "sfr.fr")),
    Country("NL", "nl_NL", "Europe/Amsterdam", 0.08, "+31 6", 8, ("ziggo.nl", "kpnmail.nl")),
    Country("ES", "es_ES", "Europe/Madrid", 0.1, "+34 6", 8, ("telefonica.net", "yahoo.es")),
    Country("IT", "it_IT", "Europe/Rome", 0.1, "+39 3", 9, ("libero.it", "virgilio.it")),
    Country("US", "en_US", "America/New_York", 0.08, "+1 ", 10, ("yahoo.com", "aol.com")),
    Country("SE", "sv_SE", "Europe/Stockholm", 0.04, "+46 7", 8, ("telia.com", "bredband.net")),
    Country("PL", "pl_PL", "Europe/Warsaw", 0.05, "+48 5", 8, ("wp.pl", "onet.pl", "o2.pl")),
    Country("IE", "en_IE", "Europe/Dublin", 0.03, "+353 8", 8, ("eircom.net",)),
)  # fmt: skip
COUNTRY_WEIGHTS = np.array([c.weight for c in COUNTRIES]) / sum(c.weight for c in COUNTRIES)
GLOBAL_DOMAINS: tuple[str, ...] = ("gmail.com", "outlook.com", "hotmail.com", "icloud.com")


@dataclass(frozen=True)
class Catalogue:
    """Products (fixed category, base price, popularity) and helper lookup arrays."""

    product_ids: pl.Series  # "P0001", ...
    category: np.ndarray  # category index per product (products are grouped by category)
    price: np.ndarray  # base unit price per product
    cat_start: np.ndarray  # first product index of each category
    cat_count: np.ndarray
    pop_key: np.ndarray  # category + cumulative popularity within category (sorted)
    price_key: np.ndarray  # category*100 + log(price) (sorted within category)
    price_order: np.ndarray  # product index for each position of price_key

    @property
    def n(self) -> int:
        return int(self.price.size)

    def sample_popular(self, rng: np.random.Generator, cat: np.ndarray) -> np.ndarray:
        """Sample products of the given categories, weighted by popularity."""
        u = rng.random(cat.size) * 0.999999
        idx = np.searchsorted(self.pop_key, cat + u, side="right")
        lo = self.cat_start[cat]
        return np.clip(idx, lo, lo + self.cat_count[cat] - 1)

    def nearest_price(self, cat: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Products of the given categories whose base price is closest to ``target``."""
        key = cat * 100.0 + np.log(np.maximum(target, 0.01))
        pos = np.searchsorted(self.price_key, key)
        lo = self.cat_start[cat]
        pos = np.clip(pos, lo, lo + self.cat_count[cat] - 1)
        return self.price_order[pos]


def build_catalogue(seed: int, n_products: int = 2000) -> Catalogue:
    """Build the product catalogue deterministically from ``seed``."""
    rng = np.random.default_rng([seed, 7_000_001])
    counts = np.floor(CATEGORY_SHARE / CATEGORY_SHARE.sum() * n_products).astype(np.int64)
    counts[0] += n_products - counts.sum()
    category = np.repeat(np.arange(len(CATEGORIES)), counts)
    med = np.array([_CATEGORY_PRICES[c][0] for c in CATEGORIES])[category]
    sd = np.array([_CATEGORY_PRICES[c][1] for c in CATEGORIES])[category]
    raw = med * np.exp(rng.normal(0.0, sd))
    # shop prices: x.99 / x.49 / x.00 endings
    ending = rng.choice(np.array([0.99, 0.49, 0.0]), size=n_products, p=[0.6, 0.25, 0.15])
    price = np.maximum(np.floor(raw) + ending, 0.99).round(2)
    cat_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # Zipf popularity within category, in a random order
    rank = np.empty(n_products)
    pop_key = np.empty(n_products)
    price_key = np.empty(n_products)
    price_order = np.empty(n_products, dtype=np.int64)
    for c in range(len(CATEGORIES)):
        s, k = cat_start[c], counts[c]
        rank[s : s + k] = rng.permutation(k) + 1
        w = 1.0 / rank[s : s + k] ** 1.05
        pop_key[s : s + k] = c + np.cumsum(w) / w.sum() * 0.999999
        order = np.argsort(price[s : s + k], kind="stable")
        price_order[s : s + k] = s + order
        price_key[s : s + k] = c * 100.0 + np.log(price[s : s + k][order])
    # pop_key must be increasing: cumulative within category is increasing already
    ids = pl.Series("product_id", [f"P{i + 1:04d}" for i in range(n_products)])
    return Catalogue(ids, category, price, cat_start, counts, pop_key, price_key, price_order)


def _ascii(s: str) -> str:
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", s.lower())


@dataclass(frozen=True)
class PeoplePools:
    """Names and cities per country, flattened into global pools with per-country slices."""

    first_names: pl.Series
    first_ascii: pl.Series
    last_names: pl.Series
    last_ascii: pl.Series
    cities: pl.Series
    domains: pl.Series
    # per country: [female_start, female_n, male_start, male_n]
    first_slices: np.ndarray
    last_slices: np.ndarray  # [start, n]
    city_slices: np.ndarray  # [start, n]
    city_cum: list[np.ndarray]  # Zipf cumulative weights per country
    domain_slices: np.ndarray  # [start, n] of country-specific domains
    n_global_domains: int

    def sample_city(self, rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
        """Global city index for each customer country, big cities more likely."""
        out = np.empty(country.size, dtype=np.int64)
        u = rng.random(country.size)
        for c in range(len(COUNTRIES)):
            m = country == c
            if m.any():
                local = np.searchsorted(self.city_cum[c], u[m], side="right")
                local = np.minimum(local, self.city_slices[c, 1] - 1)
                out[m] = self.city_slices[c, 0] + local
        return out


def build_people_pools(seed: int, n_first: int = 300, n_last: int = 600) -> PeoplePools:
    """Fill per-country pools of names and cities with Faker, seeded from ``seed``."""
    try:
        from faker import Faker
    except ImportError as err:  # the generator is an optional extra, not part of the pipeline
        raise ImportError(
            "The sample-data generator needs Faker, which a plain install of seg-pipeline does "
            "not include: install the extra with `pip install 'seg-pipeline[generator]'` "
            "(`make setup` installs it)."
        ) from err

    first: list[str] = []
    last: list[str] = []
    cities: list[str] = []
    first_slices = np.zeros((len(COUNTRIES), 4), dtype=np.int64)
    last_slices = np.zeros((len(COUNTRIES), 2), dtype=np.int64)
    city_slices = np.zeros((len(COUNTRIES), 2), dtype=np.int64)
    city_cum = []
    for i, c in enumerate(COUNTRIES):
        fk = Faker(c.locale)
        fk.seed_instance(seed * 1000 + i)
        fem = sorted({fk.first_name_female() for _ in range(n_first)})
        mal = sorted({fk.first_name_male() for _ in range(n_first)})
        lst = sorted({fk.last_name() for _ in range(n_last)})
        cts = sorted({fk.city() for _ in range(250)})
        order = np.random.default_rng([seed, 7_000_002, i]).permutation(len(cts))
        cts = [cts[j] for j in order]
        first_slices[i] = [len(first), len(fem), len(first) + len(fem), len(mal)]
        first += fem + mal
        last_slices[i] = [len(last), len(lst)]
        last += lst
        city_slices[i] = [len(cities), len(cts)]
        cities += cts
        w = 1.0 / np.arange(1, len(cts) + 1) ** 0.9
        city_cum.append(np.cumsum(w) / w.sum())
    domains = list(GLOBAL_DOMAINS)
    domain_slices = np.zeros((len(COUNTRIES), 2), dtype=np.int64)
    for i, c in enumerate(COUNTRIES):
        domain_slices[i] = [len(domains), len(c.domains)]
        domains += list(c.domains)
    fa = [_ascii(x) or "user" for x in first]
    la = [_ascii(x) or "mail" for x in last]
    return PeoplePools(
        pl.Series(first),
        pl.Series(fa),
        pl.Series(last),
        pl.Series(la),
        pl.Series(cities),
        pl.Series(domains),
        first_slices,
        last_slices,
        city_slices,
        city_cum,
        domain_slices,
        len(GLOBAL_DOMAINS),
    )


def offset_table(day: date) -> np.ndarray:
    """UTC offset in minutes per (country, UTC hour) on ``day`` (handles DST switches)."""
    out = np.zeros((len(COUNTRIES), 24), dtype=np.int64)
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for i, c in enumerate(COUNTRIES):
        z = ZoneInfo(c.tz)
        for h in range(24):
            off = (base + timedelta(hours=h, minutes=30)).astimezone(z).utcoffset()
            out[i, h] = int(off.total_seconds() // 60) if off is not None else 0
    return out


# local-hour activity profile for shopping and browsing (sums to 1)
_HOURLY = np.array(
    [0.6, 0.3, 0.2, 0.15, 0.15, 0.3, 0.8, 1.6, 2.4, 3.0, 3.4, 3.6,
     4.0, 4.0, 3.7, 3.6, 3.8, 4.2, 4.8, 5.5, 6.0, 5.4, 3.6, 1.8]
)  # fmt: skip
HOURLY_P = _HOURLY / _HOURLY.sum()
STORE_HOURLY = np.where((np.arange(24) >= 9) & (np.arange(24) < 20), _HOURLY, 0.0)
STORE_HOURLY_P = STORE_HOURLY / STORE_HOURLY.sum()


def local_times_ms(
    rng: np.random.Generator, offsets_min: np.ndarray, hourly_p: np.ndarray = HOURLY_P
) -> np.ndarray:
    """Millisecond of the UTC day for events whose *local* hour follows ``hourly_p``.

    ``offsets_min`` is the (approximate, standard) UTC offset of each event's country.
    """
    n = offsets_min.size
    hour = rng.choice(24, size=n, p=hourly_p)
    local_ms = hour * 3_600_000 + rng.integers(0, 3_600_000, size=n)
    return (local_ms - offsets_min * 60_000) % 86_400_000


def format_offsets(minutes: np.ndarray) -> pl.Series:
    """Format UTC offsets in minutes as ``+01:00`` strings."""
    uniq, inv = np.unique(minutes, return_inverse=True)
    labels = []
    for m in uniq.tolist():
        sign = "+" if m >= 0 else "-"
        a = abs(int(m))
        labels.append(f"{sign}{a // 60:02d}:{a % 60:02d}")
    return pl.Series(labels)[inv]
